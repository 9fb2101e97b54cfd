"""Every scrape path labels the stack's targets with their node, as the alerts that name a
node need; the labels are those the rendered ServiceMonitors and the annotation job give."""

from __future__ import annotations

import copy

import pytest
from scrape_paths import ANNOTATION_JOB, FALCO_NAMESPACE, PATHS, ScrapedCluster, relabel, scraped

from components import event_export, falco

FALCO_METRICS = f"{falco.RELEASE}-metrics"
SIDEKICK, EXPORTER = event_export.SIDEKICK_RELEASE, event_export.EXPORTER_RELEASE
# (workload, the Service Prometheus scrapes it through), per profile.
SCRAPED = {"current": ((falco.RELEASE, FALCO_METRICS), (SIDEKICK, SIDEKICK)), "tutorial": ((EXPORTER, EXPORTER),)}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_each_target_of_the_stack_carries_its_node_and_namespace(profile, path):
    cluster = scraped(path, profile)
    for workload, service in SCRAPED[profile]:
        pod = cluster.pod(FALCO_NAMESPACE, workload, f"{workload}-b", "node-b")
        (target,) = cluster.targets(pod, service)
        labels = target.labels
        assert (labels["namespace"], labels["service"], labels["node"]) == (FALCO_NAMESPACE, service, "node-b")
        assert labels["instance"].startswith(f"{pod.ip}:")
        # The Prometheus Operator names the pod; the community chart's annotation job does not.
        assert ("pod" in labels) == (not PATHS[path].annotations), labels


def test_the_falco_chart_renders_the_node_relabeling():
    (monitor,) = [
        o
        for o in scraped("operator", "current").objects
        if o["kind"] == "ServiceMonitor"
        and (o["metadata"]["namespace"], o["metadata"]["name"]) == (FALCO_NAMESPACE, falco.RELEASE)
    ]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"} in (
        endpoint["relabelings"]
    )


def test_without_the_relabeling_an_operator_target_has_no_node():
    """The node comes from the program's relabeling, not from the operator itself."""
    objects = copy.deepcopy(scraped("operator", "current").objects)
    for body in objects:
        if body["kind"] == "ServiceMonitor":
            for endpoint in body["spec"]["endpoints"]:
                endpoint.pop("relabelings", None)
    cluster = ScrapedCluster.of("operator", objects, annotations=False)
    (target,) = cluster.targets(cluster.pod(FALCO_NAMESPACE, falco.RELEASE, "falco-a", "node-a"), FALCO_METRICS)
    assert "node" not in target.labels and target.labels["pod"] == "falco-a"


def test_the_relabeling_engine_reads_prometheus_configs_as_prometheus_does():
    metas = {
        "__address__": "10.0.0.1:2801",
        "__meta_kubernetes_service_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_service_annotation_prometheus_io_port": "2810",
        "__meta_kubernetes_service_label_app_kubernetes_io_name": "falcosidekick",
        "__meta_kubernetes_namespace": "falco",
        "__meta_kubernetes_service_name": "falcosidekick",
        "__meta_kubernetes_pod_node_name": "node-a",
    }
    labels = relabel(metas, ANNOTATION_JOB["relabel_configs"])
    assert labels is not None
    assert labels["__address__"] == "10.0.0.1:2810"  # the port annotation replaces the endpoint's
    assert (labels["namespace"], labels["service"], labels["node"]) == ("falco", "falcosidekick", "node-a")
    assert labels["app_kubernetes_io_name"] == "falcosidekick"  # labelmap of the Service's labels
    assert (
        relabel(
            {**metas, "__meta_kubernetes_service_annotation_prometheus_io_scrape": "false"},
            ANNOTATION_JOB["relabel_configs"],
        )
        is None
    )
    # An empty replacement deletes the label.
    assert relabel({"a": "x", "b": ""}, [{"source_labels": ["b"], "target_label": "a"}]) == {"b": ""}
