"""The labels users filter logs by, as Loki receives them: each line is run through the
collector configuration the cluster receives (Alloy's ConfigMap, Promtail's Secret), and
Falco's events through Falcosidekick's Loki output with its rendered environment
(tests/support/log_sources.py). Every test here runs on each committed stack and on dev with
Alloy reading the node's files (logging.podLogs = files)."""

import json
import re

import pytest
from collector_files import COLLECTOR_STACKS, collector_stack
from log_sources import (
    FALCO_DOCS_LINE,
    collector_ship,
    falco_containers,
    falco_event,
    falco_json_line,
    falco_yaml,
    loki_config,
    parse_selector,
    pod_targets,
    sidekick_env,
    sidekick_loki_stream,
)
from queries import expand, logql_errors, logql_stream_labels

from components.logging_stack import FALCO_LOG_CRITICAL_LOGQL

# What a user filters every pod's lines by.
POD_LINE_LABELS = ("namespace", "pod", "container", "node")
# What Falcosidekick's copy of a Falco event is labelled by: the rule, its priority and the
# Kubernetes namespace and pod the event concerns.
SIDEKICK_EVENT_LABELS = ("rule", "priority", "k8s_ns_name", "k8s_pod_name")
# What the collector's copy (Falco's own JSON line) can be filtered by without parsing it.
FALCO_LOG_FIELDS = ("rule", "priority", "k8s_ns_name")
# A Falco event line as a Falco >= 0.41 user posted it (public lab write-up, 2026): a Notice
# for a container outside Kubernetes, so its k8s fields are null.
FALCO_041_NOTICE_LINE = (
    '{"hostname":"fa9d6faec8cb","output":"2026-07-10T16:19:55.182258301+0000: Notice A shell was spawned in a '
    "container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=sh "
    'proc_exepath=/bin/busybox parent=<NA> command=sh -lc echo \\"shell-in-container test\\" terminal=34816 '
    "exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=b515924008c6 container_name=lab9-target "
    'container_image_repository=alpine container_image_tag=3.20 k8s_pod_name=<NA> k8s_ns_name=<NA>",'
    '"output_fields":{"container.id":"b515924008c6","container.image.repository":"alpine",'
    '"container.image.tag":"3.20","container.name":"lab9-target","evt.arg.flags":"EXE_WRITABLE|EXE_LOWER_LAYER",'
    '"evt.time.iso8601":1783700395182258301,"evt.type":"execve","k8s.ns.name":null,"k8s.pod.name":null,'
    '"proc.cmdline":"sh -lc echo \\"shell-in-container test\\"","proc.exepath":"/bin/busybox","proc.name":"sh",'
    '"proc.pname":null,"proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0},"priority":"Notice",'
    '"rule":"Terminal shell in container","source":"syscall","tags":["T1059","container","maturity_stable",'
    '"mitre_execution","shell"],"time":"2026-07-10T16:19:55.182258301Z"}'
)
# Falco's own messages on stderr (userspace/engine/logger.cpp: "%a %b %d %H:%M:%S %Y: ").
FALCO_STDERR_LINE = "Fri Nov 27 17:00:00 2026: Falco version: 0.44.1 (x86_64)"

needs_logql = pytest.mark.usefixtures("needs_node_logql")


@pytest.fixture(scope="session", params=COLLECTOR_STACKS)
def stack(request):
    """Each committed stack, and dev reading the node's files, as the cluster receives it."""
    return collector_stack(request.param)


def docs_event(stack) -> dict:
    """The documentation's Critical event as this stack's Falco writes it."""
    return falco_event(json.loads(FALCO_DOCS_LINE), falco_yaml(stack))


def falco_shipped(stack, line: str):
    targets = falco_containers(stack)
    assert targets, "Falco's container"
    shipped = [s for _, meta in targets for s in collector_ship(stack, meta, line)]
    assert shipped, "the collector ships Falco's lines"
    return shipped


def test_every_pod_log_line_carries_namespace_pod_container_and_node(stack):
    targets = pod_targets(stack)
    assert len(targets) > 10
    wrong = {}
    for workload, meta in targets:
        shipped = collector_ship(stack, meta, "level=info msg=ready")
        expected = {
            "namespace": meta["__meta_kubernetes_namespace"],
            "pod": meta["__meta_kubernetes_pod_name"],
            "container": meta["__meta_kubernetes_pod_container_name"],
            "node": meta["__meta_kubernetes_pod_node_name"],
        }
        got = [{k: s.entry.labels.get(k) for k in POD_LINE_LABELS} for s in shipped]
        if not got or any(labels != expected for labels in got):
            wrong[f"{workload.owner}/{expected['container']}"] = got
    assert wrong == {}


def test_falcosidekick_labels_each_event_by_rule_priority_namespace_and_pod(stack):
    env = sidekick_env(stack)
    if env is None:
        pytest.skip("the tutorial profile has no Falcosidekick (falco-exporter counts events)")
    assert env["LOKI_HOSTPORT"], "Falcosidekick's Loki output is on"
    event = docs_event(stack)
    stream = sidekick_loki_stream(event, env)
    labels = {name: stream.get(name) for name in SIDEKICK_EVENT_LABELS}
    assert labels == {
        "rule": "Terminal shell in container",
        "priority": "Critical",
        "k8s_ns_name": "default",
        "k8s_pod_name": "kubecon",
    }


