"""The runtime-defense policies, each a validate function and its policy.

They judge what the Pulumi engine hands a policy pack, read against its sources:

- A Helm v4 ``Chart`` is a component its provider registers with no input properties
  (pulumi-kubernetes ``provider/pkg/provider/helm/v4/chart.go``): a policy sees
  ``kubernetes:helm.sh/v4:Chart`` with empty props, then every object the chart renders as a
  resource of its own (``kubernetes:apps/v1:DaemonSet``, ``kubernetes:core/v1:ConfigMap``...)
  whose props are the manifest. Hooks are never rendered. So every rule here reads the
  rendered objects, never chart values.
- Props arrive through pulumi-policy's unknown-checking proxy (Mappings and Sequences, not
  dicts and lists); reading a value that is unknown at preview raises ``UnknownValueError``.
  Such values are skipped here: `pulumi up` runs the policies again on the same objects with
  every value known.

The pin table is the program's own (``components/charts.py``), read from the project this
pack sits in, together with the vendored chart archives it names.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import io
import posixpath
import re
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
from pulumi_policy.proxy import UnknownValueError

PROJECT = Path(__file__).resolve().parent.parent
PIN_TABLE = "components/charts.py"

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
# Custom resources whose pods the Prometheus operator runs from `spec.image` and `spec.resources`.
OPERATED = {
    "kubernetes:monitoring.coreos.com/v1:Prometheus",
    "kubernetes:monitoring.coreos.com/v1:Alertmanager",
    "kubernetes:monitoring.coreos.com/v1:ThanosRuler",
}
DATA_SOURCE = "grafana:oss/dataSource:DataSource"

PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
# `key: value` or `key = value` lines (YAML, INI, JSON) that set a credential.
SENSITIVE_LINE = re.compile(
    r"""^\s*["']?(password|passwd|admin_password|secret_access_key|secretAccessKey|api_key|apikey|token"""
    r"""|bearer_token|client_secret|secret_key)["']?\s*[:=]\s*(\S+)""",
    re.IGNORECASE | re.MULTILINE,
)
# Environment variables holding a credential (paths to credential files are not one).
SENSITIVE_ENV = re.compile(
    r"(PASSWORD|PASSWD|SECRET_?ACCESS_?KEY|API_?KEY|API_?TOKEN|AUTH_?TOKEN|BEARER_?TOKEN|PRIVATE_?KEY|CLIENT_?SECRET"
    r"|^TOKEN|_TOKEN)$",
    re.IGNORECASE,
)
SENSITIVE_ARG = re.compile(r"^--?[\w.-]*(password|passwd|token|api-?key|secret-?key|client-?secret)=(.+)$", re.I)
# Grafana's admin password as the charts ship it (kube-prometheus-stack, grafana): anyone
# who can reach Grafana knows it.
DEFAULT_GRAFANA_PASSWORDS = {"prom-operator", "admin"}
GRAFANA_ADMIN_PASSWORD_KEYS = {"admin-password", "GF_SECURITY_ADMIN_PASSWORD"}


# -- reading what the engine sends ------------------------------------------------------------


def _known(node: Any, key: Any) -> Any:
    """``node[key]``, or None when it is missing, unknown at preview, or node is no mapping."""
    if not isinstance(node, Mapping):
        return None
    try:
        return node.get(key)
    except UnknownValueError:
        return None


def _get(node: Any, *path: str) -> Any:
    for key in path:
        node = _known(node, key)
    return node


def _entries(node: Any) -> Iterator[tuple[str, Any]]:
    """The known (key, value) pairs of a mapping."""
    if isinstance(node, Mapping):
        for key in node:
            value = _known(node, key)
            if value is not None:
                yield key, value


def _elements(node: Any) -> Iterator[Any]:
    """The known elements of a list."""
    if isinstance(node, Sequence) and not isinstance(node, str):
        for index in range(len(node)):
            try:
                yield node[index]
            except UnknownValueError:
                continue


def _is_placeholder(value: str) -> bool:
    return value in ('""', "''") or value.startswith(("${", "$(", "{{"))


def _describe(args: ResourceValidationArgs) -> str:
    kind = args.resource_type.rsplit(":", 1)[-1]
    namespace, name = _get(args.props, "metadata", "namespace"), _get(args.props, "metadata", "name")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _containers(args: ResourceValidationArgs) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind of container, container) for every container a workload's pods run."""
    path = POD_SPEC_PATHS.get(args.resource_type)
    if path is None:
        return
    pod = _get(args.props, *path)
    for kind in ("initContainers", "containers"):
        for container in _elements(_known(pod, kind)):
            if isinstance(container, Mapping):
                yield kind, container


