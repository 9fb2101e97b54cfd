"""The stack's configuration: read once, validated, frozen.

Every key lives under the project's namespace (``runtime-defense:``). ``load()`` reads
them all, checks every one, and raises a single ``ConfigError`` listing every problem
(key, bad value, what is allowed) before any resource is registered. Components never
read configuration themselves: they receive these objects.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import pulumi
import yaml
from pulumi.runtime import config as runtime_config

PROJECT = "runtime-defense"

Profile = Literal["current", "tutorial"]
PROFILES: tuple[Profile, ...] = ("current", "tutorial")

# Falco drivers each profile's chart accepts; the first is the default. Chart 9 (current)
# removed the legacy `ebpf` probe; chart 8 (tutorial) still has it, the walk-through's choice.
FALCO_DRIVERS: dict[Profile, tuple[str, ...]] = {
    "current": ("modern_ebpf", "kmod", "auto"),
    "tutorial": ("ebpf", "modern_ebpf", "kmod"),
}
LokiMode = Literal["monolithic", "scalable"]
LOKI_MODES: tuple[LokiMode, ...] = ("monolithic", "scalable")
KeyAlgorithm = Literal["ECDSA-P256", "RSA-2048", "RSA-4096"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = ("ECDSA-P256", "RSA-2048", "RSA-4096")
# The top-level keys of a Falco rules file.
FALCO_RULE_ITEMS = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")

# Namespaces the cluster owns: creating them would fail and destroying them would hurt.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

_RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RFC1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_NODE_PORTS = (30000, 32767)


class ConfigError(pulumi.RunError):
    """Raised by ``load()`` with every configuration problem; nothing has been deployed."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}, nothing was deployed:\n{lines}")


@dataclass(frozen=True)
class KubernetesTarget:
    """Which cluster the one explicit Kubernetes provider talks to."""

    context: str | None
    kubeconfig: pulumi.Output[str] | None  # a path or the file's contents, always secret


@dataclass(frozen=True)
class Namespaces:
    monitoring: str  # used only when the stack deploys the monitoring baseline
    logging: str
    falco: str


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


@dataclass(frozen=True)
class ObjectStorage:
    """An S3-compatible bucket for Loki's chunks and index (scalable mode)."""

    endpoint: str  # host[:port]
    insecure: bool  # http:// endpoint
    bucket: str
    region: str | None
    force_path_style: bool  # MinIO and most non-AWS stores need path-style URLs
    # Both or neither (then the pods' own identity is used, e.g. IRSA); always secret.
    access_key_id: pulumi.Output[str] | None
    secret_access_key: pulumi.Output[str] | None


@dataclass(frozen=True)
class LoggingConfig:
    storage_size: str
    storage_class: str | None
    retention: str
    mode: LokiMode
    replicas: int  # read, write and backend replicas (scalable)
    object_storage: ObjectStorage | None
    retain_volumes: bool  # keep Loki's volumes (and their namespace) on `pulumi destroy`


@dataclass(frozen=True)
class FalcoConfig:
    driver: str
    custom_rules: Mapping[str, str]  # rules file name -> rules YAML


@dataclass(frozen=True)
class PkiConfig:
    key_algorithm: KeyAlgorithm
    validity_hours: int
    early_renewal_hours: int
    ca_validity_hours: int


@dataclass(frozen=True)
class EventExportConfig:
    replicas: int  # Falcosidekick replicas (current profile)


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


@dataclass(frozen=True)
class AlertingConfig:
    webhook_url: pulumi.Output[str] | None  # secret: webhook URLs usually carry a token
    email_addresses: tuple[str, ...]
    # Hours before an mTLS certificate expires that the expiry alert fires.
    certificate_warning_hours: int


@dataclass(frozen=True)
class StackConfig:
    profile: Profile
    kubernetes: KubernetesTarget
    namespaces: Namespaces
    monitoring: MonitoringConfig
    logging: LoggingConfig
    falco: FalcoConfig
    pki: PkiConfig
    event_export: EventExportConfig
    grafana: GrafanaConfig
    alerting: AlertingConfig


