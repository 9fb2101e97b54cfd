"""Passwords, tokens and private keys are Pulumi secrets end to end and reach pods only
through Kubernetes Secrets, never through chart values or plain manifests."""

import json

import pytest
from harness import CONFIG_GROUP, Secret, run_program


@pytest.fixture(scope="module", params=["current", "tutorial"])
def run(request):
    return run_program({"profile": request.param})


def test_grafana_admin_password_is_a_secret_output(run):
    assert run.exports["grafanaAdminPassword"].secret
    assert len(run.exports["grafanaAdminPassword"].value) == 32


def test_no_chart_values_hold_the_password(run):
    password = run.exports["grafanaAdminPassword"].value
    for release, chart in run.charts().items():
        assert password not in json.dumps(chart.plain("values")), release
        assert not chart.secret("values"), f"{release}: values should hold no secret at all"


def test_grafana_reads_its_admin_credentials_from_a_kubernetes_secret(run):
    grafana = run.chart_values("kube-prometheus-stack")["grafana"]
    admin = grafana["admin"]
    secret = run.manifest("Secret", admin["existingSecret"])
    assert secret["metadata"]["namespace"] == "monitoring"
    assert set(secret["stringData"]) == {admin["userKey"], admin["passwordKey"]}
    assert secret["stringData"][admin["passwordKey"]] == run.exports["grafanaAdminPassword"].value
    assert "adminPassword" not in grafana


def test_every_secret_manifest_payload_is_a_pulumi_secret(run):
    secrets = 0
    for group in run.of_type(CONFIG_GROUP):
        kinds = {obj["kind"] for obj in group.plain("objs")}
        if "Secret" in kinds:
            secrets += 1
            assert group.secret("objs"), group.name
            # Secrets get groups of their own: anything beside them would be hidden in diffs.
            assert kinds == {"Secret"}, group.name
        else:
            assert not group.secret("objs"), group.name
    assert secrets >= 1


def test_a_grafana_url_stored_as_secret_stays_secret_in_state_and_outputs():
    """`pulumi config set --secret --path grafana.url https://.../<token>`: the URL may
    carry credentials, so everything made from it is a Pulumi secret."""
    url = "https://grafana.example.com/proxy/glsa_url_token"
    run = run_program(
        {
            "grafana": Secret(json.dumps({"url": url})),
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus-operated.metrics:9090"},
            "grafanaToken": Secret("glsa_token"),
        }
    )
    provider = next(r for r in run.resources if r.type == "pulumi:providers:grafana")
    assert provider.plain("url") == url and provider.secret("url")
    assert run.exports["grafanaUrl"].value == url and run.exports["grafanaUrl"].secret
    assert run.exports["dashboardUrls"].secret
    assert run.exports["dashboardUrls"].value["Runtime defense overview"] == f"{url}/d/runtime-defense-overview"
    for resource in run.resources:
        for key, value in resource.inputs.items():
            assert "glsa_url_token" not in json.dumps(value, default=str) or resource.secret(key), resource.name
