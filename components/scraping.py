"""How Prometheus finds the stack's metrics endpoints: ServiceMonitors when a Prometheus
Operator watches them, scrape annotations otherwise. Either way each target carries the
node its pod runs on, in the label ``node`` the alerts name (components/falco_metrics.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import manifests
from components.falco_metrics import NODE
from components.network_policy import Peer

# The Prometheus Operator labels a ServiceMonitor's targets with namespace, service, pod,
# container and endpoint, not the node (prometheus-operator 0.93 pkg/prometheus/promcfg.go);
# the Prometheus community chart's annotation job labels them with the node, not the pod.
# This relabeling gives the operator's targets the node too, so one query serves both.
NODE_RELABELING = {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": NODE, "action": "replace"}


@dataclass(frozen=True)
class Scraping:
    service_monitors: bool  # a Prometheus Operator picks up ServiceMonitors
    prometheus: Peer  # who scrapes: the metrics ports admit only these pods
    labels: Mapping[str, str] = field(default_factory=dict)  # labels it selects them by
    crds: pulumi.Resource | None = None  # the chart installing the CRDs, when this stack deploys it
    # Every target's interval, where the charts' own would differ (a spoke: what the hub is sized for).
    interval: str | None = None

    def after_crds(self) -> list[pulumi.Resource]:
        return [self.crds] if self.crds is not None else []


def scrape_annotations(port: int, path: str = "/metrics") -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


def service_monitor(
    name: str,
    namespace: pulumi.Input[str],
    selector: Mapping[str, str],
    port: str,
    labels: Mapping[str, str],
    path: str = "/metrics",
) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": manifests.metadata(name, namespace, **labels),
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "endpoints": [{"port": port, "path": path, "interval": "30s", "relabelings": [NODE_RELABELING]}],
        },
    }