T = TypeVar("T")


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


class _Reader:
    """Typed getters that record problems instead of raising, so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    # -- reporting -------------------------------------------------------------------
    def problem(self, key: str, value: Any, allowed: str) -> None:
        """Records a bad value; a value stored as a secret is shown as <secret>, whatever its depth."""
        self.problems.append(f"{PROJECT}:{key} = {self.shown(key, value)}: {allowed}")

    def missing(self, key: str, why: str) -> None:
        self.problems.append(f"{PROJECT}:{key} is not set: {why}")

    def shown(self, key: str, value: Any) -> str:
        """How a problem may quote the value of ``key``: never the value of a secret."""
        return '"<secret>"' if self.is_secret(key) else _show(value)

    # -- raw access ------------------------------------------------------------------
    def raw(self, key: str) -> str | None:
        """The stored string, secret or not, for validation only (never echoed if secret)."""
        value = runtime_config.get_config(f"{PROJECT}:{key}")
        return None if value is None else str(value)

    def is_secret(self, key: str) -> bool:
        """Whether ``key`` or the top-level key holding it is stored as a secret. The CLI keeps
        secrets per top-level key: `pulumi config set --secret --path grafana.url ...` makes
        the whole of ``grafana`` secret, and the program sees it as one secret JSON value."""
        top = key.split(".", 1)[0]
        return any(runtime_config.is_config_secret(f"{PROJECT}:{k}") for k in dict.fromkeys((key, top)))

    def section(self, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        """A structured value (``pulumi config set --path key.sub value``) with known sub-keys."""
        text = self.raw(key)
        if text is None:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        return self.mapping(key, value, known)

    def mapping(self, key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        """A map whose keys must be among ``known`` (a typo would otherwise be ignored)."""
        if not isinstance(value, dict):
            self.problem(key, value, f"must be a map with keys {', '.join(known)}")
            return {}
        short = key.rsplit(".", 1)[-1]
        for sub in value:
            if sub not in known:
                self.problem(f"{key}.{sub}", value[sub], f"unknown key; {short} takes {', '.join(known)}")
        return value

    def unknown_top_level_keys(self, known: tuple[str, ...]) -> None:
        """Catch typos such as ``runtime-defense:profle`` that would otherwise be ignored."""
        prefix = f"{PROJECT}:"
        present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        for full_key in sorted(present):
            if not full_key.startswith(prefix):
                continue
            key = full_key[len(prefix) :]
            if key in known:
                continue
            head = key.split(".", 1)[0]
            hint = (
                f"set it with `pulumi config set --path {key} ...` (without --path the dot is part of the key)"
                if "." in key and head in known
                else f"known keys: {', '.join(known)}"
            )
            self.problem(key, present[full_key], f"unknown key; {hint}")

    # -- typed values -------------------------------------------------------------------
    def choice(self, key: str, value: Any, allowed: tuple[T, ...], default: T) -> T:
        if value is None:
            return default
        if value not in allowed:
            self.problem(key, value, "allowed values are " + ", ".join(_show(a) for a in allowed))
            return default
        return value

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.problem(key, value, "must be true or false")
        return default

    def integer(self, key: str, value: Any, default: int, low: int, high: int) -> int:
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or not low <= number <= high:
            self.problem(key, value, f"must be a whole number from {low} to {high}")
            return default
        return number

    def matching(self, key: str, value: Any, default: str, pattern: re.Pattern[str], allowed: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(key, value, allowed)
            return default
        return value

    def namespace(self, key: str, value: Any, default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 63 or not _RFC1123_LABEL.match(value):
            self.problem(
                key,
                value,
                "must be an RFC 1123 label: at most 63 characters, lower-case letters, digits "
                "and '-', starting and ending with a letter or digit",
            )
            return default
        if value in RESERVED_NAMESPACES:
            self.problem(
                key,
                value,
                f"is owned by the cluster ({', '.join(sorted(RESERVED_NAMESPACES))}); "
                "choose a namespace the stack can create and destroy",
            )
            return default
        return value

    def url(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s:]+(:[0-9]{1,5})?(/\S*)?$", value):
            self.problem(
                key, value, "must be an http:// or https:// URL with a host, e.g. http://prometheus.monitoring:9090"
            )
            return None
        return value.rstrip("/")

    def string_map(self, key: str, value: Any) -> Mapping[str, str]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self.problem(key, value, "must be a map of strings to strings")
            return MappingProxyType({})
        return MappingProxyType(dict(value))


TOP_LEVEL_KEYS = (
    "profile",
    "kubeContext",
    "kubeconfig",
    "namespaces",
    "monitoring",
    "logging",
    "falco",
    "pki",
    "eventExport",
    "grafana",
    "grafanaToken",
    "alerting",
    "alertWebhookUrl",
    "lokiS3AccessKeyId",
    "lokiS3SecretAccessKey",
)


def _kubernetes(r: _Reader) -> KubernetesTarget:
    context = r.raw("kubeContext")
    if context is not None and not context.strip():
        r.problem("kubeContext", context, "must name a context in your kubeconfig, e.g. minikube")
        context = None
    kubeconfig_text = r.raw("kubeconfig")
    kubeconfig = None
    if kubeconfig_text is not None:
        is_contents = "\n" in kubeconfig_text or kubeconfig_text.lstrip().startswith(("apiVersion", "{"))
        if not is_contents and not os.path.exists(os.path.expanduser(kubeconfig_text)):
            r.problem("kubeconfig", kubeconfig_text, "must be the path of an existing kubeconfig file or its contents")
        else:
            path_or_contents = kubeconfig_text if is_contents else os.path.expanduser(kubeconfig_text)
            kubeconfig = pulumi.Output.secret(path_or_contents)
    return KubernetesTarget(context=context, kubeconfig=kubeconfig)


def _namespaces(r: _Reader) -> Namespaces:
    section = r.section("namespaces", ("monitoring", "logging", "falco"))
    return Namespaces(
        monitoring=r.namespace("namespaces.monitoring", section.get("monitoring"), "monitoring"),
        logging=r.namespace("namespaces.logging", section.get("logging"), "logging"),
        falco=r.namespace("namespaces.falco", section.get("falco"), "falco"),
    )


def _monitoring(r: _Reader) -> MonitoringConfig:
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
    node_port = r.integer("monitoring.grafanaNodePort", section.get("grafanaNodePort"), 30300, *_NODE_PORTS)
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
        return labels[1] if _RFC1123_LABEL.match(labels[1]) else None
    return None


def _grafana_ingress(r: _Reader, value: Any) -> GrafanaIngress | None:
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
    if host is not None and (not isinstance(host, str) or not _RFC1123_SUBDOMAIN.match(host) or "." not in host):
        r.problem(f"{key}.host", host, "must be a DNS name such as grafana.example.com (lower case, no scheme or port)")
        host = None
    for sub, name in (("tlsSecret", tls_secret), ("className", class_name)):
        if name is not None and (not isinstance(name, str) or not _RFC1123_SUBDOMAIN.match(name)):
            what = "Secret" if sub == "tlsSecret" else "IngressClass"
            r.problem(f"{key}.{sub}", name, f"must be the name of a Kubernetes {what} (lower case, digits, '-', '.')")
            value = {**value, sub: None}
    controller = value.get("controllerNamespace")
    if controller is not None and (not isinstance(controller, str) or not _RFC1123_LABEL.match(controller)):
        r.problem(f"{key}.controllerNamespace", controller, "must be a namespace name, e.g. ingress-nginx")
        controller = None
    if not (host and value.get("tlsSecret") and controller):
        return None
    return GrafanaIngress(
        host=host, tls_secret=value["tlsSecret"], class_name=value.get("className"), controller_namespace=controller
    )


def _logging(r: _Reader, profile: Profile) -> LoggingConfig:
    keys = ("storageSize", "storageClass", "retention", "mode", "replicas", "objectStorage", "retainVolumes")
    section = r.section("logging", keys)
    storage_class = section.get("storageClass")
    if storage_class is not None and (
        not isinstance(storage_class, str) or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", storage_class)
    ):
        r.problem("logging.storageClass", storage_class, "must be the name of a StorageClass, e.g. standard")
        storage_class = None
    mode = r.choice("logging.mode", section.get("mode"), LOKI_MODES, "monolithic")
    scalable = mode == "scalable"
    if scalable and profile == "tutorial":
        r.problem("logging.mode", mode, "the tutorial profile runs loki-stack, which is monolithic only")
    for key in ("replicas", "objectStorage"):
        if key in section and not scalable:
            r.problem(f"logging.{key}", section[key], "only applies with logging.mode = scalable")
    retain = r.boolean("logging.retainVolumes", section.get("retainVolumes"), False)
    if retain and profile == "tutorial":
        r.problem("logging.retainVolumes", retain, "the tutorial's loki-stack keeps no volumes")
    object_storage = _object_storage(r, section.get("objectStorage")) if scalable else None
    if not scalable:
        for key in ("lokiS3AccessKeyId", "lokiS3SecretAccessKey"):
            if r.raw(key) is not None:
                r.problem(key, "<set>", "only applies with logging.mode = scalable")
    return LoggingConfig(
        storage_size=r.matching(
            "logging.storageSize",
            section.get("storageSize"),
            "5Gi",
            _QUANTITY,
            "must be a Kubernetes quantity such as 5Gi or 500Mi",
        ),
        storage_class=storage_class,
        retention=r.matching(
            "logging.retention",
            section.get("retention"),
            "168h",
            _DURATION,
            "must be a duration such as 168h, 7d or 30d",
        ),
        mode=mode,
        replicas=r.integer("logging.replicas", section.get("replicas"), 3, 1, 20),
        object_storage=object_storage,
        retain_volumes=retain,
    )


def _object_storage(r: _Reader, value: Any) -> ObjectStorage | None:
    if value is None:
        r.missing(
            "logging.objectStorage",
            "scalable Loki keeps its data in an S3-compatible bucket: set logging.objectStorage.endpoint "
            "(e.g. https://s3.eu-west-1.amazonaws.com) and logging.objectStorage.bucket",
        )
        return None
    value = r.mapping("logging.objectStorage", value, ("endpoint", "bucket", "region", "forcePathStyle"))
    endpoint = r.url("logging.objectStorage.endpoint", value.get("endpoint"))
    if "endpoint" not in value:
        r.missing("logging.objectStorage.endpoint", "the bucket's S3 endpoint, e.g. https://s3.eu-west-1.amazonaws.com")
    bucket = value.get("bucket")
    if not isinstance(bucket, str) or not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
        r.problem(
            "logging.objectStorage.bucket",
            bucket,
            "must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-')",
        )
    region = value.get("region")
    if region is not None and (not isinstance(region, str) or not re.match(r"^[a-z0-9-]+$", region)):
        r.problem("logging.objectStorage.region", region, "must be a region name such as eu-west-1")
    key_id = _secret(r, "lokiS3AccessKeyId", "<access key id>")
    secret_key = _secret(r, "lokiS3SecretAccessKey", "<secret access key>")
    has_id, has_key = r.raw("lokiS3AccessKeyId") is not None, r.raw("lokiS3SecretAccessKey") is not None
    if has_id != has_key:
        r.missing(
            "lokiS3SecretAccessKey" if has_id else "lokiS3AccessKeyId",
            "give both lokiS3AccessKeyId and lokiS3SecretAccessKey, or neither to use the pods' own identity",
        )
    if endpoint is None or not isinstance(bucket, str):
        return None
    host = endpoint.split("://", 1)[1].split("/", 1)[0]
    return ObjectStorage(
        endpoint=host,
        insecure=endpoint.startswith("http://"),
        bucket=bucket,
        region=region,
        force_path_style=r.boolean("logging.objectStorage.forcePathStyle", value.get("forcePathStyle"), False),
        access_key_id=key_id,
        secret_access_key=secret_key,
    )


def _falco(r: _Reader, profile: Profile) -> FalcoConfig:
    section = r.section("falco", ("driver", "customRules"))
    drivers = FALCO_DRIVERS[profile]
    driver = section.get("driver")
    if driver is not None and driver not in drivers:
        why = " (falco chart 9 removed the legacy probe; modern_ebpf needs no download)" if driver == "ebpf" else ""
        r.problem(
            "falco.driver",
            driver,
            f"not a driver of profile {profile}{why}; allowed: {', '.join(drivers)}",
        )
        driver = None
    return FalcoConfig(driver=driver or drivers[0], custom_rules=_custom_rules(r, section.get("customRules")))


def _custom_rules(r: _Reader, value: Any) -> Mapping[str, str]:
    """A map of rules file name to rules text, each parsed as Falco reads it."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        r.problem("falco.customRules", value, "must be a map of file name (e.g. my-rules.yaml) to rules YAML")
        return MappingProxyType({})
    rules: dict[str, str] = {}
    for name, text in value.items():
        key = f"falco.customRules.{name}"
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$", name):
            r.problem(key, name, "the file name must end in .yaml or .yml and use letters, digits, '.', '_', '-'")
            continue
        if not isinstance(text, str):
            r.problem(key, text, "must be the rules file's text")
            continue
        lines = text.splitlines() or [""]
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line if mark else 0
            r.problem(
                key,
                _excerpt(lines[min(line, len(lines) - 1)]),
                f"is not valid YAML (line {line + 1}: {getattr(error, 'problem', None) or error})",
            )
            continue
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and any(k in item for k in FALCO_RULE_ITEMS) for item in items
        ):
            r.problem(
                key,
                _excerpt(lines[0]),
                f"must be a YAML list whose items each have one of: {', '.join(FALCO_RULE_ITEMS)}",
            )
            continue
        rules[name] = text
    return MappingProxyType(rules)


