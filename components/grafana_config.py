"""Configuration of the Grafana that Pulumi wires: ``grafana.*``, ``grafanaToken``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pulumi

from components import grafana_url
from components.cluster_config import KubernetesTarget
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
    # Where the URL comes from (the stack output grafanaUrlSource), and, when the program
    # found it itself, what it says about where it looked (logged at evaluation).
    url_source: str = "grafana.url"
    url_found: str | None = None


def read_grafana(r: ConfigReader, monitoring: MonitoringConfig, kubernetes: KubernetesTarget) -> GrafanaConfig:
    section = r.section("grafana", ("url", "adminUser", "adminSecret"))
    url = r.url("grafana.url", section.get("url"))
    source, found = "grafana.url", None
    if "url" not in section:
        url, source, found = _find_url(r, monitoring, kubernetes)
    admin_user = section.get("adminUser", "admin")
    if not isinstance(admin_user, str) or not admin_user.strip() or ":" in admin_user:
        r.problem("grafana.adminUser", admin_user, "must be a user name without ':'")
        admin_user = "admin"
    token = r.secret("grafanaToken", "the token")
    admin_secret = None
    if "adminSecret" in section:
        ref = r.mapping("grafana.adminSecret", section["adminSecret"], ("namespace", "name", "key"))
        for required in ("namespace", "name"):
            if ref and required not in ref:
                r.missing(
                    f"grafana.adminSecret.{required}",
                    "name the Secret holding Grafana's admin password, e.g. "
                    "`pulumi config set --path grafana.adminSecret.namespace monitoring` and "
                    "`pulumi config set --path grafana.adminSecret.name grafana` (key defaults to admin-password)",
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
            "(`pulumi config set --secret grafanaToken`, which asks for it) or the Secret holding its admin "
            "password (`pulumi config set --path grafana.adminSecret.namespace monitoring` and "
            "`pulumi config set --path grafana.adminSecret.name grafana`)",
        )
    grafana_url_value: pulumi.Input[str] = url or ""
    if r.is_secret("grafana"):
        secret_url: pulumi.Output[str] = pulumi.Output.secret(url or "")
        grafana_url_value = secret_url
    return GrafanaConfig(
        url=grafana_url_value,
        admin_user=admin_user,
        admin_secret=admin_secret,
        token=token,
        url_source=source,
        url_found=found,
    )


def _find_url(
    r: ConfigReader, monitoring: MonitoringConfig, kubernetes: KubernetesTarget
) -> tuple[str | None, str, str | None]:
    """Grafana's URL where the program can know it: (url, its source, what to tell the user)."""
    ingress = monitoring.grafana_ingress
    if ingress is not None:
        url = f"https://{ingress.host}"
        source = "monitoring.grafanaIngress.host"
        found = f"Pulumi reaches Grafana at {url}: grafana.url is not set, so the program took its Ingress ({source})."
        return url, source, found
    if not monitoring.deploy:
        r.missing(
            "grafana.url",
            "with monitoring.deploy = false, give the URL Pulumi reaches your Grafana's API at, e.g. "
            "`pulumi config set --path grafana.url https://grafana.example.com`",
        )
        return None, "", None
    if kubernetes.kubeconfig_problem:
        return None, "", None  # the kubeconfig key is wrong, and already reported
    port = monitoring.grafana_node_port
    try:
        api = grafana_url.find_api_server(
            kubernetes.kubeconfig_path, kubernetes.kubeconfig_contents, kubernetes.context, os.environ
        )
    except grafana_url.NoApiServer as missing:
        fixes = [f"`{fix}`" for fix in missing.fixes]
        fixes.append(
            f"give the URL this machine reaches Grafana's NodePort {port} at, e.g. `{grafana_url.example_fix(port)}`"
        )
        r.missing(
            "grafana.url",
            f"Pulumi looks for Grafana's NodePort {port} on the host of the Kubernetes API server, but "
            f"{missing.reason}; {', or '.join(fixes)}",
        )
        return None, "", None
    url = grafana_url.node_port_url(api, port)
    return url, grafana_url.node_port_source(api, port), grafana_url.node_port_note(api, url, port)