def _decoded(secret_props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, text) of each known entry of a Secret, `data` decoded."""
    for key, encoded in _entries(_known(secret_props, "data")):
        try:
            yield key, base64.b64decode(str(encoded)).decode()
        except (ValueError, UnicodeDecodeError):
            continue
    for key, text in _entries(_known(secret_props, "stringData")):
        yield key, str(text)


# -- the pin table ----------------------------------------------------------------------------


@dataclass
class Pins:
    """What components/charts.py pins, with the subcharts inside the vendored archives."""

    charts: dict[str, Any] = field(default_factory=dict)  # helm.sh/chart label -> PinnedChart
    subcharts: dict[str, set[str]] = field(default_factory=dict)  # subchart label -> labels of its parents
    archive_problems: dict[str, str] = field(default_factory=dict)  # chart label -> what is wrong

    def parents(self, label: str) -> set[str]:
        """The pinned charts a label belongs to: itself, or the charts that vendor it."""
        return {label} if label in self.charts else self.subcharts.get(label, set())

    def images(self, label: str | None) -> set[str]:
        """Images pinned for the chart of ``label``; every pinned image when it is not known."""
        charts = self.parents(label) if label else set()
        return {image for chart in (charts or self.charts) for image in self.charts[chart].images}


def _load_pin_table(path: Path) -> tuple[Any, ...]:
    spec = importlib.util.spec_from_file_location("runtime_defense_pin_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module by name
    spec.loader.exec_module(module)
    return module.PINNED_CHARTS


def _subchart_labels(archive: bytes) -> set[str]:
    """name-version of every chart vendored inside a packaged chart (charts/ folders and .tgz)."""
    labels = set()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) < 4 or "charts" not in parts[1:-1] or not member.isfile():
                continue
            content = tar.extractfile(member)
            if content is None:
                continue
            if parts[-1] == "Chart.yaml":
                chart = yaml.safe_load(content.read()) or {}
                labels.add(f"{chart.get('name')}-{chart.get('version')}")
            elif parts[-1].endswith(".tgz") and parts[-2] == "charts":
                nested = content.read()
                with tarfile.open(fileobj=io.BytesIO(nested), mode="r:gz") as inner:
                    top = next(
                        m for m in inner.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
                    )
                    extracted = inner.extractfile(top)
                    chart = yaml.safe_load(extracted.read() if extracted else b"") or {}
                labels.add(f"{chart.get('name')}-{chart.get('version')}")
                labels |= _subchart_labels(nested)
    return labels


def pins() -> Pins:
    """The pin table of the project this pack sits in (read once)."""
    return _pins(PROJECT)


@functools.cache
def _pins(project: Path) -> Pins:
    found = Pins()
    for chart in _load_pin_table(project / PIN_TABLE):
        found.charts[chart.label] = chart
        archive = project / str(chart.archive)
        if not archive.is_file():
            found.archive_problems[chart.label] = f"its vendored archive {chart.archive} is missing"
            continue
        content = archive.read_bytes()
        if hashlib.sha256(content).hexdigest() != chart.sha256:
            found.archive_problems[chart.label] = f"{chart.archive} does not match the sha256 pinned in {PIN_TABLE}"
            continue
        for label in _subchart_labels(content):
            found.subcharts.setdefault(label, set()).add(chart.label)
    return found


def chart_label(props: Mapping[str, Any]) -> str | None:
    """The chart that rendered an object: its `helm.sh/chart` label, or the older `chart`
    label Helm charts set with `heritage: Helm` (kube-prometheus-stack, loki-stack's Loki)."""
    labels = _get(props, "metadata", "labels")
    label = _known(labels, "helm.sh/chart")
    if label is None and _known(labels, "heritage") == "Helm":
        label = _known(labels, "chart")
    return str(label) if label is not None else None


# -- charts pinned ----------------------------------------------------------------------------


def charts_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every rendered object comes from a chart the pin table pins, vendored as pinned."""
    if args.resource_type == HELM_RELEASE:
        report_violation(
            "a Helm Release deploys objects no policy can see: deploy charts with helm_chart() "
            "(Helm v4 Chart, from the vendored archives)",
            None,
        )
        return
    label = chart_label(args.props)
    if label is None:
        return  # not rendered by a chart (the program's own manifests), or a chart's CRD
    table = pins()
    parents = table.parents(label)
    if not parents:
        report_violation(
            f"{_describe(args)} comes from chart {label}, which {PIN_TABLE} does not pin "
            f"(pinned: {', '.join(sorted(table.charts))})",
            None,
        )
    for parent in sorted(parents):
        if parent in table.archive_problems:
            report_violation(f"{_describe(args)} comes from chart {parent}: {table.archive_problems[parent]}", None)


# -- no plaintext credentials -----------------------------------------------------------------


def no_plaintext_credentials(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Credentials only in Secrets, and not the default ones a chart ships."""
    where = _describe(args)
    if args.resource_type == CONFIG_MAP:
        for key, text in _entries(_known(args.props, "data")):
            if not isinstance(text, str):
                continue
            if PRIVATE_KEY.search(text):
                report_violation(f"{where} key {key!r} holds a private key: use a Secret", None)
            for match in SENSITIVE_LINE.finditer(text):
                if not _is_placeholder(match.group(2)):
                    report_violation(f"{where} key {key!r} sets {match.group(1)} in plain text: use a Secret", None)
    elif args.resource_type == SECRET:
        for key, text in _decoded(args.props):
            if key in GRAFANA_ADMIN_PASSWORD_KEYS and text in DEFAULT_GRAFANA_PASSWORDS:
                report_violation(f"{where} key {key!r} is a chart's default Grafana admin password", None)
    for kind, container in _containers(args):
        name = _known(container, "name")
        for variable in _elements(_known(container, "env")):
            value = _known(variable, "value")
            if not isinstance(value, str) or not value:
                continue  # unset, or read from a Secret (valueFrom)
            variable_name = str(_known(variable, "name"))
            if PRIVATE_KEY.search(value):
                report_violation(f"{where}: {kind} {name!r} has a private key in env {variable_name}", None)
            elif SENSITIVE_ENV.search(variable_name) and not _is_placeholder(value):
                report_violation(
                    f"{where}: {kind} {name!r} sets {variable_name} in plain text: use valueFrom.secretKeyRef", None
                )
        for argument in _elements(_known(container, "args")):
            argument_match = SENSITIVE_ARG.match(str(argument))
            if argument_match and not _is_placeholder(argument_match.group(2)):
                report_violation(
                    f"{where}: {kind} {name!r} passes a {argument_match.group(1)} on its command line", None
                )


# -- TLS on Falco's event path ----------------------------------------------------------------


def _image_name(image: str) -> str:
    """The last path segment of an image reference, without tag and digest."""
    return image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]


