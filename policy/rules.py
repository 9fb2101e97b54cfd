"""The runtime-defense policies, each a validate function and its policy.

Most rules look at what the charts render (Deployments, ConfigMaps, Secrets...): with Helm
v4 Charts every rendered object is its own resource in `pulumi preview`, so the policies
check what will actually run, not only the chart values that produced it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

CHART_TYPES = {"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v3:Release"}
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
POD_TEMPLATE_KINDS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
DATA_SOURCE = "grafana:oss/dataSource:DataSource"

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
# Keys whose value is a credential (names of Secrets, such as existingSecret, are not).
SENSITIVE_KEYS = re.compile(
    r"^(password|adminPassword|passwd|secretAccessKey|secret_access_key|apiKey|apikey|api_key|token|bearerToken"
    r"|bearer_token|basicAuthPassword|clientSecret|client_secret)$"
)
SENSITIVE_LINE = re.compile(
    r"^\s*(password|secret_access_key|api_key|apikey|token|bearer_token|client_secret)\s*[:=]\s*(\S+)",
    re.IGNORECASE | re.MULTILINE,
)


# -- helpers ----------------------------------------------------------------------------------


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) under ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


def _is_placeholder(value: str) -> bool:
    return value in ('""', "''") or value.startswith(("${", "$(", "{{"))


def _containers(args: ResourceValidationArgs) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind of container, container) for every container a workload runs, Helm test hooks aside."""
    path = POD_TEMPLATE_KINDS.get(args.resource_type)
    if path is None:
        return
    if "test" in str(_get(args.props, "metadata", "annotations", "helm.sh/hook") or ""):
        return  # Helm test pods are not part of the running stack
    pod = _get(args.props, *path) or {}
    for kind in ("initContainers", "containers"):
        for container in pod.get(kind) or []:
            yield kind, container


# -- charts pinned ----------------------------------------------------------------------------


VENDORED_ARCHIVE = re.compile(r"^charts/[a-z0-9-]+-(\d+\.\d+\.\d+)\.tgz$")


def charts_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in CHART_TYPES:
        return
    chart, version = args.props.get("chart", ""), str(args.props.get("version") or "")
    if VENDORED_ARCHIVE.match(str(chart)):
        return  # a vendored archive: its file name carries the exact version
    if not EXACT_VERSION.match(version):
        report_violation(f"chart {chart!r} must be pinned to an exact version, not {version or 'the latest'!r}")
    repo = _get(args.props, "repositoryOpts", "repo") or ""
    from_repository = bool(re.match(r"^(https|oci)://", repo)) or str(chart).startswith("oci://")
    if not from_repository:
        report_violation(f"chart {chart!r} must name its repository (repositoryOpts.repo, https:// or oci://)")


# -- no plaintext credentials -----------------------------------------------------------------


