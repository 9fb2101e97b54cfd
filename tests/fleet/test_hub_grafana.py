"""A fleet's hub in Grafana: one dashboard and one set of alerts over every cluster, each
cluster kept apart by its ``cluster`` label (metrics) and its Loki tenant (logs).

The hub's Grafana objects are registered by ``GrafanaWiring`` with a ``FleetView`` under the
mocks (tests/support/hub_wiring.py); every query they carry is parsed (promql-parser, and
Grafana's LogQL grammar) and walked: a sum, max or count that drops ``cluster``, a join
``on`` labels without it, an ``absent`` whose result names no cluster, each would add up or
confuse two clusters' nodes of the same name. tests/rules/test_fleet_rules.py runs the same
alert queries with promtool on the series a hub receives.
"""

from __future__ import annotations

import json
import re

import promql_parser
import pytest
from harness import ProgramRun
from hub_wiring import FALCO_NAMESPACE, FLEET, UPSTREAM_DASHBOARDS, run_hub_wiring
from queries import expand, logql_errors, logql_stream_selectors, promql_children, promql_metrics

from components import alerts, dashboards
from components.fleet_view import CLUSTER, FleetView

# Two clusters picked in the dashboard's variable, as Grafana writes them into a query.
PICKED = "spoke-a|spoke-b"
RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
# Aggregations that merge series; topk, bottomk and limitk keep each series' labels.
MERGING = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "quantile"}


def parse(query: str):
    return promql_parser.parse(expand(query.replace("$cluster", PICKED)))


def _matchers(selector) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op).rsplit(".", 1)[-1], m.value) for m in selector.matchers.matchers}


def cluster_leaks(query: str) -> list[str]:
    """Where ``query`` would merge or confuse clusters: an aggregation not by ``cluster``, a
    join ``on`` labels without it (or ``ignoring`` it), an ``absent``/``absent_over_time`` or
    ``vector`` whose result carries no cluster."""
    leaks: list[str] = []

    def visit(node, cluster_named: bool) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and str(node.op) in MERGING:
            modifier = node.modifier
            if modifier is None:
                leaks.append(f"{node.op} without grouping")
            elif (modifier.type == promql_parser.AggModifierType.By) != (CLUSTER in modifier.labels):
                leaks.append(
                    f"{node.op} {str(modifier.type).rsplit('.', 1)[-1].lower()} ({', '.join(modifier.labels)})"
                )
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier and node.modifier.matching:
            matching = node.modifier.matching
            if (matching.type == promql_parser.LabelModifierType.Include) != (CLUSTER in matching.labels):
                leaks.append(f"{node.op} {matching}")
        elif isinstance(node, promql_parser.Call):
            name = node.func.name
            if name in ("absent", "absent_over_time"):
                (argument,) = node.args
                selector = getattr(argument, "vector_selector", argument)
                if _matchers(selector).get(CLUSTER, ("", ""))[0] != "Equal":
                    leaks.append(f"{name}({selector}) names no cluster")
            elif name == "vector" and not cluster_named:
                leaks.append("vector() outside a label_replace naming the cluster")
            elif name == "label_replace" and node.args[1].val == CLUSTER:
                cluster_named = True
        for child in promql_children(node):
            visit(child, cluster_named)

    visit(parse(query), False)
    return leaks


