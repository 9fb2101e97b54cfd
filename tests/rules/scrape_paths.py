"""The labels Prometheus gives the stack's series, on each path by which it can scrape them.

1. The stack's kube-prometheus-stack: its Prometheus Operator turns the ServiceMonitors into
   scrape jobs (the falco chart's, the program's own for Falcosidekick and falco-exporter,
   kube-prometheus-stack's for kube-state-metrics).
2. An existing Prometheus Operator (``monitoring.serviceMonitors: true``): the same
   ServiceMonitors; its kube-state-metrics is taken to be kube-prometheus-stack's.
3. An existing Prometheus that scrapes Services by their ``prometheus.io/*`` annotations: the
   Prometheus community chart's ``kubernetes-service-endpoints`` job, and the
   kube-state-metrics it bundles, whose Service carries ``prometheus.io/scrape``.

Nothing here is a table of labels. The targets come from the rendered objects (Services,
ServiceMonitors and the pods their workloads run), the service-discovery meta labels
Prometheus gives an endpoint, and the scrape jobs' own relabelings, run by a small
relabeling engine with Prometheus' semantics (model/relabel/relabel.go: anchored regexes,
``$1`` replacements, an empty result deletes the label). The operator's jobs are generated
as prometheus-operator 0.93.0 does (pkg/prometheus/promcfg.go generateServiceMonitorConfig);
the annotation job is copied from the chart's values.yaml.
"""

from __future__ import annotations

import copy
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from harness import Secret
from rendering import render_config, render_stack

# prometheus-community/helm-charts charts/prometheus 29.27.0 values.yaml, scrapeConfigs.
# (Chart versions before 15.0.0 named these labels kubernetes_namespace, kubernetes_name and
# kubernetes_node instead.)
ANNOTATION_JOB = yaml.safe_load(
    """
job_name: kubernetes-service-endpoints
honor_labels: true
relabel_configs:
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scrape]
    action: keep
    regex: true
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scrape_slow]
    action: drop
    regex: true
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_scheme]
    action: replace
    target_label: __scheme__
    regex: (https?)
  - source_labels: [__meta_kubernetes_service_annotation_prometheus_io_path]
    action: replace
    target_label: __metrics_path__
    regex: (.+)
  - source_labels:
    - __address__
    - __meta_kubernetes_service_annotation_prometheus_io_port
    action: replace
    target_label: __address__
    regex: (.+?)(?::\\d+)?;(\\d+)
    replacement: $1:$2
  - action: labelmap
    regex: __meta_kubernetes_service_annotation_prometheus_io_param_(.+)
    replacement: __param_$1
  - action: labelmap
    regex: __meta_kubernetes_service_label_(.+)
  - source_labels: [__meta_kubernetes_namespace]
    action: replace
    target_label: namespace
  - source_labels: [__meta_kubernetes_service_name]
    action: replace
    target_label: service
  - source_labels: [__meta_kubernetes_pod_node_name]
    action: replace
    target_label: node
"""
)

# kube-state-metrics as the Prometheus community chart 29.27.0 installs it (release
# "prometheus"): the kube-state-metrics 8.4 subchart's Service (templates/service.yaml, with
# prometheusScrape: true, its default) and Deployment pod labels.
COMMUNITY_KUBE_STATE_METRICS_LABELS = {
    "app.kubernetes.io/name": "kube-state-metrics",
    "app.kubernetes.io/instance": "prometheus",
    "app.kubernetes.io/component": "metrics",
    "app.kubernetes.io/part-of": "kube-state-metrics",
    "app.kubernetes.io/managed-by": "Helm",
    "helm.sh/chart": "kube-state-metrics-8.4.0",
}
COMMUNITY_KUBE_STATE_METRICS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "prometheus-kube-state-metrics",
            "namespace": "prometheus",
            "labels": COMMUNITY_KUBE_STATE_METRICS_LABELS,
            "annotations": {"prometheus.io/scrape": "true"},
        },
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http"}],
            "selector": {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "prometheus"},
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "prometheus-kube-state-metrics", "namespace": "prometheus"},
        "spec": {
            "template": {
                "metadata": {"labels": COMMUNITY_KUBE_STATE_METRICS_LABELS},
                "spec": {
                    "containers": [{"name": "kube-state-metrics", "ports": [{"name": "http", "containerPort": 8080}]}]
                },
            }
        },
    },
]

