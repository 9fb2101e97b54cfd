"""Everything a cluster of the fleet sends says which cluster it is: `cluster=<fleet.clusterName>`
on every log line (the collector's `loki.write`), every Falco event (Falcosidekick's custom
field, made a Loki label), and every series (a spoke's agent's external labels; the hub's own
Prometheus, through its default scrape class). Read from the rendered objects, as each
collector's container runs them."""

from __future__ import annotations

import alloy_syntax
from fleet import container, environment, mounted_file, workload
from rendering import RenderedStack

CLUSTER = "cluster"


def cluster_name(stack: RenderedStack) -> str:
    name = stack.run.exports["fleet"].value["clusterName"]
    assert name == stack.name  # the committed fleet names each cluster after its stack
    return name


def loki_writes(stack: RenderedStack) -> list[alloy_syntax.Block]:
    pod = workload(stack, "DaemonSet", "alloy")
    run = container(pod, "alloy")["args"]
    assert run[0] == "run", run
    blocks = alloy_syntax.parse(mounted_file(stack, pod, "alloy", run[1]))
    return [b for b in blocks if b.name == "loki.write"]


def test_every_log_line_the_collector_writes_is_labelled_with_the_cluster(fleet_stack):
    collectors = {o.source for o in fleet_stack.of_kind("DaemonSet", "Deployment", "StatefulSet")} & {
        "alloy",
        "promtail",
        "loki-stack",
    }
    assert collectors == {"alloy"}, collectors  # the only collector of pod logs
    writes = loki_writes(fleet_stack)
    assert writes
    for write in writes:
        assert write.attributes.get("external_labels") == {CLUSTER: cluster_name(fleet_stack)}, write.label


def test_every_falco_event_carries_the_cluster_and_loki_labels_it(fleet_stack):
    env = environment(fleet_stack, workload(fleet_stack, "Deployment", "falcosidekick"), "falcosidekick")
    fields = dict(field.split(":", 1) for field in env["CUSTOMFIELDS"].split(",") if field)
    assert fields.get(CLUSTER) == cluster_name(fleet_stack), env["CUSTOMFIELDS"]
    assert CLUSTER in [label.strip() for label in env["LOKI_EXTRALABELS"].split(",")], env["LOKI_EXTRALABELS"]


def test_every_series_a_spoke_sends_is_labelled_with_the_spoke(spoke_stack):
    (agent,) = spoke_stack.of_kind("PrometheusAgent")
    spec = agent.body["spec"]
    assert spec["externalLabels"] == {CLUSTER: cluster_name(spoke_stack)}
    for write in spec["remoteWrite"]:
        for rule in write.get("writeRelabelConfigs") or []:
            # Nothing on the way out rewrites or drops the label.
            assert rule.get("targetLabel") != CLUSTER and rule.get("action", "replace") in ("keep", "drop"), rule


def test_every_series_the_hub_scrapes_itself_is_labelled_with_the_hub(hub_stack):
    (prometheus,) = hub_stack.of_kind("Prometheus")
    (default,) = [c for c in prometheus.body["spec"].get("scrapeClasses") or [] if c.get("default")]
    assert {"targetLabel": CLUSTER, "replacement": cluster_name(hub_stack), "action": "replace"} in default[
        "relabelings"
    ]