def selectors(query: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for every series selector of ``query``."""
    found = []

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append((node.name, _matchers(node)))
        for child in promql_children(node):
            visit(child)

    visit(parse(query))
    return found


# -- the fleet --------------------------------------------------------------------------------


def test_the_fleet_lists_the_hub_first_and_queries_every_tenant():
    assert FLEET.clusters == ("hub", "spoke-a", "spoke-b")
    assert FLEET.loki_tenants == "hub|spoke-a|spoke-b"
    assert FleetView("hub", ()).loki_tenants == "hub"


@pytest.mark.parametrize(
    ("hub", "spokes", "message"),
    [
        ("hub", ("a|b",), "fleet cluster name 'a|b'"),
        ("hub", ('a"b',), "fleet cluster name 'a\"b'"),
        ("", ("a",), "fleet cluster name ''"),
        ("hub", ("a", "hub", "a"), "named twice"),
    ],
)
def test_a_cluster_name_that_is_no_label_value_or_tenant_id_is_refused(hub, spokes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FleetView(hub, spokes)


# -- the alerts -------------------------------------------------------------------------------


def rules_of(run: ProgramRun) -> dict[str, dict]:
    return {rule["name"]: rule for group in run.of_type(RULE_GROUP) for rule in group.plain("rules")}


def query_of(rule: dict) -> str:
    return json.loads({d["refId"]: d for d in rule["datas"]}["A"]["model"])["expr"]


@pytest.fixture(scope="module", params=["current", "tutorial"])
def hub(request) -> tuple[str, ProgramRun]:
    """A hub's wiring with every rule deployed (a webhook, so the `current` delivery rule too)."""
    return request.param, run_hub_wiring(request.param, webhook=request.param == "current")


def test_the_hub_deploys_every_standalone_rule_and_spoke_silence(hub):
    profile, run = hub
    standalone = set(rules_of(run_hub_wiring(profile, None, webhook=profile == "current")))
    assert set(rules_of(run)) == standalone | {alerts.SPOKE_SILENT}


def test_every_alert_query_parses_and_keeps_clusters_apart(hub):
    _, run = hub
    rules = rules_of(run)
    assert len(rules) >= 7
    for name, rule in rules.items():
        query = query_of(rule)
        assert promql_metrics(query) or name == "mTLS certificate expires soon", name
        assert cluster_leaks(query) == [], f"{name}: {query}"


def test_every_summary_names_the_cluster(hub):
    _, run = hub
    for name, rule in rules_of(run).items():
        assert "{{ $labels.cluster }}" in rule["annotations"]["summary"], name


def test_each_absence_is_spelled_out_for_every_admitted_cluster(hub):
    """A cluster missing a series entirely still gets its own alert, naming it; a spoke that
    stopped sending gets one alert, and its other absences wait (they are its silence)."""
    _, run = hub
    rules = rules_of(run)
    spelled = {
        name: sorted(
            m[CLUSTER][1]
            for metric, m in selectors(query_of(rule))
            if CLUSTER in m and (metric, set(m)) != ("up", {CLUSTER})
        )
        for name, rule in rules.items()
        if "absent(" in query_of(rule)
    }
    services = len(alerts.SCRAPED_SERVICES[hub[0]])
    assert spelled == {
        "Node coverage cannot be checked": sorted(FLEET.clusters),
        "Falco scrape target absent": sorted(FLEET.clusters * services),
    }
    silence = alerts.spoke_silence_query(FLEET)
    assert query_of(rules[alerts.SPOKE_SILENT]) == silence
    assert [m for _, m in selectors(silence)] == [{CLUSTER: ("Equal", spoke)} for spoke in FLEET.spokes]
    for name in [*spelled, "Falco sees no system calls"]:
        if name in rules:
            assert query_of(rules[name]).endswith(f") unless on ({CLUSTER}) ({silence})"), name


def test_a_spoke_is_silent_after_three_minutes_without_a_sample(hub):
    _, run = hub
    rule = rules_of(run)[alerts.SPOKE_SILENT]
    assert "[2m]" in query_of(rule) and rule["for"] == "1m"
    assert rule["labels"]["severity"] == "critical"
    (condition,) = json.loads({d["refId"]: d for d in rule["datas"]}["C"]["model"])["conditions"]
    assert condition["evaluator"] == {"type": "gt", "params": [0]}
    assert "for 3 minutes" in rule["annotations"]["summary"]


def test_a_hub_without_spokes_has_no_silence_to_watch():
    spec = alerts.sensor_health_group("current", FALCO_NAMESPACE, True, {}, 360, FleetView("hub", ()))
    assert alerts.SPOKE_SILENT not in {rule.title for rule in spec.rules}
    for rule in spec.rules:
        query = str(rule.query)
        assert "absent_over_time" not in query and cluster_leaks(query) == [], rule.title


def test_every_rule_still_reads_only_the_falco_namespace(hub):
    """The same Falco namespace on every cluster (each spoke checks it): another team's Falco
    on a spoke is no more this stack's than on the hub."""
    _, run = hub
    for name, rule in rules_of(run).items():
        for metric, matchers in selectors(query_of(rule)):
            if metric == "kube_node_info" or (metric, set(matchers)) == ("up", {CLUSTER}):
                continue  # nodes belong to no namespace; silence reads any of a spoke's targets
            assert matchers.get("namespace") == ("Equal", FALCO_NAMESPACE), f"{name}: {metric} {matchers}"


def test_the_certificates_watched_are_the_hubs_own(hub):
    _, run = hub
    query = query_of(rules_of(run)["mTLS certificate expires soon"])
    assert query.startswith("label_replace((label_replace(vector(")
    assert query.endswith(f'), "{CLUSTER}", "hub", "", "") - time()')


def test_the_critical_alert_counts_per_cluster_and_rule():
    for profile, rule_label in (("current", "rule_name"), ("tutorial", "rule")):
        (rule,) = alerts.critical_events_group(profile, FALCO_NAMESPACE, FLEET).rules
        assert str(rule.query).startswith(f"sum by ({CLUSTER}, {rule_label}) (")
        assert "on cluster {{ $labels.cluster }}" in rule.summary


@pytest.mark.parametrize(
    "query",
    [
        "sum by (node) (x)",
        "sum (x)",
        "count(count by (cluster, hostname) (x))",
        "max without (cluster) (x)",
        "a / on (node) b",
        "a and ignoring (cluster) b",
        "absent(up)",
        'absent(up{cluster=~"spoke-.*"})',
        'absent_over_time(up{namespace="falco"}[2m])',
        'label_replace(vector(1), "certificate", "CA", "", "")',
    ],
)
def test_a_query_that_merges_or_confuses_clusters_is_caught(query):
    assert cluster_leaks(query)


def test_a_query_that_keeps_clusters_apart_passes():
    for query in (
        "sum by (cluster, node) (x) / sum by (cluster, node) (y)",
        "topk(10, sum by (cluster, rule) (x))",
        "a unless on (cluster, node) b",
        "max without (pod) (x)",
        'absent(up{cluster="spoke-a"})',
    ):
        assert cluster_leaks(query) == [], query


def test_standalone_queries_name_no_cluster():
    for profile in ("current", "tutorial"):
        spec = alerts.sensor_health_group(profile, FALCO_NAMESPACE, True, {}, 360)
        queries = [str(rule.query) for rule in spec.rules]
        queries += [str(rule.query) for rule in alerts.critical_events_group(profile, FALCO_NAMESPACE).rules]
        assert queries and not any(CLUSTER in query for query in queries)
        assert CLUSTER not in dashboards.overview(profile, "prometheus", "loki")


# -- the dashboard ----------------------------------------------------------------------------


def dashboard_of(run: ProgramRun) -> dict:
    (dashboard,) = run.of_type("grafana:oss/dashboard:Dashboard")
    return json.loads(dashboard.plain("configJson"))


def targets(model: dict, datasource: str) -> list[tuple[str, dict]]:
    return [
        (panel["title"], target)
        for panel in model["panels"]
        for target in panel.get("targets", [])
        if panel["datasource"]["uid"] == datasource
    ]


def test_the_cluster_variable_comes_first_and_picks_any_clusters(hub):
    _, run = hub
    variables = dashboard_of(run)["templating"]["list"]
    first = variables[0]
    assert (first["name"], first["type"], first["query"]) == ("cluster", "query", "label_values(up, cluster)")
    assert first["multi"] is True and first["includeAll"] is True and first["allValue"] == ".*"
    assert first["datasource"] == {"type": "prometheus", "uid": "${prometheus}"}
    assert [v["name"] for v in variables] == ["cluster", "prometheus", "loki", "namespace"]


def test_every_promql_selector_picks_the_clusters_and_every_grouping_keeps_them_apart(hub):
    profile, run = hub
    model = dashboard_of(run)
    queries = [(title, target["expr"]) for title, target in targets(model, "${prometheus}")]
    namespace = next(v for v in model["templating"]["list"] if v["name"] == "namespace")
    queries.append(("namespace variable", re.fullmatch(r"label_values\((.+), k8s_ns_name\)", namespace["query"])[1]))
    assert len(queries) >= (10 if profile == "current" else 5)
    for title, query in queries:
        found = selectors(query)
        assert found, title
        for metric, matchers in found:
            assert matchers.get(CLUSTER) == ("Re", PICKED), f"{title}: {metric} {matchers}"
        assert cluster_leaks(query) == [], f"{title}: {query}"


def test_every_series_legend_names_its_cluster(hub):
    _, run = hub
    legends = [
        target["legendFormat"] for _, target in targets(dashboard_of(run), "${prometheus}") if "legendFormat" in target
    ]
    assert legends and all("{{cluster}}" in legend for legend in legends)


@pytest.mark.usefixtures("needs_node_logql")
def test_every_logql_stream_selector_picks_the_clusters_tenants(hub):
    profile, run = hub
    queries = [target["expr"].replace("$cluster", PICKED) for _, target in targets(dashboard_of(run), "${loki}")]
    assert len(queries) == (3 if profile == "current" else 2)
    assert logql_errors(queries) == {q: [] for q in queries}
    for query, found in logql_stream_selectors(queries).items():
        assert found, query
        for matchers in found:
            assert ("__tenant_id__", "=~", f'"{PICKED}"') in matchers, query


# -- data sources and links -------------------------------------------------------------------


def test_the_loki_data_source_queries_every_clusters_tenant(hub):
    _, run = hub
    sources = {r.plain("type"): r for r in run.of_type("grafana:oss/dataSource:DataSource")}
    assert sources["loki"].plain("httpHeaders") == {"X-Scope-OrgID": "hub|spoke-a|spoke-b"}
    assert sources["prometheus"].plain("httpHeaders") is None


def test_on_a_hub_only_the_overview_is_linked():
    """The charts' dashboards select no cluster: on a hub they would add up every cluster's
    series, so their links are left out (and the charts' dashboards switched off)."""
    hub = run_hub_wiring("current").exports["dashboardUrls"].value
    assert hub == {"Runtime defense overview": "http://grafana.hub.example:3000/d/runtime-defense-overview"}
    standalone = run_hub_wiring("current", None).exports["dashboardUrls"].value
    assert set(standalone) == {"Runtime defense overview", *UPSTREAM_DASHBOARDS}
