"""Where the logs go and how long they stay, as the rendered Loki and collectors have it."""

import json

import pytest
from alloy_syntax import parse
from log_sources import alloy_config, collector_ship, loki_config, parse_selector, promtail_config, promtail_ship
from queries import logql_available, logql_errors
from rendering import render_stack

# From the committed stack files: dev (and dev with the tutorial profile) keep a week on 5Gi,
# prod 30 days on 20Gi volumes.
KEPT = {"dev": ("5Gi", "168h"), "dev-tutorial": ("5Gi", "168h"), "prod": ("20Gi", "30d")}
DOCKER_LINE = (
    '{"log":"2026-11-27 17:00:00 I | mvcc: finished scheduled compaction\\n",'
    '"stream":"stderr","time":"2026-11-27T17:00:00.1Z"}'
)
CRI_LINE = '2026-11-27T17:00:00.100000000Z stderr F {"level":"info","msg":"finished scheduled compaction"}'


def test_loki_keeps_logs_on_volumes_of_the_configured_size(stack):
    size, _ = KEPT[stack.name]
    statefulsets = [o for o in stack.from_release("loki") if o.kind == "StatefulSet" and not o.name.endswith("-cache")]
    claims = {
        o.name: [t["spec"]["resources"]["requests"]["storage"] for t in o.body["spec"].get("volumeClaimTemplates", [])]
        for o in statefulsets
    }
    expected = ["loki-backend", "loki-write"] if stack.name == "prod" else ["loki"]
    assert {name: sizes for name, sizes in claims.items() if sizes} == {name: [size] for name in expected}


def test_loki_deletes_logs_after_the_configured_retention(stack):
    _, retention = KEPT[stack.name]
    config = loki_config(stack)
    assert config["compactor"]["retention_enabled"] is True
    assert config["limits_config"]["retention_period"] == retention


# minikube's etcd, a static pod: what Kubernetes discovery says of the container whose
# compaction lines the walk-through looks for.
ETCD = {
    "__meta_kubernetes_namespace": "kube-system",
    "__meta_kubernetes_pod_name": "etcd-minikube",
    "__meta_kubernetes_pod_uid": "3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b",
    "__meta_kubernetes_pod_node_name": "minikube",
    "__meta_kubernetes_pod_container_name": "etcd",
    "__meta_kubernetes_pod_controller_kind": "Node",
    "__meta_kubernetes_pod_controller_name": "minikube",
    "__meta_kubernetes_pod_label_component": "etcd",
    "__meta_kubernetes_pod_label_tier": "control-plane",
    "__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_hash": "true",
    "__meta_kubernetes_pod_annotation_kubernetes_io_config_hash": "3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b",
}
COMPACTION = "2026-11-27 17:00:00 I | mvcc: finished scheduled compaction"


def match_selectors(stages) -> list[str]:
    """The selectors of every match stage, nested ones included."""
    found = []
    for stage in stages:
        if "match" in stage:
            found += [stage["match"]["selector"], *match_selectors(stage["match"].get("stages") or [])]
    return found


def promtail_stages(stack):
    (pods,) = [job for job in promtail_config(stack)["scrape_configs"] if job["job_name"] == "kubernetes-pods"]
    return pods["pipeline_stages"]


@pytest.mark.parametrize(("line", "stream"), [(DOCKER_LINE, "stderr"), (CRI_LINE, "stderr")], ids=["docker", "cri"])
def test_promtail_decodes_each_runtimes_log_format(line, stream):
    """minikube's docker runtime writes Docker JSON; containerd and CRI-O write CRI lines:
    either way Loki receives the container's own line, with the stream it went to."""
    stack = render_stack("dev-tutorial")
    (shipped,) = promtail_ship(promtail_config(stack), ETCD, line)
    message = json.loads(line)["log"] if line.startswith("{") else line.split(" ", 3)[3]
    assert (shipped.entry.line, shipped.entry.labels["stream"]) == (message, stream)


def test_the_walkthrough_query_finds_etcds_compaction_line(stack):
    """`{container="etcd"} |= "compaction"`, on what the collector ships of etcd's line
    (read through the API by Alloy; from the node's file, in both formats, by Promtail)."""
    query = parse_selector(stack.run.exports["walkthroughLogQuery"].value)
    shipped = collector_ship(stack, ETCD, COMPACTION)
    assert shipped and all(query.matches(s.entry) for s in shipped)
    assert not any(query.matches(s.entry) for s in collector_ship(stack, ETCD, "apply request took too long"))


@pytest.mark.skipif(not logql_available(), reason="Node.js and tests/support/logql/node_modules are needed")
def test_the_collectors_match_selectors_are_valid_logql(stack):
    config = alloy_config(stack)
    if config is None:
        selectors = match_selectors(promtail_stages(stack))
    else:
        selectors = [stage.attributes["selector"] for b in parse(config) for stage in b.children("stage.match")]
    assert selectors
    assert logql_errors(selectors) == {s: [] for s in selectors}