def _secret_mounted_at(pod: Mapping[str, Any], container: Mapping[str, Any], directory: str) -> bool:
    secret_volumes = {
        _known(v, "name") for v in _elements(_known(pod, "volumes")) if _known(v, "secret") or _known(v, "projected")
    }
    return any(
        _known(m, "mountPath") in (directory, directory.rstrip("/")) and _known(m, "name") in secret_volumes
        for m in _elements(_known(container, "volumeMounts"))
    )


def falco_events_over_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Falco's events leave the node only over mutual TLS."""
    where = _describe(args)
    falco_yaml = _get(args.props, "data", "falco.yaml") if args.resource_type == CONFIG_MAP else None
    if isinstance(falco_yaml, str):
        falco = yaml.safe_load(falco_yaml) or {}
        http = falco.get("http_output") or {}
        if http.get("enabled"):
            if not str(http.get("url", "")).startswith("https://"):
                report_violation(
                    f"{where}: Falco's http_output must post to an https:// URL, not {http.get('url')!r}", None
                )
            if (
                not http.get("mtls")
                or http.get("insecure")
                or not http.get("client_cert")
                or not http.get("client_key")
            ):
                report_violation(
                    f"{where}: Falco's http_output must use mutual TLS (mtls: true, client_cert, client_key, "
                    "insecure: false)",
                    None,
                )
        grpc = falco.get("grpc") or {}
        if grpc.get("enabled") and not str(grpc.get("bind_address", "")).startswith("unix://"):
            missing = [k for k in ("private_key", "cert_chain", "root_certs") if not grpc.get(k)]
            if missing:
                report_violation(
                    f"{where}: Falco's gRPC server listens on TCP without mutual TLS ({', '.join(missing)} unset)", None
                )
    pod = _get(args.props, *POD_SPEC_PATHS.get(args.resource_type, ("-",)))
    for _, container in _containers(args):
        image = _image_name(str(_known(container, "image") or ""))
        if image == "falcosidekick":
            env = {_known(e, "name"): _known(e, "value") for e in _elements(_known(container, "env"))}
            if env.get("TLSSERVER_DEPLOY") != "true" or env.get("TLSSERVER_MUTUALTLS") != "true":
                report_violation(
                    f"{where}: Falcosidekick must receive events over TLS with client certificates required", None
                )
        elif image == "falco-exporter":
            flags = dict(
                str(a).lstrip("-").split("=", 1) for a in _elements(_known(container, "args")) if "=" in str(a)
            )
            if flags.get("client-hostname"):
                # falco-exporter dials TCP with TLS, from these files (cmd/falco-exporter/root.go defaults).
                certificate = flags.get("client-cert", "/etc/falco/certs/client.crt")
                if not _secret_mounted_at(pod, container, posixpath.dirname(certificate)):
                    report_violation(
                        f"{where}: falco-exporter dials {flags['client-hostname']} without its client certificate "
                        f"mounted from a Secret at {posixpath.dirname(certificate)}",
                        None,
                    )


