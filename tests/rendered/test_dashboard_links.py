"""Every dashboard link the stack exports (``dashboardUrls``) opens a dashboard Grafana has,
and every data source that dashboard names is one the stack creates, as Grafana would
resolve it. Grafana has two kinds of dashboards here: those the charts ship as ConfigMaps,
which Grafana's dashboard sidecar loads when their label and namespace are the ones it
watches (read from the sidecar's environment in the rendered Grafana Deployment), and those
the program creates through Grafana's API (``grafana:oss/dashboard:Dashboard`` config_json).
A link to a uid neither has is Grafana's "Dashboard not found"."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness import Secret, run_program

GRAFANA = ("Deployment", "kube-prometheus-stack-grafana")
# Data source references Grafana resolves itself (mixed, dashboard, expressions, annotations).
BUILT_IN = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --", "__expr__"}
VARIABLE = re.compile(r"^\$(?:\{(\w+)(?::\w+)?\}|(\w+))$")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    where: str  # what provides it
    model: dict[str, Any]


def sidecar_settings(stack) -> dict[str, str]:
    """The environment of Grafana's dashboard sidecar (kiwigrid k8s-sidecar), as rendered."""
    grafana = stack.get(*GRAFANA).body["spec"]["template"]["spec"]
    for container in grafana.get("containers", []) + grafana.get("initContainers", []):
        env = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        if env.get("FOLDER") and env.get("LABEL") and "dashboard" in container["name"]:
            return env
    return {}


def sidecar_dashboards(stack) -> list[Dashboard]:
    """The dashboards the sidecar loads: ConfigMaps (and Secrets, with RESOURCE both or
    secret) carrying its LABEL (with LABEL_VALUE, when set) in a namespace it watches
    (NAMESPACE: ALL, a comma-separated list, or, unset, Grafana's own)."""
    settings = sidecar_settings(stack)
    if not settings:
        return []
    grafana_namespace = stack.get(*GRAFANA).namespace
    watched = settings.get("NAMESPACE") or grafana_namespace
    kinds = {"configmap": ("ConfigMap",), "secret": ("Secret",), "both": ("ConfigMap", "Secret")}[
        settings.get("RESOURCE", "configmap")
    ]
    found = []
    for obj in stack.of_kind(*kinds):
        label = obj.labels.get(settings["LABEL"])
        if label is None or settings.get("LABEL_VALUE") not in (None, "", label):
            continue
        if watched != "ALL" and obj.namespace not in {n.strip() for n in watched.split(",")}:
            continue
        data = dict(obj.body.get("data") or {})
        if obj.kind == "Secret":
            data = {key: base64.b64decode(value).decode() for key, value in data.items()}
        for key, text in data.items():
            model = json.loads(text)
            found.append(Dashboard(model["uid"], model.get("title", ""), f"{obj}, {key}", model))
    return found


def api_dashboards(run) -> list[Dashboard]:
    found = []
    for registration in run.of_type("grafana:oss/dashboard:Dashboard"):
        model = json.loads(registration.plain("configJson"))
        found.append(
            Dashboard(
                model["uid"], model.get("title", ""), f"grafana:oss/dashboard:Dashboard {registration.name}", model
            )
        )
    return found


def linked_uids(run) -> dict[str, str]:
    """title -> the uid of each exported dashboard URL (<grafana>/d/<uid>)."""
    base = run.exports["grafanaUrl"].value
    uids = {}
    for title, url in run.exports["dashboardUrls"].value.items():
        assert url.startswith(f"{base}/d/"), f"{title}: {url} is not a dashboard of {base}"
        path = urlsplit(url).path
        uids[title] = path.rsplit("/d/", 1)[1].split("/")[0]
    return uids


def data_sources(run) -> dict[str, str]:
    """uid -> type of the data sources the program creates."""
    return {r.plain("uid"): r.plain("type") for r in run.of_type("grafana:oss/dataSource:DataSource")}


def references(node: Any) -> list[dict[str, Any]]:
    """Every ``datasource`` object a dashboard model holds (panels, targets, variables, annotations)."""
    found = []
    if isinstance(node, dict):
        source = node.get("datasource")
        if isinstance(source, dict) and isinstance(source.get("uid"), str):
            found.append(source)
        for value in node.values():
            found += references(value)
    elif isinstance(node, list):
        for value in node:
            found += references(value)
    return found


