"""A node drain (`kubectl drain`: cordon, then evict every pod the disruption budgets allow)
as the rendered objects let it happen: nothing blocks it, and what runs several replicas
keeps one serving, on another node."""

import math

import pytest
from references import selects

from components.event_export import SIDEKICK_RELEASE

HOSTNAME = "kubernetes.io/hostname"
# Pulumi.prod.yaml eventExport.replicas; the dev stack keeps the default of one.
SIDEKICK_REPLICAS = {"dev": 1, "dev-tutorial": 0, "prod": 2}


def scaled(value, total: int) -> int:
    """An IntOrString against a pod count, as the disruption controller reads it (rounded up)."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    assert float(value) == int(float(value)), value
    return int(float(value))


def budgets(stack):
    """(budget, the workloads it covers, their pods) for every PodDisruptionBudget."""
    found = []
    workloads = list(stack.workloads())
    for budget in stack.of_kind("PodDisruptionBudget"):
        covered = [
            w
            for w in workloads
            if w.owner.namespace == budget.namespace and selects(budget.body["spec"]["selector"], w.labels)
        ]
        found.append((budget, covered, sum(w.replicas for w in covered)))
    return found


def evictions_allowed(budget, pods: int) -> int:
    """status.disruptionsAllowed with every pod healthy (pkg/controller/disruption)."""
    spec = budget.body["spec"]
    if "minAvailable" in spec:
        return max(0, pods - scaled(spec["minAvailable"], pods))
    return max(0, scaled(spec["maxUnavailable"], pods))


def spread_keys(workload) -> set[str]:
    """Topology keys the scheduler spreads the workload's own pods over."""
    keys = set()
    anti = (workload.pod.get("affinity") or {}).get("podAntiAffinity") or {}
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    terms += [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    terms += workload.pod.get("topologySpreadConstraints") or []
    for term in terms:
        if selects(term.get("labelSelector"), workload.labels):
            keys.add(term["topologyKey"])
    return keys


def test_no_disruption_budget_blocks_a_drain(stack):
    """Every budget selects pods and lets one of them go: a drain of any node, the single
    minikube node included, always proceeds."""
    found = budgets(stack)
    assert found or stack.name != "prod", "prod's replicated workloads have budgets"
    assert [str(b) for b, _, pods in found if not pods] == [], "a budget that selects no pod protects nothing"
    assert [str(b) for b, _, pods in found if evictions_allowed(b, pods) < 1] == []


def test_what_runs_several_replicas_keeps_one_serving_on_another_node(stack):
    """A budget leaves at least one pod of each replicated workload running while a node is
    drained, and the scheduler places the replicas on different nodes."""
    replicated = [w for w in stack.workloads() if w.replicas > 1]
    if stack.name != "prod":
        assert [str(w.owner) for w in replicated] == []
        return
    assert replicated
    covering = {w.owner.key: (b, pods) for b, covered, pods in budgets(stack) for w in covered}
    unprotected = [str(w.owner) for w in replicated if w.owner.key not in covering]
    assert unprotected == []
    serving = {str(w.owner): covering[w.owner.key][1] - evictions_allowed(*covering[w.owner.key]) for w in replicated}
    assert all(left >= 1 for left in serving.values()), serving
    assert {str(w.owner): HOSTNAME in spread_keys(w) for w in replicated} == {str(w.owner): True for w in replicated}


def test_falcosidekick_runs_the_configured_replicas(stack):
    sidekicks = [o for o in stack.of_kind("Deployment") if o.source == SIDEKICK_RELEASE]
    if not SIDEKICK_REPLICAS[stack.name]:
        assert sidekicks == []
        pytest.skip("the tutorial profile runs falco-exporter, a DaemonSet")
    (deployment,) = sidekicks
    assert deployment.body["spec"]["replicas"] == SIDEKICK_REPLICAS[stack.name]
    covering = [b for b, covered, _ in budgets(stack) if any(w.owner is deployment for w in covered)]
    assert len(covering) == (1 if SIDEKICK_REPLICAS[stack.name] > 1 else 0)
