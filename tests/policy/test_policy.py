"""Each policy of the pack in policy/, with resources that pass and resources that fail."""

import base64
import sys

import pytest
from harness import ROOT, run_program
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

sys.path.insert(0, str(ROOT / "policy"))
import rules


def options():
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )


def violations(validate, resource_type: str, props: dict) -> list[str]:
    found: list[str] = []
    args = ResourceValidationArgs(resource_type, props, f"urn:pulumi:dev::p::{resource_type}::x", "x", options(), None)
    validate(args, lambda message, urn=None: found.append(message))
    return found


def stack_violations(validate, resources: list[tuple[str, dict]]) -> list[str]:
    found: list[str] = []
    policy_resources = [
        PolicyResource(t, props, f"urn:pulumi:dev::p::{t}::r{i}", f"r{i}", options(), None, None, [], {})
        for i, (t, props) in enumerate(resources)
    ]
    validate(StackValidationArgs(policy_resources), lambda message, urn=None: found.append(message))
    return found


def workload(kind: str, containers: list[dict], init: list[dict] | None = None, annotations=None) -> tuple[str, dict]:
    pod = {"containers": containers, **({"initContainers": init} if init else {})}
    if kind == "Pod":
        return "kubernetes:core/v1:Pod", {"metadata": {"annotations": annotations or {}}, "spec": pod}
    group = "batch/v1" if kind == "Job" else "apps/v1"
    return f"kubernetes:{group}:{kind}", {"metadata": {}, "spec": {"template": {"spec": pod}}}


SIZED = {"requests": {"cpu": "10m", "memory": "16Mi"}}
V4 = "kubernetes:helm.sh/v4:Chart"


# -- charts-pinned ----------------------------------------------------------------------------


def test_a_chart_with_an_exact_version_and_repository_passes():
    props = {"chart": "falco", "version": "9.1.0", "repositoryOpts": {"repo": "https://falcosecurity.github.io/charts"}}
    assert violations(rules.charts_pinned, V4, props) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"chart": "falco", "repositoryOpts": {"repo": "https://x"}}, "exact version, not 'the latest'"),
        ({"chart": "falco", "version": "^9.1", "repositoryOpts": {"repo": "https://x"}}, "not '^9.1'"),
        ({"chart": "falco", "version": "9.x", "repositoryOpts": {"repo": "https://x"}}, "not '9.x'"),
        ({"chart": "falco", "version": "9.1.0"}, "must name its repository"),
    ],
)
def test_an_unpinned_chart_fails(props, expected):
    found = violations(rules.charts_pinned, V4, props)
    assert len(found) == 1 and expected in found[0]


def test_the_programs_own_charts_are_pinned_and_hold_no_credentials():
    for profile in ("current", "tutorial"):
        for chart in run_program({"profile": profile}).charts().values():
            props = {"chart": chart.plain("chart"), "version": chart.plain("version"), **chart.plain_inputs()}
            assert violations(rules.charts_pinned, V4, props) == []
            assert violations(rules.no_plaintext_credentials, V4, props) == []


# -- no-plaintext-credentials -----------------------------------------------------------------

PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"


def test_secret_references_in_values_pass():
    values = {"grafana": {"admin": {"existingSecret": "grafana-admin", "passwordKey": "admin-password"}}}
    assert violations(rules.no_plaintext_credentials, V4, {"values": values}) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"grafana": {"adminPassword": "hunter2"}}, "credential at grafana.adminPassword"),
        (
            {"loki": {"storage": {"s3": {"secretAccessKey": "AKIA/xyz"}}}},
            "credential at loki.storage.s3.secretAccessKey",
        ),
        ({"certs": {"server": {"key": PEM}}}, "private key at certs.server.key"),
    ],
)
def test_credentials_in_values_fail(values, expected):
    found = violations(rules.no_plaintext_credentials, V4, {"values": values})
    assert len(found) == 1 and expected in found[0]


def test_config_maps_without_credentials_pass():
    props = {"data": {"config.yaml": "auth_enabled: false\nserver:\n  http_listen_port: 3100\n"}}
    assert violations(rules.no_plaintext_credentials, rules.CONFIG_MAP, props) == []


@pytest.mark.parametrize(
    "data",
    [{"tls.key": PEM}, {"config.yaml": "storage:\n  s3:\n    secret_access_key: abc123\n"}],
)
def test_config_maps_with_credentials_fail(data):
    assert len(violations(rules.no_plaintext_credentials, rules.CONFIG_MAP, {"data": data})) == 1


# -- falco-events-over-tls --------------------------------------------------------------------


def falco_config_map(falco_yaml: str) -> dict:
    return {"data": {"falco.yaml": falco_yaml}}


HTTPS_MTLS = """
http_output:
  enabled: true
  url: https://falcosidekick.falco.svc.cluster.local:2801/
  mtls: true
  insecure: false
"""
GRPC_MTLS = """
grpc:
  enabled: true
  bind_address: 0.0.0.0:5060
  private_key: /etc/falco/certs/server.key
  cert_chain: /etc/falco/certs/server.crt
  root_certs: /etc/falco/certs/ca.crt
"""


@pytest.mark.parametrize(
    "falco_yaml", [HTTPS_MTLS, GRPC_MTLS, "grpc:\n  enabled: true\n  bind_address: unix:///run/falco/falco.sock\n"]
)
def test_falco_sending_over_mtls_passes(falco_yaml):
    assert violations(rules.falco_events_over_tls, rules.CONFIG_MAP, falco_config_map(falco_yaml)) == []