def unresolved(dashboard: Dashboard, sources: dict[str, str]) -> list[str]:
    """What of ``dashboard``'s data source references Grafana cannot resolve: a literal uid
    must be a data source of the referenced type; a data source variable ($name) resolves to
    a data source of its plugin type (its saved value is only a preference: Grafana falls back
    to another of that type), so one of that type must exist."""
    variables = {
        v["name"]: v for v in (dashboard.model.get("templating") or {}).get("list", []) if v.get("type") == "datasource"
    }
    problems = []
    for reference in references(dashboard.model):
        uid, type_ = reference["uid"], reference.get("type")
        if uid in BUILT_IN:
            continue
        variable = VARIABLE.match(uid)
        if variable:
            name = variable.group(1) or variable.group(2)
            if name not in variables:
                problems.append(f"{uid}: no data source variable {name}")
                continue
            type_ = variables[name].get("query")
            if type_ not in sources.values():
                problems.append(f"{uid}: no {type_} data source to choose from")
        elif uid not in sources:
            problems.append(f"{uid}: no such data source")
        elif type_ is not None and sources[uid] != type_:
            problems.append(f"{uid}: a {sources[uid]} data source, used as {type_}")
    return sorted(set(problems))


def test_every_exported_dashboard_link_opens_a_dashboard_grafana_has(stack):
    links = linked_uids(stack.run)
    assert "Runtime defense overview" in links and len(links) >= 2, links  # the overview and a chart's
    dashboards = {d.uid: d for d in sidecar_dashboards(stack) + api_dashboards(stack.run)}
    assert dashboards
    missing = {title: uid for title, uid in links.items() if uid not in dashboards}
    assert missing == {}, f"dashboards Grafana has: { {d.uid: d.title for d in dashboards.values()} }"


def test_the_sidecar_loads_the_charts_runtime_defense_dashboards(stack):
    """The sidecar settings are read, not assumed: the Falco dashboards the charts ship are in
    namespace falco, which it watches."""
    settings = sidecar_settings(stack)
    assert settings.get("LABEL") and settings.get("NAMESPACE")
    loaded = {d.where.split(" ", 2)[1] for d in sidecar_dashboards(stack)}
    assert any(where.startswith("falco/") for where in loaded), sorted(loaded)


def test_every_data_source_a_linked_dashboard_names_exists(stack):
    links = set(linked_uids(stack.run).values())
    sources = data_sources(stack.run)
    linked = [d for d in sidecar_dashboards(stack) + api_dashboards(stack.run) if d.uid in links]
    assert len(linked) == len(links)
    checked = {d.where: references(d.model) for d in linked}
    assert all(checked.values()), f"dashboards naming no data source: {[w for w, r in checked.items() if not r]}"
    problems = {d.where: p for d in linked if (p := unresolved(d, sources))}
    assert problems == {}, f"data sources: {sources}"


def test_with_your_own_grafana_the_one_link_is_the_overview_the_program_creates():
    run = run_program(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus-operated.metrics.svc:9090"},
            "grafanaToken": Secret("glsa_token"),
        }
    )
    links = linked_uids(run)
    dashboards = {d.uid: d for d in api_dashboards(run)}
    assert list(links) == ["Runtime defense overview"] and set(links.values()) <= set(dashboards)
    sources = data_sources(run)
    assert sources and all(unresolved(dashboards[uid], sources) == [] for uid in links.values())


def test_a_missing_data_source_is_reported():
    """The resolution above on a dashboard written here: a uid no data source has, a data
    source of another type, a variable of a type with no data source."""
    sources = {"prometheus": "prometheus", "loki": "loki"}
    broken = Dashboard(
        "x",
        "broken",
        "test",
        {
            "templating": {"list": [{"name": "ds", "type": "datasource", "query": "elasticsearch"}]},
            "panels": [
                {"datasource": {"type": "loki", "uid": "no-such-source"}},
                {"datasource": {"type": "elasticsearch", "uid": "${ds}"}},
                {"datasource": {"type": "loki", "uid": "prometheus"}},
                {"datasource": {"type": "prometheus", "uid": "$nothing"}},
                {"datasource": {"type": "loki", "uid": "loki"}, "targets": [{"datasource": {"uid": "-- Grafana --"}}]},
            ],
        },
    )
    assert unresolved(broken, sources) == [
        "$nothing: no data source variable nothing",
        "${ds}: no elasticsearch data source to choose from",
        "no-such-source: no such data source",
        "prometheus: a prometheus data source, used as loki",
    ]
