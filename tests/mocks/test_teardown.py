"""`pulumi destroy` with Grafana torn down with the stack: the objects inside the baseline's
Grafana (data sources, folder, dashboard, alert rules, contact point) are not deleted one by
one through its API, which may already be gone; they go with its chart and database. In a
Grafana of your own they are yours to clean up, so they are deleted through its API."""

import pytest
from harness import Secret, run_program
from pulumi.runtime.sync_await import _sync_await


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
