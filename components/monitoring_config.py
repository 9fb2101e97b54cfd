"""Configuration of Prometheus and Grafana: ``monitoring.*`` (the baseline, or yours)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.config_reader import RFC1123_LABEL, RFC1123_SUBDOMAIN, ConfigReader

KEYS = ("monitoring",)
NODE_PORTS = (30000, 32767)


@dataclass(frozen=True)
class ExistingMonitoring:
    """An installation of Prometheus (and its operator, maybe) the stack plugs into."""

    prometheus_url: str
    service_monitors: bool
    service_monitor_labels: Mapping[str, str]
    # Where that installation runs, from the Service names in its URLs: the stack's metrics
    # ports admit Prometheus from there, Loki's query port admits Grafana from there, and the
    # stack never deploys into either.
    prometheus_namespace: str
    grafana_namespace: str


@dataclass(frozen=True)
class GrafanaIngress:
    """The baseline's Grafana behind an Ingress (instead of a NodePort), with TLS."""

    host: str
    tls_secret: str  # a kubernetes.io/tls Secret in the monitoring namespace, made outside the stack
    class_name: str | None  # the IngressClass; None: the cluster's default
    controller_namespace: str  # where the ingress controller runs: Grafana admits only it


@dataclass(frozen=True)
class MonitoringConfig:
    deploy: bool
    grafana_node_port: int
    control_plane_metrics: bool
    existing: ExistingMonitoring | None
    grafana_ingress: GrafanaIngress | None = None
    install_crds: bool = True  # the Prometheus Operator's CRDs, kept on destroy

    def installation(self) -> ExistingMonitoring:
        """The existing Prometheus the stack plugs into (load() sets it exactly when deploy is false)."""
        if self.existing is None:
            raise ValueError("monitoring.deploy is true: the stack plugs into no existing Prometheus")
        return self.existing

    @property
    def has_prometheus_operator(self) -> bool:
        """Whether ServiceMonitors will be picked up (else scrape annotations are used)."""
        return self.deploy or (self.existing is not None and self.existing.service_monitors)


def read_monitoring(r: ConfigReader) -> MonitoringConfig:
    keys = (
        "deploy",
        "grafanaNodePort",
        "grafanaIngress",
        "controlPlaneMetrics",
        "installCrds",
        "prometheusUrl",
        "serviceMonitors",
        "serviceMonitorLabels",
    )
    section = r.section("monitoring", keys)
    deploy = r.boolean("monitoring.deploy", section.get("deploy"), True)
    node_port = r.integer("monitoring.grafanaNodePort", section.get("grafanaNodePort"), 30300, *NODE_PORTS)
    control_plane = r.boolean("monitoring.controlPlaneMetrics", section.get("controlPlaneMetrics"), False)
    install_crds = r.boolean("monitoring.installCrds", section.get("installCrds"), True)
    existing = None
    ingress = None
    if deploy:
        for key in ("prometheusUrl", "serviceMonitors", "serviceMonitorLabels"):
            if key in section:
                r.problem(
                    f"monitoring.{key}",
                    section[key],
                    "only applies with monitoring.deploy = false (an existing Prometheus)",
                )
        if "grafanaIngress" in section:
            ingress = _grafana_ingress(r, section["grafanaIngress"])
            if "grafanaNodePort" in section:
                r.problem(
                    "monitoring.grafanaNodePort",
                    section["grafanaNodePort"],
                    "give monitoring.grafanaNodePort or monitoring.grafanaIngress, not both: "
                    "behind an Ingress Grafana has a ClusterIP Service and no NodePort",
                )
    else:
        for key in ("grafanaNodePort", "grafanaIngress", "controlPlaneMetrics", "installCrds"):
            if key in section:
                r.problem(f"monitoring.{key}", section[key], "only applies with monitoring.deploy = true")
        prometheus_url = r.url("monitoring.prometheusUrl", section.get("prometheusUrl"))
        if "prometheusUrl" not in section:
            r.missing(
                "monitoring.prometheusUrl",
                "with monitoring.deploy = false, give the in-cluster URL of your Prometheus, e.g. "
                "`pulumi config set --path monitoring.prometheusUrl http://prometheus-operated.monitoring:9090`",
            )
        namespace = service_namespace(prometheus_url) if prometheus_url else None
        if prometheus_url and namespace is None:
            r.problem(
                "monitoring.prometheusUrl",
                prometheus_url,
                "must name your Prometheus's Service as http://<service>.<namespace>[.svc.cluster.local]:<port>: "
                "the stack lets only that namespace scrape its metrics ports, and never deploys into it",
            )
        existing = ExistingMonitoring(
            prometheus_url=prometheus_url or "",
            service_monitors=r.boolean("monitoring.serviceMonitors", section.get("serviceMonitors"), False),
            service_monitor_labels=r.string_map("monitoring.serviceMonitorLabels", section.get("serviceMonitorLabels")),
            prometheus_namespace=namespace or "",
            grafana_namespace=namespace or "",
        )
    return MonitoringConfig(
        deploy=deploy,
        grafana_node_port=node_port,
        control_plane_metrics=control_plane,
        existing=existing,
        grafana_ingress=ingress,
        install_crds=install_crds,
    )


def service_namespace(url: str) -> str | None:
    """The namespace in an in-cluster Service URL (``http://<service>.<namespace>[.svc...]``),
    or None when the host is no such name (a bare Service name, an IP, an outside host)."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    labels = host.split(".")
    if len(labels) == 2 or (len(labels) > 2 and labels[2] == "svc"):
        return labels[1] if RFC1123_LABEL.match(labels[1]) else None
    return None


def _grafana_ingress(r: ConfigReader, value: Any) -> GrafanaIngress | None:
    key = "monitoring.grafanaIngress"
    value = r.mapping(key, value, ("host", "tlsSecret", "className", "controllerNamespace"))
    examples = {
        "host": "grafana.example.com",
        "tlsSecret": "grafana-tls (a kubernetes.io/tls Secret in the monitoring namespace)",
        "controllerNamespace": "ingress-nginx (where your ingress controller runs: Grafana admits only it)",
    }
    for required, example in examples.items():
        if value and required not in value:
            r.missing(f"{key}.{required}", f"an Ingress for Grafana needs it, e.g. {example}")
    host, tls_secret, class_name = value.get("host"), value.get("tlsSecret"), value.get("className")
    if host is not None and (not isinstance(host, str) or not RFC1123_SUBDOMAIN.match(host) or "." not in host):
        r.problem(f"{key}.host", host, "must be a DNS name such as grafana.example.com (lower case, no scheme or port)")
        host = None
    for sub, name in (("tlsSecret", tls_secret), ("className", class_name)):
        if name is not None and (not isinstance(name, str) or not RFC1123_SUBDOMAIN.match(name)):
            what = "Secret" if sub == "tlsSecret" else "IngressClass"
            r.problem(f"{key}.{sub}", name, f"must be the name of a Kubernetes {what} (lower case, digits, '-', '.')")
            value = {**value, sub: None}
    controller = value.get("controllerNamespace")
    if controller is not None and (not isinstance(controller, str) or not RFC1123_LABEL.match(controller)):
        r.problem(f"{key}.controllerNamespace", controller, "must be a namespace name, e.g. ingress-nginx")
        controller = None
    if not (host and value.get("tlsSecret") and controller):
        return None
    return GrafanaIngress(
        host=host, tls_secret=value["tlsSecret"], class_name=value.get("className"), controller_namespace=controller
    )
