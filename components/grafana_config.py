"""Configuration of the Grafana that Pulumi wires: ``grafana.*``, ``grafanaToken``."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config_reader import ConfigReader
from components.monitoring_config import MonitoringConfig

KEYS = ("grafana", "grafanaToken")


@dataclass(frozen=True)
class AdminSecretRef:
    """Where an existing Grafana keeps its admin password (what `kubectl get secret` reads)."""

    namespace: str
    name: str
    key: str


@dataclass(frozen=True)
class GrafanaConfig:
    # Where Pulumi (and you) reach Grafana's HTTP API; a Pulumi secret when `grafana` is stored
    # as one (a URL may carry credentials), so it stays encrypted in state and outputs.
    url: pulumi.Input[str]
    admin_user: str
    # An existing Grafana only: one of these authenticates Pulumi.
    admin_secret: AdminSecretRef | None
    token: pulumi.Output[str] | None  # a service account token, secret


def read_grafana(r: ConfigReader, monitoring: MonitoringConfig) -> GrafanaConfig:
    section = r.section("grafana", ("url", "adminUser", "adminSecret"))
    url = r.url("grafana.url", section.get("url"))
    if "url" not in section:
        if monitoring.grafana_ingress is not None:
            where = f"https://{monitoring.grafana_ingress.host}, Grafana's Ingress"
        elif monitoring.deploy:
            where = f"http://$(minikube ip):{monitoring.grafana_node_port}, Grafana's NodePort"
        else:
            where = "your Grafana's URL"
        r.missing(
            "grafana.url",
            f"the URL Pulumi reaches Grafana's API at, e.g. `pulumi config set --path grafana.url {where}` "
            "(scripts/minikube-up.sh sets it)",
        )
    admin_user = section.get("adminUser", "admin")
    if not isinstance(admin_user, str) or not admin_user.strip() or ":" in admin_user:
        r.problem("grafana.adminUser", admin_user, "must be a user name without ':'")
        admin_user = "admin"
    token = r.secret("grafanaToken", "<service account token>")
    admin_secret = None
    if "adminSecret" in section:
        ref = r.mapping("grafana.adminSecret", section["adminSecret"], ("namespace", "name", "key"))
        for required in ("namespace", "name"):
            if ref and required not in ref:
                r.missing(
                    f"grafana.adminSecret.{required}",
                    "name the Secret holding Grafana's admin password, e.g. {namespace: monitoring, name: grafana} "
                    "(key defaults to admin-password)",
                )
        if {"namespace", "name"} <= set(ref):
            admin_secret = AdminSecretRef(
                namespace=str(ref["namespace"]), name=str(ref["name"]), key=str(ref.get("key", "admin-password"))
            )
    if monitoring.deploy:
        for key, present in (("grafana.adminSecret", admin_secret), ("grafanaToken", token)):
            if present is not None:
                r.problem(
                    key,
                    "<set>",
                    "only applies with monitoring.deploy = false: the baseline's Grafana gets a generated password",
                )
    elif admin_secret is not None and token is not None:
        r.problem("grafanaToken", "<secret>", "give grafanaToken or grafana.adminSecret, not both")
    elif admin_secret is None and token is None and r.raw("grafanaToken") is None:
        r.missing(
            "grafanaToken",
            "an existing Grafana needs credentials: a service account token "
            "(`pulumi config set --secret grafanaToken <token>`) or the Secret holding its admin password "
            "(`pulumi config set --path grafana.adminSecret.namespace monitoring` and `.name grafana`)",
        )
    grafana_url: pulumi.Input[str] = url or ""
    if r.is_secret("grafana"):
        secret_url: pulumi.Output[str] = pulumi.Output.secret(url or "")
        grafana_url = secret_url
    return GrafanaConfig(url=grafana_url, admin_user=admin_user, admin_secret=admin_secret, token=token)
