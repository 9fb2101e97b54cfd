"""Where the logs go and how long they stay, as the rendered Loki and collectors have it."""

import json

import pytest
from alloy_syntax import parse
from collector_files import COLLECTOR_STACKS, collector_stack, dev_files
from log_sources import (
    alloy_config,
    alloy_ship_file_line,
    collector_ship,
    loki_config,
    node_log_file,
    parse_selector,
    promtail_config,
    promtail_ship,
)
from queries import logql_available, logql_errors
from rendering import find_helm, render_stack

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
# compaction lines the walk-through looks for. Its mirror pod in the API has a UID of its own;
# the kubelet files its logs under the static pod's, the config hash (kubernetes.io/config.mirror).
ETCD = {
    "__meta_kubernetes_namespace": "kube-system",
    "__meta_kubernetes_pod_name": "etcd-minikube",
    "__meta_kubernetes_pod_uid": "0b9d4a62-51e3-4b8e-9c57-2f8e61d0c7a4",
    "__meta_kubernetes_pod_node_name": "minikube",
    "__meta_kubernetes_pod_container_name": "etcd",
    "__meta_kubernetes_pod_controller_kind": "Node",
    "__meta_kubernetes_pod_controller_name": "minikube",
    "__meta_kubernetes_pod_label_component": "etcd",
    "__meta_kubernetes_pod_label_tier": "control-plane",
    "__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_hash": "true",
    "__meta_kubernetes_pod_annotation_kubernetes_io_config_hash": "3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b",
    "__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_mirror": "true",
    "__meta_kubernetes_pod_annotation_kubernetes_io_config_mirror": "3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b",
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


@pytest.fixture(scope="session", params=COLLECTOR_STACKS)
def collector(request):
    """Each committed stack, and dev with Alloy reading the node's files."""
    helm, why = find_helm()
    if helm is None:
        pytest.fail(f"{why}; run scripts/test.sh, or put Helm 3 on PATH")
    return collector_stack(request.param)


def test_the_walkthrough_query_finds_etcds_compaction_line(collector):
    """`{container="etcd"} |= "compaction"`, on what the collector ships of etcd's line
    (read through the API by Alloy; from the node's file, in both formats, by Promtail and by
    Alloy with logging.podLogs = files, which finds a static pod's file by its mirror's annotation)."""
    stack = collector
    query = parse_selector(stack.run.exports["walkthroughLogQuery"].value)
    shipped = collector_ship(stack, ETCD, COMPACTION)
    assert shipped and all(query.matches(s.entry) for s in shipped)
    assert not any(query.matches(s.entry) for s in collector_ship(stack, ETCD, "apply request took too long"))


@pytest.mark.skipif(not logql_available(), reason="Node.js and tests/support/logql/node_modules are needed")
def test_the_collectors_match_selectors_are_valid_logql(collector):
    config = alloy_config(collector)
    if config is None:
        selectors = match_selectors(promtail_stages(collector))
    else:
        selectors = [stage.attributes["selector"] for b in parse(config) for stage in b.children("stage.match")]
    assert selectors
    assert logql_errors(selectors) == {s: [] for s in selectors}


# Lines as the runtimes write them in the node's files: Alloy's documentation's examples for
# stage.cri and stage.docker (docs/sources/reference/components/loki/loki.process.md, v1.18.1),
# verbatim; CRI-O's conmon, which writes the time with its offset (src/ctr_logging.c); etcd's
# compaction line in minikube's Docker JSON and in containerd's CRI.
RUNTIME_LINES = {
    "alloy-docs-cri": ("2019-04-30T02:12:41.8443515Z stdout F message", "message", "stdout"),
    "alloy-docs-docker": (
        '{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}',
        "log message\n",
        "stderr",
    ),
    "cri-o": ("2026-11-27T18:00:00.100000000+01:00 stdout F level=info msg=ready", "level=info msg=ready", "stdout"),
    "etcd-docker": (DOCKER_LINE, json.loads(DOCKER_LINE)["log"], "stderr"),
    "etcd-containerd": (CRI_LINE, CRI_LINE.split(" ", 3)[3], "stderr"),
}


@pytest.mark.parametrize(("raw", "line", "stream"), RUNTIME_LINES.values(), ids=RUNTIME_LINES)
def test_alloy_decodes_each_runtimes_file_format(raw, line, stream):
    """Read from the node's files, each line reaches Loki as the container wrote it, with its
    stream as structured metadata (not a label: one stream per container, as through the API)
    and no label naming the file."""
    (shipped,) = alloy_ship_file_line(alloy_config(dev_files()), ETCD, raw)
    assert (shipped.entry.line, shipped.entry.structured_metadata.get("stream")) == (line, stream)
    assert set(shipped.entry.labels) == {"namespace", "pod", "container", "node"}


def test_a_line_is_decoded_once_whatever_it_says():
    """A container whose own line is Docker JSON, on a CRI node: the CRI parser decodes the
    line, and the Docker parser leaves what the container wrote alone."""
    written = '{"log":"not from docker\\n","stream":"stdout","time":"2026-11-27T17:00:00Z"}'
    (shipped,) = alloy_ship_file_line(alloy_config(dev_files()), ETCD, f"2026-11-27T17:00:00.1Z stdout F {written}")
    assert shipped.entry.line == written


def test_alloy_reads_a_static_pods_file_under_its_mirrors_annotation():
    """The kubelet files etcd's log under the static pod's UID; the API's UID names no file."""
    file = node_log_file(ETCD)
    assert file == "/var/log/pods/kube-system_etcd-minikube_3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b/etcd/0.log"
    assert alloy_ship_file_line(alloy_config(dev_files()), ETCD, CRI_LINE)