def no_plaintext_credentials(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in CHART_TYPES:
        for path, value in _walk(args.props.get("values") or {}):
            if isinstance(value, str) and PRIVATE_KEY.search(value):
                report_violation(f"chart values hold a private key at {path}: mount it from a Secret instead")
            elif (
                isinstance(value, str)
                and value
                and not _is_placeholder(value)
                and SENSITIVE_KEYS.match(path.rsplit(".", 1)[-1])
            ):
                report_violation(f"chart values hold a credential at {path}: reference a Secret instead")
    elif args.resource_type == CONFIG_MAP:
        for key, text in (args.props.get("data") or {}).items():
            if not isinstance(text, str):
                continue
            if PRIVATE_KEY.search(text):
                report_violation(f"ConfigMap key {key!r} holds a private key: use a Secret")
            for match in SENSITIVE_LINE.finditer(text):
                if not _is_placeholder(match.group(2)):
                    report_violation(f"ConfigMap key {key!r} sets {match.group(1)} in plain text: use a Secret")


# -- TLS on Falco's event path ----------------------------------------------------------------


def falco_events_over_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Falco's events leave the node only over (mutual) TLS."""
    if args.resource_type == CONFIG_MAP and "falco.yaml" in (args.props.get("data") or {}):
        falco = yaml.safe_load(args.props["data"]["falco.yaml"]) or {}
        http = falco.get("http_output") or {}
        if http.get("enabled"):
            if not str(http.get("url", "")).startswith("https://"):
                report_violation("Falco's http_output must post to an https:// URL")
            if not http.get("mtls") or http.get("insecure"):
                report_violation("Falco's http_output must use mutual TLS (mtls: true, insecure: false)")
        grpc = falco.get("grpc") or {}
        if grpc.get("enabled") and not str(grpc.get("bind_address", "")).startswith("unix://"):
            missing = [k for k in ("private_key", "cert_chain", "root_certs") if not grpc.get(k)]
            if missing:
                report_violation(f"Falco's gRPC server listens on TCP without mutual TLS ({', '.join(missing)} unset)")
    for _, container in _containers(args):
        if image_repository(str(container.get("image", ""))).rsplit("/", 1)[-1] != "falcosidekick":
            continue
        env = {e.get("name"): e.get("value") for e in container.get("env") or []}
        if env.get("TLSSERVER_DEPLOY") != "true" or env.get("TLSSERVER_MUTUALTLS") != "true":
            report_violation("Falcosidekick must receive events over TLS with client certificates required")


def falco_event_forwarding_over_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Falcosidekick's outputs (Loki, webhooks...) carry Falco's events onwards: prefer TLS."""
    data = args.props.get("data") or {}
    if args.resource_type != SECRET or "LOKI_HOSTPORT" not in data:
        return
    for key, encoded in sorted(data.items()):
        try:
            value = base64.b64decode(encoded).decode()
        except (ValueError, TypeError):
            continue
        if value.startswith("http://"):
            report_violation(f"Falcosidekick forwards events in plain HTTP ({key}={value})")


# -- sized workloads, pinned images -----------------------------------------------------------


def workloads_request_cpu_and_memory(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for kind, container in _containers(args):
        requests = _get(container, "resources", "requests") or {}
        missing = [r for r in ("cpu", "memory") if not requests.get(r)]
        if missing:
            report_violation(f"{kind} {container.get('name')!r} requests no {' or '.join(missing)}")


def image_repository(image: str) -> str:
    """An image reference without its tag and digest."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def image_tag(image: str) -> str | None:
    """The tag of an image reference, None if pinned by digest, "" if it has none."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def no_latest_images(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for kind, container in _containers(args):
        image = str(container.get("image", ""))
        tag = image_tag(image)
        if tag is not None and tag in ("", "latest"):
            report_violation(f"{kind} {container.get('name')!r} runs {image!r}: pin a version tag or digest")


# -- one default Grafana data source ----------------------------------------------------------


def _provisioned_defaults(config_map: Mapping[str, Any]) -> Iterator[str]:
    """Names of data sources a sidecar-provisioned ConfigMap marks as default."""
    labels = _get(config_map, "metadata", "labels") or {}
    if "grafana_datasource" not in labels:
        return
    for text in (config_map.get("data") or {}).values():
        try:
            document = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        for source in (document.get("datasources") if isinstance(document, dict) else None) or []:
            if isinstance(source, dict) and str(source.get("isDefault")).lower() == "true":
                yield str(source.get("name"))


def one_default_data_source(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    defaults: list[str] = []
    for resource in args.resources:
        if resource.resource_type == DATA_SOURCE and resource.props.get("isDefault"):
            defaults.append(str(resource.props.get("name")))
        elif resource.resource_type == CONFIG_MAP:
            defaults.extend(_provisioned_defaults(resource.props))
    if len(defaults) > 1:
        report_violation(f"Grafana accepts one default data source, this stack marks {len(defaults)}: {defaults}")


POLICIES = [
    ResourceValidationPolicy(
        name="charts-pinned",
        description="Every Helm chart is pinned to an exact version and names its repository.",
        validate=charts_pinned,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-credentials",
        description="No private key or password in chart values or ConfigMaps: they belong in Secrets.",
        validate=no_plaintext_credentials,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="falco-events-over-tls",
        description="Every network hop from Falco to its exporter uses mutual TLS.",
        validate=falco_events_over_tls,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="falco-event-forwarding-over-tls",
        description="Falcosidekick forwards events to its outputs over TLS (advisory: in-cluster Loki is HTTP).",
        validate=falco_event_forwarding_over_tls,
        enforcement_level=EnforcementLevel.ADVISORY,
    ),
    ResourceValidationPolicy(
        name="workloads-request-cpu-and-memory",
        description="Every container, init containers included, requests CPU and memory.",
        validate=workloads_request_cpu_and_memory,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-latest-images",
        description="Every container image is pinned by a version tag or a digest, never `latest`.",
        validate=no_latest_images,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="one-default-grafana-data-source",
        description="At most one Grafana data source is the default, provisioned ones included.",
        validate=one_default_data_source,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