# -- relabeling -------------------------------------------------------------------------------


def _go_template(replacement: str) -> str:
    """A Go regexp replacement ($1, ${1}, ${name}) as a Python one."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\d+)", lambda m: rf"\g<{m.group(1) or m.group(2)}>", replacement.replace("\\", "\\\\")
    )


def _text(value: Any) -> str:
    """A scalar of a YAML scrape config as Prometheus reads it (``regex: true`` is the text)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def relabel(labels: Mapping[str, str], configs: list[Mapping[str, Any]]) -> dict[str, str] | None:
    """``labels`` through ``configs`` (snake_case, as in a Prometheus scrape config); None
    when a keep or drop rule discards the target."""
    result = dict(labels)
    for config in configs:
        action = str(config.get("action", "replace")).lower()
        regex = re.compile(f"^(?:{_text(config.get('regex', '(.*)'))})$")
        replacement = _go_template(_text(config.get("replacement", "$1")))
        if action == "labelmap":
            for name, value in list(result.items()):
                if regex.match(name):
                    result[regex.sub(replacement, name)] = value
            continue
        separator = config.get("separator", ";")
        value = separator.join(result.get(name, "") for name in config.get("source_labels") or [])
        match = regex.match(value)
        if action == "keep":
            if not match:
                return None
        elif action == "drop":
            if match:
                return None
        elif action == "replace":
            if match:
                target = config["target_label"]
                new = match.expand(replacement)
                if new:
                    result[target] = new
                else:
                    result.pop(target, None)
        else:
            raise NotImplementedError(f"relabel action {action}")
    return result


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


# -- what service discovery sees --------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: str
    labels: Mapping[str, str]
    containers: tuple[Mapping[str, Any], ...]

    @property
    def ip(self) -> str:
        return pod_ip(self.namespace, self.name)


def pod_ip(namespace: str, name: str) -> str:
    """The pod's address: the same for a pod name on every path and in every scenario."""
    crc = zlib.crc32(f"{namespace}/{name}".encode())
    return f"10.244.{crc % 250}.{(crc >> 8) % 250 + 2}"


def _container_port(pod: Pod, target_port: Any) -> tuple[str, Mapping[str, Any]] | None:
    for container in pod.containers:
        for port in container.get("ports") or []:
            if target_port in (port.get("name"), port.get("containerPort")):
                return container["name"], port
    return None


def endpoint_metas(service: Mapping[str, Any], pod: Pod) -> Iterator[dict[str, str]]:
    """The meta labels of each endpoint of ``service`` backed by ``pod`` (Prometheus'
    kubernetes_sd: endpoints and endpointslice roles both, plus the pod's and the service's)."""
    metadata = service["metadata"]
    selector = service["spec"].get("selector") or {}
    if not selector or any(pod.labels.get(k) != v for k, v in selector.items()):
        return
    for port in service["spec"].get("ports") or []:
        found = _container_port(pod, port.get("targetPort", port["port"]))
        if found is None:
            continue
        container, container_port = found
        metas = {
            "__address__": f"{pod.ip}:{container_port['containerPort']}",
            "__scheme__": "http",
            "__metrics_path__": "/metrics",
            "__meta_kubernetes_namespace": metadata["namespace"],
            "__meta_kubernetes_service_name": metadata["name"],
            "__meta_kubernetes_pod_name": pod.name,
            "__meta_kubernetes_pod_ip": pod.ip,
            "__meta_kubernetes_pod_node_name": pod.node,
            "__meta_kubernetes_pod_phase": "Running",
            "__meta_kubernetes_pod_container_name": container,
            "__meta_kubernetes_pod_container_port_name": container_port.get("name", ""),
            "__meta_kubernetes_pod_container_port_number": str(container_port["containerPort"]),
        }
        for role in ("endpoint", "endpointslice"):
            metas[f"__meta_kubernetes_{role}_port_name"] = port.get("name", "")
            metas[f"__meta_kubernetes_{role}_address_target_kind"] = "Pod"
            metas[f"__meta_kubernetes_{role}_address_target_name"] = pod.name
        for kind, values in (("label", metadata.get("labels")), ("annotation", metadata.get("annotations"))):
            for key, value in (values or {}).items():
                metas[f"__meta_kubernetes_service_{kind}_{_sanitize(key)}"] = str(value)
                metas[f"__meta_kubernetes_service_{kind}present_{_sanitize(key)}"] = "true"
        for key, value in pod.labels.items():
            metas[f"__meta_kubernetes_pod_label_{_sanitize(key)}"] = str(value)
        yield metas