def _excerpt(line: str) -> str:
    return line if len(line) <= 60 else line[:57] + "..."


def _pki(r: _Reader) -> PkiConfig:
    section = r.section("pki", ("keyAlgorithm", "validityHours", "earlyRenewalHours", "caValidityHours"))
    year = 24 * 365
    validity = r.integer("pki.validityHours", section.get("validityHours"), year, 1, 10 * year)
    renewal = r.integer("pki.earlyRenewalHours", section.get("earlyRenewalHours"), 30 * 24, 0, 10 * year)
    ca_validity = r.integer("pki.caValidityHours", section.get("caValidityHours"), 5 * year, 1, 30 * year)
    shown = r.shown("pki.validityHours", validity)
    if renewal >= validity:
        r.problem(
            "pki.earlyRenewalHours",
            renewal,
            f"must be shorter than pki.validityHours ({shown}), or certificates renew on every update",
        )
    if ca_validity < validity:
        r.problem(
            "pki.caValidityHours",
            ca_validity,
            f"must be at least pki.validityHours ({shown}): a certificate cannot outlive its CA",
        )
    return PkiConfig(
        key_algorithm=r.choice("pki.keyAlgorithm", section.get("keyAlgorithm"), KEY_ALGORITHMS, "ECDSA-P256"),
        validity_hours=validity,
        early_renewal_hours=renewal,
        ca_validity_hours=ca_validity,
    )


