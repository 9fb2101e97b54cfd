"""A spoke ships every metric its hub reads: every metric name in the hub's registered alert
rules and overview dashboard (panels and variables) passes the keep rule on the spoke agent's
remote write, as rendered, matched as Prometheus matches a relabelling regex (anchored at both
ends). Otherwise the hub's dashboards show nothing of the spoke, and its alerts for the spoke
never fire (or, for an absence, always do)."""

from __future__ import annotations

import json
import re

from fleet import SPOKES
from harness import ProgramRun
from queries import promql_metrics

RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
DASHBOARD = "grafana:oss/dashboard:Dashboard"
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<query>.+),\s*)?(?P<label>\w+)\)$")


def promql(query: str) -> set[str]:
    return promql_metrics(query.replace("$cluster", "|".join(SPOKES)))


def alert_metrics(hub: ProgramRun) -> dict[str, set[str]]:
    """{rule: metric names} for every Prometheus query of every alert rule the hub registers."""
    prometheus = hub.exports["dataSourceUids"].value["prometheus"]
    found: dict[str, set[str]] = {}
    for group in hub.of_type(RULE_GROUP):
        for rule in group.plain("rules"):
            queries = [json.loads(d["model"])["expr"] for d in rule["datas"] if d["datasourceUid"] == prometheus]
            assert queries, rule["name"]
            found[rule["name"]] = set().union(*(promql(q) for q in queries))
    return found


def dashboard_metrics(hub: ProgramRun) -> dict[str, set[str]]:
    """{panel or variable: metric names} of every Prometheus query of the hub's dashboards."""
    found: dict[str, set[str]] = {}
    dashboards = hub.of_type(DASHBOARD)
    assert dashboards
    for dashboard in dashboards:
        model = json.loads(dashboard.plain("configJson"))
        for variable in model["templating"]["list"]:
            if variable["type"] == "query" and variable["datasource"]["type"] == "prometheus":
                match = LABEL_VALUES.match(variable["query"])
                assert match, variable["query"]
                found[f"variable {variable['name']}"] = promql(match["query"]) if match["query"] else set()
        for panel in model["panels"]:
            if (panel.get("datasource") or {}).get("type") == "prometheus":
                found[panel["title"]] = set().union(*(promql(t["expr"]) for t in panel["targets"]))
    return found


def kept(regex: str, name: str) -> bool:
    """Prometheus anchors a relabelling regex: ^(?:regex)$."""
    return re.fullmatch(f"(?:{regex})", name) is not None


def keep_rule(spoke) -> str:
    """The regex of the keep rule on the agent's one remote write, on metric names."""
    (agent,) = spoke.of_kind("PrometheusAgent")
    (write,) = agent.body["spec"]["remoteWrite"]
    (keep,) = [r for r in write["writeRelabelConfigs"] if r["action"] == "keep"]
    assert keep["sourceLabels"] == ["__name__"]
    return keep["regex"]


def test_every_metric_the_hub_reads_passes_the_spokes_keep_rule(spoke_stack, hub_stack):
    read = {**alert_metrics(hub_stack.run), **dashboard_metrics(hub_stack.run)}
    names = set().union(*read.values())
    assert len(read) >= 15 and "up" in names and len(names) >= 10, read
    regex = keep_rule(spoke_stack)
    dropped = {where: sorted(n for n in metrics if not kept(regex, n)) for where, metrics in read.items()}
    assert {where: names for where, names in dropped.items() if names} == {}


def test_the_keep_rule_drops_what_the_hub_does_not_read(spoke_stack):
    """The keep rule is a rule: the agent's own series and others no hub query reads stay home."""
    regex = keep_rule(spoke_stack)
    for name in ("prometheus_agent_active_series", "kube_pod_container_resource_limits", "upstream", "xup"):
        assert not kept(regex, name), name