@pytest.mark.parametrize(
    ("falco_yaml", "expected"),
    [
        (HTTPS_MTLS.replace("https://", "http://"), "https:// URL"),
        (HTTPS_MTLS.replace("mtls: true", "mtls: false"), "mutual TLS"),
        (HTTPS_MTLS.replace("insecure: false", "insecure: true"), "mutual TLS"),
        (GRPC_MTLS.replace("  root_certs: /etc/falco/certs/ca.crt\n", ""), "root_certs unset"),
    ],
)
def test_falco_sending_in_clear_fails(falco_yaml, expected):
    found = violations(rules.falco_events_over_tls, rules.CONFIG_MAP, falco_config_map(falco_yaml))
    assert len(found) == 1 and expected in found[0]


def sidekick(env: dict, image="docker.io/falcosecurity/falcosidekick:2.32.0"):
    container = {"name": "falcosidekick", "image": image, "env": [{"name": k, "value": v} for k, v in env.items()]}
    return workload("Deployment", [container])


def test_falcosidekick_with_mutual_tls_passes():
    kind, props = sidekick({"TLSSERVER_DEPLOY": "true", "TLSSERVER_MUTUALTLS": "true"})
    assert violations(rules.falco_events_over_tls, kind, props) == []


@pytest.mark.parametrize("env", [{}, {"TLSSERVER_DEPLOY": "true", "TLSSERVER_MUTUALTLS": "false"}])
def test_falcosidekick_without_mutual_tls_fails(env):
    kind, props = sidekick(env)
    assert len(violations(rules.falco_events_over_tls, kind, props)) == 1


def test_falcosidekick_ui_is_not_the_event_receiver():
    kind, props = sidekick({}, image="docker.io/falcosecurity/falcosidekick-ui:2.2.0")
    assert violations(rules.falco_events_over_tls, kind, props) == []


def test_event_forwarding_in_plain_http_is_reported():
    def secret(hostport):
        return {"data": {"LOKI_HOSTPORT": base64.b64encode(hostport.encode()).decode(), "SLACK_WEBHOOKURL": ""}}

    assert violations(rules.falco_event_forwarding_over_tls, rules.SECRET, secret("https://loki:3100")) == []
    found = violations(rules.falco_event_forwarding_over_tls, rules.SECRET, secret("http://loki:3100"))
    assert found == ["Falcosidekick forwards events in plain HTTP (LOKI_HOSTPORT=http://loki:3100)"]


# -- workloads-request-cpu-and-memory ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet", "StatefulSet", "Job", "Pod"])
def test_sized_workloads_pass(kind):
    resource_type, props = workload(
        kind, [{"name": "app", "resources": SIZED}], init=[{"name": "init", "resources": SIZED}]
    )
    assert violations(rules.workloads_request_cpu_and_memory, resource_type, props) == []


def test_unsized_containers_fail_init_containers_included():
    resource_type, props = workload(
        "DaemonSet",
        [{"name": "app", "resources": {"requests": {"cpu": "10m"}}}],
        init=[{"name": "loader"}],
    )
    assert violations(rules.workloads_request_cpu_and_memory, resource_type, props) == [
        "initContainers 'loader' requests no cpu or memory",
        "containers 'app' requests no memory",
    ]


def test_helm_test_pods_are_not_workloads():
    resource_type, props = workload("Pod", [{"name": "t"}], annotations={"helm.sh/hook": "test"})
    assert violations(rules.workloads_request_cpu_and_memory, resource_type, props) == []


# -- no-latest-images -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    ["docker.io/falcosecurity/falco:0.44.1", "registry:5000/team/app:1.2", "grafana/loki@sha256:" + "a" * 64],
)
def test_pinned_images_pass(image):
    resource_type, props = workload("Deployment", [{"name": "c", "image": image}])
    assert violations(rules.no_latest_images, resource_type, props) == []


@pytest.mark.parametrize("image", ["busybox", "busybox:latest", "registry:5000/team/app"])
def test_unpinned_images_fail(image):
    resource_type, props = workload("Deployment", [{"name": "c", "image": image}])
    assert len(violations(rules.no_latest_images, resource_type, props)) == 1


# -- one-default-grafana-data-source ----------------------------------------------------------


def provisioned(name: str, default: bool) -> tuple[str, dict]:
    text = f"apiVersion: 1\ndatasources:\n- name: {name}\n  type: prometheus\n  isDefault: {str(default).lower()}\n"
    return rules.CONFIG_MAP, {"metadata": {"labels": {"grafana_datasource": "1"}}, "data": {"ds.yaml": text}}


def test_one_default_passes():
    resources = [
        provisioned("Prometheus", True),
        (rules.DATA_SOURCE, {"name": "Loki (runtime-defense)", "isDefault": False}),
    ]
    assert stack_violations(rules.one_default_data_source, resources) == []


@pytest.mark.parametrize(
    "second",
    [provisioned("Loki", True), (rules.DATA_SOURCE, {"name": "Loki", "isDefault": True})],
)
def test_two_defaults_fail(second):
    found = stack_violations(rules.one_default_data_source, [provisioned("Prometheus", True), second])
    assert len(found) == 1 and "marks 2" in found[0]


def test_the_pack_has_every_policy():
    assert {p.name for p in rules.POLICIES} == {
        "charts-pinned",
        "no-plaintext-credentials",
        "falco-events-over-tls",
        "falco-event-forwarding-over-tls",
        "workloads-request-cpu-and-memory",
        "no-latest-images",
        "one-default-grafana-data-source",
    }