def _event_export(r: _Reader, profile: Profile) -> EventExportConfig:
    section = r.section("eventExport", ("replicas",))
    if profile == "tutorial" and "replicas" in section:
        r.problem(
            "eventExport.replicas",
            section["replicas"],
            "only applies with profile current (falco-exporter runs one pod per node)",
        )
    return EventExportConfig(replicas=r.integer("eventExport.replicas", section.get("replicas"), 1, 1, 10))


def _secret(r: _Reader, key: str, example: str) -> pulumi.Output[str] | None:
    """A value that must be stored encrypted (`pulumi config set --secret`)."""
    value = r.raw(key)
    if value is None:
        return None
    if not r.is_secret(key):
        r.problem(
            key,
            "<not shown>",
            f"must be stored encrypted: `pulumi config set --secret {key} {example}`",
        )
        return None
    if not value.strip():
        r.problem(key, "<secret>", "is empty")
        return None
    return pulumi.Output.secret(value)


def _grafana(r: _Reader, monitoring: MonitoringConfig) -> GrafanaConfig:
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
    token = _secret(r, "grafanaToken", "<service account token>")
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


def _alerting(r: _Reader, pki: PkiConfig) -> AlertingConfig:
    section = r.section("alerting", ("email", "certificateWarningHours"))
    addresses = section.get("email", [])
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, list) or not all(
        isinstance(a, str) and re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", a) for a in addresses
    ):
        r.problem("alerting.email", addresses, "must be a list of e-mail addresses")
        addresses = []
    webhook = _secret(r, "alertWebhookUrl", "https://hooks.example.com/...")
    raw = r.raw("alertWebhookUrl")
    if webhook is not None and raw is not None and not re.match(r"^https?://[^/\s]+", raw):
        r.problem("alertWebhookUrl", "<secret>", "must be an http:// or https:// URL")
        webhook = None
    # Halfway through the renewal window: `pulumi up` (by hand or on a schedule) has had half
    # of pki.earlyRenewalHours to renew the certificates, and half is left to find out why not.
    warning = r.integer(
        "alerting.certificateWarningHours",
        section.get("certificateWarningHours"),
        pki.early_renewal_hours // 2,
        0,
        pki.validity_hours - 1,
    )
    if pki.early_renewal_hours and warning > pki.early_renewal_hours:
        r.problem(
            "alerting.certificateWarningHours",
            warning,
            f"must be at most pki.earlyRenewalHours ({pki.early_renewal_hours}): before then `pulumi up` "
            "does not renew the certificates yet, so the alert would fire on every certificate",
        )
    return AlertingConfig(webhook_url=webhook, email_addresses=tuple(addresses), certificate_warning_hours=warning)


