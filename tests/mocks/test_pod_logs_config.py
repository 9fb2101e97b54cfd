"""logging.podLogs: how the current profile's Alloy reads pod logs. A bad value, or the key in
the tutorial profile (whose Promtail always reads the node's files), is a clear error before
anything is registered; a hub and a spoke may read the node's files too."""

import pytest
from chart_keys import unknown_keys
from collector_files import with_files
from fleet import HUB_STACK, hub_config
from harness import environment_config, run_program, stack_reference

from components.charts import ALLOY
from components.config import ConfigError
from components.logging_stack import ALLOY_PODS


def problems_of_run(config, **kwargs) -> list[str]:
    run = run_program(config, expect_error=True, **kwargs)
    assert isinstance(run.error, ConfigError), f"expected a ConfigError, got {run.error!r}"
    assert run.resources == [], [r.name for r in run.resources]
    return run.error.problems


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            {"logging": {"podLogs": "node"}},
            ['runtime-defense:logging.podLogs = "node": allowed values are "api", "files"'],
            id="unknown-value",
        ),
        pytest.param(
            {"profile": "tutorial", "logging": {"podLogs": "files"}},
            [
                'runtime-defense:logging.podLogs = "files": chooses how the current profile\'s Alloy reads pod '
                "logs; the tutorial's Promtail always reads the node's files"
            ],
            id="tutorial",
        ),
    ],
)
def test_a_bad_pod_logs_setting_is_a_clear_error_and_registers_nothing(config, expected):
    assert problems_of_run(config) == expected


def test_the_default_reads_through_the_kubernetes_api_from_the_logging_namespace():
    run = run_program(environment_config("dev"))
    assert run.charts()["alloy"].plain("namespace") == "logging"
    assert "loki.source.kubernetes" in run.chart_values("alloy")["alloy"]["configMap"]["content"]


def test_a_hub_may_read_its_nodes_files_and_pushes_under_its_own_tenant():
    run = run_program({**hub_config(), "logging": {**hub_config().get("logging", {}), "podLogs": "files"}}, stack="hub")
    assert run.charts()["alloy"].plain("namespace") == "falco"
    pipeline = run.chart_values("alloy")["alloy"]["configMap"]["content"]
    assert "loki.source.file" in pipeline and 'tenant_id = "hub"' in pipeline
    (push,) = [m for m in run.manifests() if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "loki-push"]
    (alloy,) = [p for p in push["spec"]["ingress"][0]["from"] if p["podSelector"]["matchLabels"] == ALLOY_PODS]
    assert alloy["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "falco"}}


def test_a_spoke_may_choose_how_to_read_pod_logs_and_nothing_else_of_logging():
    reads = stack_reference(run_program(hub_config(), stack="hub"), HUB_STACK)
    run = run_program(with_files("spoke-a"), stack="spoke-a", reads=reads)
    assert run.error is None and run.charts()["alloy"].plain("namespace") == "falco"
    refused = {**environment_config("spoke-a"), "logging": {"podLogs": "files", "retention": "30d"}}
    assert problems_of_run(refused, stack="spoke-a", reads=reads) == [
        'runtime-defense:logging.retention = "<set>": a spoke runs no Loki: its logs go to the hub'
    ]


@pytest.mark.parametrize("runtime", ["docker", "cri-o"])
def test_every_alloy_value_set_for_the_files_is_a_key_of_the_pinned_chart(runtime):
    run = run_program(with_files("dev", containerRuntime=runtime))
    chart = run.charts()["alloy"]
    assert unknown_keys(ALLOY, chart.plain("values")) == []


def test_where_nodes_differ_docker_s_directory_is_made_on_the_others():
    """falco.containerRuntime lists every runtime the nodes run: docker's directory exists only
    on docker's nodes (made empty on the others), /var/log/pods on every node; CRI-O's nodes
    make Alloy run as root, with no capability still."""
    run = run_program(with_files("dev", containerRuntime=["docker", "cri-o"]))
    values = run.chart_values("alloy")
    host = {
        v["hostPath"]["path"]: v["hostPath"]["type"]
        for v in values["controller"]["volumes"]["extra"]
        if "hostPath" in v
    }
    assert host == {"/var/log/pods": "Directory", "/var/lib/docker/containers": "DirectoryOrCreate"}
    context = values["alloy"]["securityContext"]
    assert (context["runAsUser"], context["capabilities"]) == (0, {"drop": ["ALL"]})