def falco_event_forwarding_over_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Falcosidekick's outputs (Loki, webhooks...) carry Falco's events onwards: prefer TLS."""
    if args.resource_type != SECRET or _get(args.props, "data", "LOKI_HOSTPORT") is None:
        return
    for key, value in sorted(_decoded(args.props)):
        if value.startswith("http://"):
            report_violation(f"Falcosidekick forwards events in plain HTTP ({key}={value})", None)


# -- sized workloads, pinned images -----------------------------------------------------------


def _operated(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    return _known(args.props, "spec") if args.resource_type in OPERATED else None


def workloads_sized(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    sized = [(f"{kind} {_known(c, 'name')!r}", _known(c, "resources")) for kind, c in _containers(args)]
    operated = _operated(args)
    if operated is not None:
        sized.append(("its pods", _known(operated, "resources")))
    for what, resources in sized:
        missing = [f"a {r} request" for r in ("cpu", "memory") if not _get(resources, "requests", r)]
        if not _get(resources, "limits", "memory"):
            missing.append("a memory limit")
        if missing:
            report_violation(f"{_describe(args)}: {what} has no {' and no '.join(missing)}", None)


def images_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every image is one the pin table pins for the chart that runs it."""
    images = [(f"{kind} {_known(c, 'name')!r}", _known(c, "image")) for kind, c in _containers(args)]
    operated = _operated(args)
    if operated is not None:
        images.append(("spec.image", _known(operated, "image")))
        images += [
            (f"containers {_known(c, 'name')!r}", _known(c, "image")) for c in _elements(_known(operated, "containers"))
        ]
    label = chart_label(args.props)
    allowed = pins().images(label)
    for what, image in images:
        if image is not None and image not in allowed:
            chart = f"chart {label}" if label else "any chart"
            report_violation(
                f"{_describe(args)}: {what} runs {image!r}, which {PIN_TABLE} does not pin for {chart}", None
            )


# -- one default Grafana data source ----------------------------------------------------------


def _provisioned_defaults(config_map: Mapping[str, Any]) -> Iterator[str]:
    """Names of data sources a sidecar-provisioned ConfigMap marks as default."""
    if _get(config_map, "metadata", "labels", "grafana_datasource") is None:
        return
    for _, text in _entries(_known(config_map, "data")):
        try:
            document = yaml.safe_load(str(text)) or {}
        except yaml.YAMLError:
            continue
        for source in (document.get("datasources") if isinstance(document, dict) else None) or []:
            if isinstance(source, dict) and str(source.get("isDefault")).lower() == "true":
                yield str(source.get("name"))


def one_default_data_source(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    defaults: list[str] = []
    for resource in args.resources:
        if resource.resource_type == DATA_SOURCE and _known(resource.props, "isDefault") is True:
            defaults.append(str(_known(resource.props, "name")))
        elif resource.resource_type == CONFIG_MAP:
            defaults.extend(_provisioned_defaults(resource.props))
    if len(defaults) > 1:
        report_violation(f"Grafana accepts one default data source, this stack marks {len(defaults)}: {defaults}", None)


POLICIES = [
    ResourceValidationPolicy(
        name="charts-pinned",
        description="Every object a chart renders comes from a chart pinned in components/charts.py, "
        "vendored with the pinned sha256.",
        validate=charts_pinned,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="no-plaintext-credentials",
        description="No private key or credential in ConfigMaps, literal env or arguments (they belong in "
        "Secrets), and no chart-default Grafana admin password.",
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
        name="workloads-sized",
        description="Every container, init containers and operator-run pods included, requests CPU and "
        "memory and has a memory limit.",
        validate=workloads_sized,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="images-pinned",
        description="Every container image is one components/charts.py pins for the chart that runs it.",
        validate=images_pinned,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="one-default-grafana-data-source",
        description="At most one Grafana data source is the default, provisioned ones included.",
        validate=one_default_data_source,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
