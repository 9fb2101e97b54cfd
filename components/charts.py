"""The one table of pinned Helm charts, and the one way this program deploys them.

Every chart is pinned by repository URL and exact version; the values each component
sets are checked against ``chart-keys/<name>-<version>.keys`` by the tests, because Helm
silently ignores a misspelt key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.helm.v4 import Chart, ChartArgs, RepositoryOptsArgs

PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"
GRAFANA = "https://grafana.github.io/helm-charts"
GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"
FALCOSECURITY = "https://falcosecurity.github.io/charts"


@dataclass(frozen=True)
class PinnedChart:
    name: str
    version: str
    repo: str
    app_version: str  # what the chart deploys; the tests check it against the chart's Chart.yaml
    # Values under these top-level keys go to a bundled subchart: key -> "<chart>-<version>"
    # (only subcharts whose values.yaml is indexed; other subchart keys are template keys).
    subcharts: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_index(self) -> str:
        return f"{self.name}-{self.version}"


KUBE_PROMETHEUS_STACK = PinnedChart(
    "kube-prometheus-stack",
    "88.5.3",
    PROMETHEUS_COMMUNITY,
    "v0.93.1",
    subcharts={"grafana": "grafana-12.11.1"},
)
LOKI = PinnedChart("loki", "18.11.0", GRAFANA_COMMUNITY, "3.7.6")
ALLOY = PinnedChart("alloy", "1.11.1", GRAFANA, "v1.18.1")
LOKI_STACK = PinnedChart(
    "loki-stack",
    "2.10.3",
    GRAFANA,
    "v2.9.3",
    subcharts={"loki": "loki-2.16.0", "promtail": "promtail-6.17.1"},
)
FALCO = PinnedChart("falco", "9.1.0", FALCOSECURITY, "0.44.1")
FALCO_WITH_GRPC = PinnedChart("falco", "8.0.5", FALCOSECURITY, "0.43.1")
FALCOSIDEKICK = PinnedChart("falcosidekick", "0.14.0", FALCOSECURITY, "2.31.1")
FALCO_EXPORTER = PinnedChart("falco-exporter", "0.12.2", FALCOSECURITY, "0.8.7")

PINNED_CHARTS: tuple[PinnedChart, ...] = (
    KUBE_PROMETHEUS_STACK,
    LOKI,
    ALLOY,
    LOKI_STACK,
    FALCO,
    FALCO_WITH_GRPC,
    FALCOSIDEKICK,
    FALCO_EXPORTER,
)


def helm_chart(
    resource_name: str,
    chart: PinnedChart,
    *,
    release: str,
    namespace: pulumi.Input[str],
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> Chart:
    """A pinned chart as a Helm v4 Chart: one Pulumi resource per rendered object."""
    return Chart(
        resource_name,
        ChartArgs(
            chart=chart.name,
            version=chart.version,
            repository_opts=RepositoryOptsArgs(repo=chart.repo),
            name=release,
            namespace=namespace,
            values=values,
        ),
        opts=opts,
    )
