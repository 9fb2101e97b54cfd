"""`pulumi destroy`, through the options the program's transforms give each resource as the
engine applies them (its own, its parent's and up), to resources typed as the engine types
them. With Grafana torn down with the stack, the objects inside the baseline's Grafana (data
sources, folder, dashboard, alert rules, contact point) are not deleted one by one through
its API, which may already be gone; they go with its chart and database. In a Grafana of
your own they are yours to clean up, so they are deleted through its API. What stays in the
cluster: the Prometheus Operator's CRDs, and in prod Loki's namespace with its volumes."""

import pytest
from harness import CHART, CONFIG_GROUP, Secret, kubernetes_type, run_program
from pulumi.runtime.sync_await import _sync_await
from rendering import STACKS, render_stack


def grafana_objects(run):
    found = [r for r in run.resources if r.custom and r.type.startswith("grafana:")]
    assert {r.type.split("/")[0] for r in found} == {"grafana:oss", "grafana:alerting"}
    return found


def deleted_with(run, registration):
    by_urn = {r.urn: r for r in run.resources}
    parent = by_urn[registration.parent]
    _, opts = run.apply_transforms(parent, registration.type, registration.name, registration.inputs)
    return opts.deleted_with


@pytest.mark.parametrize("config", [{}, {"alertWebhookUrl": Secret("https://hooks.example/x")}])
def test_objects_in_the_baselines_grafana_go_with_its_chart(config):
    run = run_program(config)
    chart = run.charts()["kube-prometheus-stack"]
    for registration in grafana_objects(run):
        store = deleted_with(run, registration)
        assert store is not None, registration.name
        assert _sync_await(store.urn.future()) == chart.urn, registration.name


def test_objects_in_your_own_grafana_are_deleted_through_its_api():
    run = run_program(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
            "grafanaToken": Secret("t"),
        }
    )
    for registration in grafana_objects(run):
        assert deleted_with(run, registration) is None, registration.name


def test_only_grafana_objects_are_spared():
    run = run_program({})
    wiring = run.named("grafana")
    for type_, custom in (
        ("kubernetes:core/v1:ConfigMap", True),
        ("runtime-defense:grafana:FalcoCriticalAlert", False),
    ):
        _, opts = run.apply_transforms(wiring, type_, "x", {}, custom=custom)
        assert opts.deleted_with is None


# -- what `pulumi destroy` leaves in the cluster ---------------------------------------------


def where(body) -> str:
    metadata = body["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]


def kept_on_destroy(stack) -> set[str]:
    """What `pulumi destroy` leaves in the cluster: each object the stack applies, typed as the
    engine types it (the type token of its apiVersion and kind), with the options the
    transforms of its Chart or ConfigGroup, and of their ancestors, give it; those marked
    retain_on_delete stay."""
    run = stack.run
    charts = run.charts()
    registered = [(charts[o.source], o.source, o.body) for o in stack.objects if o.source != "program"]
    registered += [(group, group.name, body) for group in run.of_type(CONFIG_GROUP) for body in group.plain("objs")]
    assert {owner.type for owner, _, _ in registered} == {CHART, CONFIG_GROUP}
    kept = set()
    for owner, prefix, body in registered:
        type_ = kubernetes_type(body["apiVersion"], body["kind"])
        _, opts = run.apply_transforms(owner, type_, f"{prefix}:{where(body)}", body)
        if opts.retain_on_delete:
            kept.add(f"{body['kind']} {where(body)}")
    return kept


@pytest.mark.parametrize("name", sorted(STACKS))
def test_a_destroy_keeps_the_operators_crds_and_in_prod_the_logging_namespace_only(name):
    """Deleting a CRD deletes every object of its kind in the cluster, other teams' too: the
    Prometheus Operator's CRDs stay. prod keeps Loki's namespace, where its volumes are."""
    stack = render_stack(name)
    crds = {
        f"CustomResourceDefinition {o.name}"
        for o in stack.from_release("kube-prometheus-stack")
        if o.kind == "CustomResourceDefinition"
    }
    assert {
        "CustomResourceDefinition servicemonitors.monitoring.coreos.com",
        "CustomResourceDefinition prometheusrules.monitoring.coreos.com",
    } <= crds
    expected = crds | ({"Namespace logging"} if name == "prod" else set())
    assert kept_on_destroy(stack) == expected


@pytest.mark.parametrize(("name", "kept"), [("dev", False), ("prod", True)])
def test_lokis_volumes_outlive_a_destroy_in_prod_only(name, kept):
    """Loki's volumes are PersistentVolumeClaims its StatefulSets' controller makes: they
    outlive the StatefulSet when its retention policy says Retain, and outlive the destroy
    only if their namespace, whose deletion would take them, is kept too."""
    stack = render_stack(name)
    kept_namespaces = {entry.split(" ", 1)[1] for entry in kept_on_destroy(stack) if entry.startswith("Namespace ")}
    volumes = [
        o for o in stack.from_release("loki") if o.kind == "StatefulSet" and o.body["spec"].get("volumeClaimTemplates")
    ]
    assert volumes
    for statefulset in volumes:
        policy = statefulset.body["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        retained = policy.get("whenDeleted", "Retain") == "Retain" and statefulset.namespace in kept_namespaces
        assert retained is kept, f"{statefulset}: {policy}, kept namespaces {sorted(kept_namespaces)}"
    # What the StatefulSet itself is (not its volumes) goes with the destroy, in every stack.
    assert not [o for o in volumes if f"StatefulSet {where(o.body)}" in kept_on_destroy(stack)]