# -- scrape jobs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    honor_labels: bool
    relabel_configs: list[Mapping[str, Any]]
    namespaces: tuple[str, ...] | None  # None: every namespace

    def target(self, metas: Mapping[str, str]) -> dict[str, str] | None:
        """The target's labels, or None when the job does not scrape this endpoint."""
        if self.namespaces is not None and metas["__meta_kubernetes_namespace"] not in self.namespaces:
            return None
        labels = relabel({**metas, "job": self.name}, self.relabel_configs)
        if labels is None or not labels.get("__address__"):
            return None
        labels.setdefault("instance", labels["__address__"])
        return {k: v for k, v in labels.items() if not k.startswith("__")}


_CAMEL = {"sourceLabels": "source_labels", "targetLabel": "target_label"}


def service_monitor_jobs(monitor: Mapping[str, Any]) -> list[ScrapeJob]:
    """The scrape jobs prometheus-operator 0.93.0 generates for a ServiceMonitor, with the
    relabelings that decide a target's labels."""
    metadata, spec = monitor["metadata"], monitor["spec"]
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        raise NotImplementedError("matchExpressions")
    namespace_selector = spec.get("namespaceSelector") or {}
    namespaces = (
        None
        if namespace_selector.get("any")
        else tuple(namespace_selector.get("matchNames") or [metadata["namespace"]])
    )
    jobs = []
    for index, endpoint in enumerate(spec["endpoints"]):
        if not endpoint.get("port"):
            raise NotImplementedError("targetPort endpoints")
        configs: list[Mapping[str, Any]] = [{"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"}]
        for key in sorted(selector.get("matchLabels") or {}):
            configs.append(
                {
                    "action": "keep",
                    "source_labels": [
                        f"__meta_kubernetes_service_label_{_sanitize(key)}",
                        f"__meta_kubernetes_service_labelpresent_{_sanitize(key)}",
                    ],
                    "regex": f"({selector['matchLabels'][key]});true",
                }
            )
        kind_and_name = [
            "__meta_kubernetes_endpointslice_address_target_kind",
            "__meta_kubernetes_endpointslice_address_target_name",
        ]
        configs += [
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                "regex": endpoint["port"],
            },
            {"source_labels": kind_and_name, "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"},
            {"source_labels": kind_and_name, "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        ]
        for label in spec.get("targetLabels") or []:
            configs.append(
                {
                    "source_labels": [f"__meta_kubernetes_service_label_{_sanitize(label)}"],
                    "target_label": _sanitize(label),
                    "regex": "(.+)",
                }
            )
        for label in spec.get("podTargetLabels") or []:
            configs.append(
                {
                    "source_labels": [f"__meta_kubernetes_pod_label_{_sanitize(label)}"],
                    "target_label": _sanitize(label),
                    "regex": "(.+)",
                }
            )
        configs.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job"})
        if spec.get("jobLabel"):
            configs.append(
                {
                    "source_labels": [f"__meta_kubernetes_service_label_{_sanitize(spec['jobLabel'])}"],
                    "target_label": "job",
                    "regex": "(.+)",
                }
            )
        configs.append({"target_label": "endpoint", "replacement": endpoint["port"]})
        for relabeling in endpoint.get("relabelings") or []:
            configs.append({_CAMEL.get(k, k): v for k, v in relabeling.items()})
        jobs.append(
            ScrapeJob(
                f"serviceMonitor/{metadata['namespace']}/{metadata['name']}/{index}",
                bool(endpoint.get("honorLabels", False)),
                configs,
                namespaces,
            )
        )
    return jobs


def annotation_job() -> ScrapeJob:
    return ScrapeJob(
        ANNOTATION_JOB["job_name"], ANNOTATION_JOB["honor_labels"], ANNOTATION_JOB["relabel_configs"], None
    )


# -- a scrape path over a set of objects -------------------------------------------------------


def series_name(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class Target:
    labels: Mapping[str, str]
    honor_labels: bool

    def stored(self, exposed: Mapping[str, str]) -> dict[str, str]:
        """A sample's labels as Prometheus stores them: the exposed labels with the target's
        added; on a clash the exposed one wins with honor_labels, else it becomes exported_*."""
        labels = {k: v for k, v in exposed.items() if v != ""}
        for name, value in self.labels.items():
            if name in labels and not self.honor_labels:
                labels[f"exported_{name}"] = labels[name]
                labels[name] = value
            elif name not in labels:
                labels[name] = value
        return labels


@dataclass
class ScrapedCluster:
    """The objects of a cluster (rendered, or written here) and the scrape jobs of one path:
    which targets each pod gives, and how each of its samples is labelled."""

    path: str
    objects: list[dict[str, Any]]
    annotations: bool  # scraped by the annotation job, else by the ServiceMonitors' jobs
    jobs: list[ScrapeJob] = field(default_factory=list)

    @classmethod
    def of(cls, path: str, objects: list[dict[str, Any]], annotations: bool) -> ScrapedCluster:
        objects = [copy.deepcopy(o) for o in objects]
        if annotations:
            jobs = [annotation_job()]
        else:
            jobs = [job for o in objects if o["kind"] == "ServiceMonitor" for job in service_monitor_jobs(o)]
        return cls(path, objects, annotations, jobs)

    def with_copy(self, source_namespace: str, namespace: str) -> ScrapedCluster:
        """Also every Service, ServiceMonitor and workload of ``source_namespace`` installed
        again in ``namespace``, as another team's Falco would be."""
        copies = []
        for body in self.objects:
            if body["metadata"].get("namespace") != source_namespace:
                continue
            if body["kind"] not in ("Service", "ServiceMonitor", "DaemonSet", "Deployment"):
                continue
            clone = copy.deepcopy(body)
            clone["metadata"]["namespace"] = namespace
            if clone["kind"] == "ServiceMonitor" and (clone["spec"].get("namespaceSelector") or {}).get("matchNames"):
                clone["spec"]["namespaceSelector"]["matchNames"] = [namespace]
            copies.append(clone)
        assert copies, f"nothing in namespace {source_namespace} to copy"
        return ScrapedCluster.of(self.path, self.objects + copies, self.annotations)

    def workload(self, namespace: str, name: str) -> dict[str, Any]:
        found = [
            o
            for o in self.objects
            if o["kind"] in ("DaemonSet", "Deployment")
            and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace
        ]
        assert len(found) == 1, f"{namespace}/{name}: {len(found)} workloads"
        return found[0]

    def pod(self, namespace: str, workload: str, name: str, node: str) -> Pod:
        template = self.workload(namespace, workload)["spec"]["template"]
        return Pod(
            namespace,
            name,
            node,
            dict(template["metadata"].get("labels") or {}),
            tuple(template["spec"]["containers"]),
        )

    def targets(self, pod: Pod, service: str | None = None) -> list[Target]:
        """The scrape targets of ``pod`` (of one Service, or all), deduplicated as Prometheus
        deduplicates targets with the same labels."""
        found: dict[tuple[tuple[str, str], ...], Target] = {}
        for body in self.objects:
            if body["kind"] != "Service" or body["metadata"].get("namespace") != pod.namespace:
                continue
            if service is not None and body["metadata"]["name"] != service:
                continue
            for metas in endpoint_metas(body, pod):
                for job in self.jobs:
                    labels = job.target(metas)
                    if labels is not None:
                        found.setdefault(tuple(sorted(labels.items())), Target(labels, job.honor_labels))
        return list(found.values())

    def target(self, pod: Pod, service: str) -> Target:
        """The one target of ``pod`` through ``service``."""
        found = self.targets(pod, service)
        assert len(found) == 1, f"{self.path}: {pod.namespace}/{pod.name} via {service}: {len(found)} targets"
        return found[0]


# -- the stack on each path ---------------------------------------------------------------------

FALCO_NAMESPACE = "falco"  # the program's default namespaces.falco
DECOY_NAMESPACE = "security"  # another team's Falco, installed with the same charts


@dataclass(frozen=True)
class ScrapePath:
    key: str
    what: str
    config: Mapping[str, Any]  # the program's config for it
    annotations: bool  # scraped by Service annotations, not ServiceMonitors


_TOKEN = Secret("glsa_0123456789")
PATHS = {
    path.key: path
    for path in (
        ScrapePath("operator", "the stack's kube-prometheus-stack", {}, annotations=False),
        ScrapePath(
            "existing-operator",
            "an existing Prometheus Operator",
            {
                "monitoring": {
                    "deploy": False,
                    "prometheusUrl": "http://prometheus-operated.metrics:9090",
                    "serviceMonitors": True,
                },
                "grafanaToken": _TOKEN,
            },
            annotations=False,
        ),
        ScrapePath(
            "annotations",
            "an existing Prometheus scraping Service annotations",
            {
                "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus-server.prometheus:80"},
                "grafanaToken": _TOKEN,
            },
            annotations=True,
        ),
    )
}
# The releases whose objects the rules' series come from, and the committed stack that
# renders the baseline (tests/support/rendering.py STACKS, rendered once per session).
RELEASES = {"current": ("falco", "falcosidekick"), "tutorial": ("falco", "falco-exporter")}
BASELINE_STACKS = {"current": "dev", "tutorial": "dev-tutorial"}


def _kube_state_metrics(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kube-prometheus-stack's kube-state-metrics: its Service, ServiceMonitor and Deployment."""
    kinds = ("Service", "ServiceMonitor", "Deployment")
    found = [o for o in objects if o["metadata"]["name"].endswith("kube-state-metrics") and o["kind"] in kinds]
    assert sorted(o["kind"] for o in found) == sorted(kinds), [o["kind"] for o in found]
    return found


@cache
def scraped(path_key: str, profile: str) -> ScrapedCluster:
    """The cluster as ``path_key``'s Prometheus scrapes it: the stack's objects, that
    Prometheus' kube-state-metrics, and a copy of the Falco namespace as another team's."""
    path = PATHS[path_key]
    baseline = [o.body for o in render_stack(BASELINE_STACKS[profile]).objects]
    if path_key == "operator":
        objects = baseline
    else:
        config = {"profile": profile, **path.config}
        stack = render_config(f"rules: {path_key}, {profile}", "dev", config, only=RELEASES[profile])
        theirs = COMMUNITY_KUBE_STATE_METRICS if path.annotations else _kube_state_metrics(baseline)
        objects = [o.body for o in stack.objects] + theirs
    return ScrapedCluster.of(path_key, objects, path.annotations).with_copy(FALCO_NAMESPACE, DECOY_NAMESPACE)
