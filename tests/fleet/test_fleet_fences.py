"""The fleet's stacks fence every port as the standalone ones do (tests/support/fencing.py):
on the hub, the gateway admits only the ingress controller, each spoke's receiver only the
gateway, the hub's Prometheus the receivers' writes; on a spoke, with no Loki and no Grafana,
the collector's, Falco's and the agent's ports admit only the agent."""

import copy

import fleet
import pytest
from fencing import INTRUDER, fencing, stack_namespaces, stack_service_ports
from netpol import OUTSIDE, NetworkPolicies, Source
from rendering import Obj

STACKS = ("hub", *fleet.SPOKES)


def rendered(name: str):
    return fleet.hub() if name == "hub" else fleet.spoke(name)


@pytest.mark.parametrize("name", STACKS)
def test_every_port_of_the_fleets_stacks_is_fenced(name):
    stack = rendered(name)
    by_policy, _, open_ = fencing(stack)
    assert by_policy
    assert open_ == []


@pytest.mark.parametrize("name", STACKS)
def test_no_port_of_the_fleet_is_open_to_anyone(name):
    """The hub's Grafana is behind its Ingress; nothing else is meant for the outside."""
    stack = rendered(name)
    policies = NetworkPolicies(stack.objects)
    admitting = [
        str(t)
        for _, _, targets in stack_service_ports(stack)
        for t in targets
        if not t.workload.pod.get("hostNetwork") and policies.admits(OUTSIDE, t.workload, t.port)
    ]
    assert admitting == []


def test_only_the_gateway_reaches_the_spokes_receivers():
    """A pod in the logging namespace other than the gateway, the hub's own collector among
    them, cannot write metrics as a spoke by going round the gateway's authentication."""
    hub = fleet.hub()
    policies = NetworkPolicies(hub.objects)
    receivers = [
        (w, p["containerPort"])
        for w in hub.workloads()
        if w.owner.name == "fleet-receiver"
        for c in w.containers(init=False)
        for p in c.get("ports") or []
        if p.get("name", "").startswith("spoke-")
    ]
    assert len(receivers) == len(fleet.SPOKES)
    gateway = next(w for w in hub.workloads() if w.owner.name == "loki-gateway")
    collector = next(w for w in hub.workloads() if w.owner.name == "alloy")
    for workload, port in receivers:
        assert policies.admits(Source.of(gateway), workload, port)
        for stranger in (Source.of(collector), INTRUDER, OUTSIDE):
            assert not policies.admits(stranger, workload, port), f"{stranger.what} reaches {workload.owner}:{port}"


def test_a_receiver_open_to_the_logging_namespace_is_not_fenced():
    """The check on a policy broken here: admitting every pod of the namespace lets the
    hub's own collector write as any spoke."""
    hub = fleet.hub()
    policy = next(o for o in hub.objects if o.kind == "NetworkPolicy" and o.name == "fleet-receivers")
    body = copy.deepcopy(policy.body)
    for rule in body["spec"]["ingress"]:
        for peer in rule["from"]:
            peer.pop("podSelector", None)
    broken = copy.copy(hub)
    broken.objects = [o for o in hub.objects if o is not policy] + [Obj("program", body)]
    _, _, open_ = fencing(broken)
    assert open_ and all("fleet-receiver" in o for o in open_), open_


@pytest.mark.parametrize("name", fleet.SPOKES)
def test_a_spoke_runs_no_loki_and_no_grafana(name):
    stack = rendered(name)
    assert stack_namespaces(stack) == {"monitoring", "logging", "falco"}
    owners = {w.owner.name for w in stack.workloads()}
    assert not {o for o in owners if o.startswith(("loki", "kube-prometheus-stack-grafana"))}, owners
    assert {w.owner.kind for w in stack.workloads() if w.owner.name == "kube-prometheus-stack-prometheus"} == {
        "PrometheusAgent"
    }
