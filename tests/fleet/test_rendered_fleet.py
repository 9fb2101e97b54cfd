"""The fleet's stacks (the hub, spoke-a, spoke-b) render clean, as tests/rendered/ checks the
standalone ones: every object validates strictly, every reference between objects resolves,
every pod passes its namespace's Pod Security level (and each namespace enforces the strictest
its pods pass), and every container runs exactly its chart's pinned image."""

from __future__ import annotations

from pod_security import PRIVILEGED, RESTRICTED, strictest_level, workload_violations
from references import dangling
from schemas import schema_errors

ENFORCE = "pod-security.kubernetes.io/enforce"


def levels(stack) -> dict[str, str]:
    return {o.name: o.labels.get(ENFORCE) for o in stack.objects if o.kind == "Namespace" and o.source == "program"}


def test_every_object_validates_strictly(fleet_stack):
    assert len(fleet_stack.objects) > 50
    assert schema_errors(fleet_stack.objects) == []


def test_every_reference_resolves(fleet_stack):
    assert dangling(fleet_stack) == []


def test_every_pod_passes_its_namespaces_level(fleet_stack):
    enforced = levels(fleet_stack)
    assert enforced == {"monitoring": RESTRICTED, "logging": RESTRICTED, "falco": PRIVILEGED}
    workloads = list(fleet_stack.workloads())
    assert workloads
    failing = []
    for workload in workloads:
        level = enforced.get(workload.owner.namespace)
        assert level is not None, f"{workload.owner} runs in a namespace the stack does not label"
        failing += [f"{workload.owner}: {v}" for v in workload_violations(workload, level)]
    assert failing == []


def test_each_namespace_enforces_the_strictest_level_its_pods_pass(fleet_stack):
    by_namespace: dict[str, list] = {}
    for workload in fleet_stack.workloads():
        by_namespace.setdefault(workload.owner.namespace, []).append(workload)
    assert levels(fleet_stack) == {ns: strictest_level(pods) for ns, pods in by_namespace.items()}


def test_every_image_is_its_charts_pin(fleet_stack):
    unpinned, seen = [], 0
    for workload in fleet_stack.workloads():
        release = fleet_stack.releases.get(workload.owner.source)
        pins = release.chart.images if release else ()
        for container in workload.containers():
            seen += 1
            if container["image"] not in pins:
                unpinned.append(f"{workload.owner}: {container['image']} (pinned: {', '.join(pins) or 'nothing'})")
    assert seen and unpinned == []