def _own_namespaces_only(r: _Reader, namespaces: Namespaces, monitoring: MonitoringConfig) -> None:
    """The stack creates its namespaces and deletes them, with all they hold, on destroy: it
    must never deploy into one that belongs to the installation it plugs into."""
    existing = monitoring.existing
    if existing is None:
        return
    theirs = {
        existing.prometheus_namespace: "your Prometheus's namespace (from monitoring.prometheusUrl)",
        existing.grafana_namespace: "your Grafana's namespace (from grafana.adminSecret.namespace)"
        if existing.grafana_namespace != existing.prometheus_namespace
        else "your Prometheus's namespace (from monitoring.prometheusUrl)",
    }
    for key, namespace in (("namespaces.logging", namespaces.logging), ("namespaces.falco", namespaces.falco)):
        if namespace in theirs:
            r.problem(
                key,
                namespace,
                f"is {theirs[namespace]}: the stack deletes its namespaces, and what is in them, on destroy, "
                "so it deploys only into namespaces it creates; choose another",
            )


def load() -> StackConfig:
    """Read and validate the whole stack configuration, or raise ConfigError with every problem."""
    r = _Reader()
    r.unknown_top_level_keys(TOP_LEVEL_KEYS)
    profile = r.choice("profile", r.raw("profile"), PROFILES, "current")
    kubernetes = _kubernetes(r)
    namespaces = _namespaces(r)
    monitoring = _monitoring(r)
    logging, falco = _logging(r, profile), _falco(r, profile)
    pki = _pki(r)
    event_export = _event_export(r, profile)
    grafana = _grafana(r, monitoring)
    if monitoring.existing is not None and grafana.admin_secret is not None:
        # An existing Grafana runs where its admin password is kept.
        existing = replace(monitoring.existing, grafana_namespace=grafana.admin_secret.namespace)
        monitoring = replace(monitoring, existing=existing)
    _own_namespaces_only(r, namespaces, monitoring)
    config = StackConfig(
        profile=profile,
        kubernetes=kubernetes,
        namespaces=namespaces,
        monitoring=monitoring,
        logging=logging,
        falco=falco,
        pki=pki,
        event_export=event_export,
        grafana=grafana,
        alerting=_alerting(r, pki),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config
