"""The one table of pinned Helm charts, and the one way this program deploys them.

Every chart is vendored as a packaged archive under ``charts/`` and deployed from there,
so `pulumi preview` and `pulumi up` reach no chart repository and what the tests render is
exactly what the cluster receives. Each pin records the archive's sha256 (checked by the
tests) and every container image the chart runs with this program's values (the rendered
manifests are checked against it). ``scripts/update_charts.py`` replaces the archives with
the published ones (`helm pull`) and rewrites the digests here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import pulumi

if TYPE_CHECKING:
    from pulumi_kubernetes.helm.v4 import Chart

PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"
GRAFANA = "https://grafana.github.io/helm-charts"
GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"
FALCOSECURITY = "https://falcosecurity.github.io/charts"
# Relative to the project directory, where Pulumi runs the program and its providers.
VENDORED = PurePosixPath("charts")


@dataclass(frozen=True)
class PinnedChart:
    name: str
    version: str
    repo: str  # where the published archive comes from (scripts/update_charts.py)
    sha256: str  # of the vendored archive
    images: tuple[str, ...]  # every image the chart runs, exactly as the pod specs name them

    @property
    def archive(self) -> PurePosixPath:
        return VENDORED / f"{self.name}-{self.version}.tgz"

    @property
    def label(self) -> str:
        """The chart's `helm.sh/chart` label value, e.g. falco-9.1.0."""
        return f"{self.name}-{self.version}"

    def image(self, repository: str) -> str:
        """The pinned image of ``repository`` (registry/path without a tag)."""
        found = [i for i in self.images if i.split("@", 1)[0].rsplit(":", 1)[0] == repository]
        if len(found) != 1:
            raise KeyError(f"{self.label} pins no single image of {repository}")
        return found[0]

    def tag(self, repository: str) -> str:
        return self.image(repository).split("@", 1)[0].rsplit(":", 1)[1]


KUBE_PROMETHEUS_STACK = PinnedChart(
    "kube-prometheus-stack",
    "88.5.3",
    PROMETHEUS_COMMUNITY,
    "50960c780dd5a47c0d4eb3b39ec602410a9576d32186d1ef5ac8a10448df1575",
    (
        "quay.io/prometheus-operator/prometheus-operator:v0.93.1",
        # Run by the operator: the Prometheus custom resource's image, and its config reloader.
        "quay.io/prometheus/prometheus:v3.14.0-distroless",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
        "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
        "quay.io/prometheus/node-exporter:v1.12.1-distroless",
        "quay.io/brancz/kube-rbac-proxy:v0.22.1",  # in front of node-exporter
        "docker.io/grafana/grafana:13.2.0",
        "quay.io/kiwigrid/k8s-sidecar:2.10.1",
    ),
)
LOKI = PinnedChart(
    "loki",
    "18.11.0",
    GRAFANA_COMMUNITY,
    "c71325226a4e4d0ef5b0855894180c4311adefeae48e77cb40621dccc332c722",
    (
        "docker.io/grafana/loki:3.7.6",
        "docker.io/library/memcached:1.6.45-alpine",
        "docker.io/prom/memcached-exporter:v0.17.0",
        # The gateway, on a fleet's hub only: the chart's own tag (a release line, no digest).
        "docker.io/nginxinc/nginx-unprivileged:1.31-alpine",
    ),
)
ALLOY = PinnedChart(
    "alloy",
    "1.11.1",
    GRAFANA,
    "a6c5c07b42cb100fb0c58747bec16d351ce25d23e4baa3142bbef85e87100a7c",
    (
        "docker.io/grafana/alloy:v1.18.1",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.91.0"
        "@sha256:7d9e4eea5f1139e602508871f422b0116c60e87c662f3dcd234d5ab60cd0d8c1",
    ),
)
LOKI_STACK = PinnedChart(
    "loki-stack",
    "2.10.3",
    GRAFANA,
    "bbeff9b6accb807cc445949de347f1acc7760f51e4ef719bdcf64c7f8bbaafa9",
    ("grafana/loki:2.6.1", "docker.io/grafana/promtail:3.5.1"),
)
FALCO = PinnedChart(
    "falco",
    "9.1.0",
    FALCOSECURITY,
    "e6f1921ab34134f86b3e73a5632697cdc43015e6810e27cc4fb862c8649dbc51",
    (
        "docker.io/falcosecurity/falco:0.44.1",
        "docker.io/falcosecurity/falcoctl:0.13.0",
        "docker.io/falcosecurity/falco-driver-loader:0.44.1",  # kmod only
    ),
)
FALCO_WITH_GRPC = PinnedChart(
    "falco",
    "8.0.5",
    FALCOSECURITY,
    "69612e74ca676d416658656052780e824c6abca510d65b7dc2dd271e1cdb079e",
    (
        "docker.io/falcosecurity/falco:0.43.1",
        "docker.io/falcosecurity/falcoctl:0.12.2",
        "docker.io/falcosecurity/falco-driver-loader:0.43.1",  # ebpf and kmod
    ),
)
# The chart's appVersion says 2.31.1 but its values run 2.32.0, the image it was released
# with; pinned explicitly (components/event_export.py) so the metric names cited in
# components/falco_metrics.py are those of the binary that runs.
FALCOSIDEKICK = PinnedChart(
    "falcosidekick",
    "0.14.0",
    FALCOSECURITY,
    "81e31b1e6ebb812335f8eb1f83a660d79d6bf824f3bf036696e8cbaa1ecf42c0",
    ("docker.io/falcosecurity/falcosidekick:2.32.0",),
)
# The chart's values still run 0.8.3 although its appVersion is 0.8.7, the last release
# (falcosecurity/falco-exporter tag v0.8.7); pinned explicitly to 0.8.7.
FALCO_EXPORTER = PinnedChart(
    "falco-exporter",
    "0.12.2",
    FALCOSECURITY,
    "bb9927a671a6f3406f4558713ee7807c02ca642eb5ed0307d84cfb78cc9d6d97",
    ("docker.io/falcosecurity/falco-exporter:0.8.7",),
)

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
    remove_defaults: tuple[str, ...] = (),
    opts: pulumi.ResourceOptions,
) -> Chart:
    """A vendored chart as a Helm v4 Chart: one Pulumi resource per rendered object.

    ``remove_defaults`` names dotted keys of the chart's defaults to delete. Helm deletes a
    key set to null, but Pulumi's Python SDK drops None from maps before they reach the
    provider (pulumi/pulumi#12178), so the nulls travel in a values file instead.
    """
    # Imported here so that the pin table loads where only `pulumi` is installed: the
    # policy pack (policy/rules.py) reads it from this file.
    from pulumi_kubernetes.helm.v4 import Chart, ChartArgs

    return Chart(
        resource_name,
        ChartArgs(
            chart=str(chart.archive),
            name=release,
            namespace=namespace,
            values=values,
            value_yaml_files=[pulumi.StringAsset(null_values(remove_defaults))] if remove_defaults else None,
        ),
        opts=opts,
    )


def null_values(keys: tuple[str, ...]) -> str:
    """A values file (JSON, which is YAML) setting each dotted key to null."""
    root: dict[str, Any] = {}
    for key in keys:
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = None
    return json.dumps(root, sort_keys=True)