def test_falcos_own_event_line_reaches_loki_with_rule_priority_and_namespace(stack):
    """Falco's JSON line, parsed by the collector: the copy that does not need Falcosidekick."""
    fields = [s.entry.fields() for s in falco_shipped(stack, falco_json_line(docs_event(stack)))]
    expected = {"rule": "Terminal shell in container", "priority": "Critical", "k8s_ns_name": "default"}
    assert [{k: f.get(k) for k in FALCO_LOG_FIELDS} for f in fields] == [expected] * len(fields)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (FALCO_DOCS_LINE, {"rule": "Terminal shell in container", "priority": "Critical", "k8s_ns_name": "default"}),
        (FALCO_041_NOTICE_LINE, {"rule": "Terminal shell in container", "priority": "Notice", "k8s_ns_name": None}),
        (FALCO_STDERR_LINE, {"rule": None, "priority": None, "k8s_ns_name": None}),
    ],
    ids=["docs-critical", "falco-0.41-notice-no-pod", "falco-stderr"],
)
def test_the_collector_reads_falcos_lines_as_written(stack, line, expected):
    """Real lines, verbatim: the documentation's example, a Falco 0.41+ line whose k8s fields
    are null (no label, no metadata: not the text "null"), and Falco's own plain-text log."""
    shipped = falco_shipped(stack, line)
    assert [{k: s.entry.fields().get(k) for k in FALCO_LOG_FIELDS} for s in shipped] == [expected] * len(shipped)
    # The line itself reaches Loki unchanged (Docker's JSON keeps the newline the container wrote).
    assert {s.entry.line.removesuffix("\n") for s in shipped} == {line}


def test_a_critical_event_is_found_from_falcos_own_log(stack):
    """The query a user runs when Falcosidekick is down finds a Critical event, and only
    Critical and above, in the copy the collector ships."""
    query = parse_selector(expand(FALCO_LOG_CRITICAL_LOGQL))
    critical = falco_shipped(stack, falco_json_line(docs_event(stack)))
    assert all(query.matches(s.entry) for s in critical)
    in_default = parse_selector(FALCO_LOG_CRITICAL_LOGQL.replace("$namespace", "default"))
    assert all(in_default.matches(s.entry) for s in critical)
    in_other = parse_selector(FALCO_LOG_CRITICAL_LOGQL.replace("$namespace", "kube-system"))
    assert not any(in_other.matches(s.entry) for s in critical)
    for line in (FALCO_041_NOTICE_LINE, FALCO_STDERR_LINE):
        assert not any(query.matches(s.entry) for s in falco_shipped(stack, line))


def test_another_containers_json_is_not_taken_for_a_falco_event(stack):
    """Only Falco's container is parsed: a JSON line with a priority elsewhere stays a line."""
    query = parse_selector(expand(FALCO_LOG_CRITICAL_LOGQL))
    others = [(w, m) for w, m in pod_targets(stack) if (w, m) not in falco_containers(stack)]
    assert others
    found = [
        f"{w.owner}/{m['__meta_kubernetes_pod_container_name']}"
        for w, m in others
        for s in collector_ship(stack, m, FALCO_DOCS_LINE)
        if query.matches(s.entry) or "priority" in s.entry.fields()
    ]
    assert found == []


def test_no_stream_label_takes_a_value_per_event_pod(stack):
    """Pods come and go: a label valued by the event's pod would make a stream per pod.
    The event's pod stays in the line (or in structured metadata)."""
    event = docs_event(stack)
    pod = event["output_fields"]["k8s.pod.name"]
    assert pod
    leaking = [s.entry.labels for s in falco_shipped(stack, falco_json_line(event)) if pod in s.entry.labels.values()]
    assert leaking == []


def loki_major_versions(stack) -> set[int]:
    images = {
        c["image"]
        for w in stack.workloads()
        if w.owner.source == "loki"
        for c in w.containers()
        if re.search(r"/loki:\d", c["image"])
    }
    assert images, "Loki's image"
    return {int(image.rsplit(":", 1)[1].split(".")[0]) for image in images}


def test_loki_accepts_what_the_collector_sends_with_falcos_events(stack):
    """Structured metadata needs Loki 3 with schema v13 and `allow_structured_metadata` (on by
    default since 3.0); Loki 2.6 (tutorial) has none, so nothing may be sent as such."""
    shipped = falco_shipped(stack, falco_json_line(docs_event(stack)))
    sends_metadata = any(s.entry.structured_metadata for s in shipped)
    if loki_major_versions(stack) != {3}:
        assert loki_major_versions(stack) == {2} and not sends_metadata
        return
    assert sends_metadata
    config = loki_config(stack)
    assert config["limits_config"].get("allow_structured_metadata", True) is True
    latest = max(config["schema_config"]["configs"], key=lambda c: str(c["from"]))
    assert (latest["schema"], latest["store"]) == ("v13", "tsdb")


@needs_logql
def test_the_falco_log_query_is_valid_logql_and_on_the_dashboard(stack):
    assert logql_errors([FALCO_LOG_CRITICAL_LOGQL]) == {FALCO_LOG_CRITICAL_LOGQL: []}
    # Grafana's grammar and the matcher the tests run agree on what the query selects.
    (labels,) = logql_stream_labels([FALCO_LOG_CRITICAL_LOGQL]).values()
    assert labels == {name for name, _, _ in parse_selector(expand(FALCO_LOG_CRITICAL_LOGQL)).matchers}
    queries = []
    for dashboard in stack.run.of_type("grafana:oss/dashboard:Dashboard"):
        model = json.loads(dashboard.plain("configJson"))
        queries += [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    assert FALCO_LOG_CRITICAL_LOGQL in queries
