"""Grafana wired through pulumiverse-grafana: provider and auth, data sources, the overview
dashboard's queries, and the Falco alert, for both profiles and both Grafana modes."""

import base64
import json

import pytest
from harness import Secret, run_program
from queries import logql_available, logql_errors, promql_metrics

from components import alerts, falco_metrics

# The metrics each profile really exports, from the pinned releases' sources (see
# components/falco_metrics.py for the files): Falcosidekick 2.32.0 and Falco 0.44.1 native
# metrics in `current`; falco-exporter 0.8.7 in `tutorial`.
EXPORTED = {
    "current": {
        "falcosecurity_falcosidekick_falco_events_total",
        "falcosecurity_falco_rules_matches_total",
        "falcosecurity_scap_n_evts_total",
        "falcosecurity_scap_n_drops_total",
        "falcosecurity_falco_cpu_usage_ratio",
        "falcosecurity_falco_memory_rss_bytes",
    },
    "tutorial": {"falco_events"},
}
GRAFANA_URL = "http://192.168.49.2:30300"
EXISTING = {"deploy": False, "prometheusUrl": "http://prometheus-operated.metrics:9090"}
SECRET_READ = ("kubernetes:core/v1:Secret", "metrics/grafana")

MODES = {
    "baseline": ({}, {}),
    "existing-token": ({"monitoring": EXISTING, "grafanaToken": Secret("glsa_0123456789")}, {}),
    "existing-admin-secret": (
        {
            "monitoring": EXISTING,
            "grafana": {
                "url": "https://grafana.example.com",
                "adminSecret": {"namespace": "metrics", "name": "grafana"},
            },
        },
        {SECRET_READ: {"data": {"admin-password": base64.b64encode(b"walkthrough-pw").decode()}}},
    ),
}


def run_mode(profile: str, mode: str, **extra):
    config, reads = MODES[mode]
    return run_program({"profile": profile, **config, **extra}, reads=reads)


@pytest.fixture(
    scope="module", params=[(p, m) for p in ("current", "tutorial") for m in MODES], ids=lambda pm: "-".join(pm)
)
def wired(request):
    profile, mode = request.param
    return profile, mode, run_mode(profile, mode)


def grafana_resources(run, kind):
    return [r for r in run.resources if r.type == f"grafana:{kind}"]


def only(run, kind):
    found = grafana_resources(run, kind)
    assert len(found) == 1, kind
    return found[0]


def dashboard_model(run) -> dict:
    return json.loads(only(run, "oss/dashboard:Dashboard").plain("configJson"))


def panel_queries(model: dict) -> list[tuple[str, str, str]]:
    """(panel title, data source variable, query) for every target."""
    return [
        (panel["title"], panel["datasource"]["uid"], target["expr"])
        for panel in model["panels"]
        for target in panel.get("targets", [])
    ]


# -- provider and auth -----------------------------------------------------------------------


def test_provider_url_and_auth_are_from_config_and_secret(wired):
    _, mode, run = wired
    provider = next(r for r in run.resources if r.type == "pulumi:providers:grafana")
    assert provider.secret("auth")
    auth = provider.plain("auth")
    if mode == "baseline":
        assert provider.plain("url") == GRAFANA_URL
        assert auth == f"admin:{run.exports['grafanaAdminPassword'].value}"
    elif mode == "existing-token":
        assert auth == "glsa_0123456789"
    else:
        assert provider.plain("url") == "https://grafana.example.com"
        assert auth == "admin:walkthrough-pw"  # read from the Secret, as `kubectl get secret grafana` would
    assert run.exports["grafanaUrl"].value == provider.plain("url")


def test_the_admin_password_secret_is_read_only_in_that_mode(wired):
    _, mode, run = wired
    reads = [r for r in run.resources if r.type == "kubernetes:core/v1:Secret"]
    assert len(reads) == (1 if mode == "existing-admin-secret" else 0)


def test_every_grafana_resource_goes_through_the_grafana_provider(wired):
    _, _, run = wired
    provider = next(r for r in run.resources if r.type == "pulumi:providers:grafana")
    ref = f"{provider.urn}::{provider.name}-id"
    resources = [r for r in run.resources if r.type.startswith("grafana:")]
    assert len(resources) >= 4
    for resource in resources:
        assert resource.provider == ref, resource.name


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_with_the_baseline_grafana_resources_wait_for_grafana(profile):
    run = run_mode(profile, "baseline")
    chart = run.charts()["kube-prometheus-stack"].urn
    for resource in (r for r in run.resources if r.type.startswith("grafana:")):
        assert chart in resource.dependencies, resource.name


# -- data sources -----------------------------------------------------------------------------


def test_loki_data_source_points_at_the_logging_stack(wired):
    _, _, run = wired
    loki = next(r for r in grafana_resources(run, "oss/dataSource:DataSource") if r.plain("type") == "loki")
    assert loki.plain("url") == run.exports["lokiQueryUrl"].value
    assert run.exports["dataSourceUids"].value["loki"] == loki.plain("uid")


def test_the_prometheus_data_source_points_at_the_stacks_prometheus(wired):
    _, mode, run = wired
    prometheus = [r for r in grafana_resources(run, "oss/dataSource:DataSource") if r.plain("type") == "prometheus"]
    url = (
        "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
        if mode == "baseline"
        else EXISTING["prometheusUrl"]
    )
    assert [p.plain("url") for p in prometheus] == [url]
    assert run.exports["dataSourceUids"].value["prometheus"] == prometheus[0].plain("uid")


def test_in_the_baseline_grafana_the_uids_are_those_the_chart_dashboards_name(wired):
    """Falco's dashboard queries uid "prometheus", Falcosidekick's Loki dashboard uid "loki"
    (tests/rendered checks every dashboard the charts render); in a Grafana of yours, the
    stack's data sources keep uids of their own."""
    _, mode, run = wired
    uids = {r.plain("type"): r.plain("uid") for r in grafana_resources(run, "oss/dataSource:DataSource")}
    if mode == "baseline":
        assert uids == {"prometheus": "prometheus", "loki": "loki"}
    else:
        assert uids == {"prometheus": "runtime-defense-prometheus", "loki": "runtime-defense-loki"}


def test_exactly_one_default_data_source(wired):
    profile, mode, run = wired
    defaults = [r.plain("uid") for r in grafana_resources(run, "oss/dataSource:DataSource") if r.plain("isDefault")]
    if mode == "baseline":
        assert defaults == ["prometheus"]
        # No sidecar provisions another: the baseline's is off, loki-stack's (marked default) too.
        assert run.chart_values("kube-prometheus-stack")["grafana"]["sidecar"]["datasources"]["enabled"] is False
        if profile == "tutorial":
            assert run.chart_values("loki")["grafana"]["sidecar"]["datasources"]["enabled"] is False
    else:
        assert defaults == [], "an existing Grafana keeps its own default"


# -- the overview dashboard -------------------------------------------------------------------


def test_overview_dashboard_has_the_panels_asked_for(wired):
    profile, _, run = wired
    model = dashboard_model(run)
    titles = [p["title"] for p in model["panels"] if p["type"] != "row"]
    expected = {
        "Falco events by priority",
        "Top rules",
        "Events by namespace and pod",
        "etcd compaction (the walk-through's query)",
    }
    assert expected <= set(titles)
    if profile == "current":
        assert {"System calls seen", "System calls dropped", "Falco CPU", "Falco memory"} <= set(titles)
        assert "Latest Critical and above Falco events" in titles
    else:
        assert {"Falco hosts reporting events", "Events per host"} <= set(titles)
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["prometheus"]["type"] == "datasource" and variables["loki"]["type"] == "datasource"
    assert variables["prometheus"]["current"]["value"] == run.exports["dataSourceUids"].value["prometheus"]
    assert variables["namespace"]["includeAll"] is True
    assert len({p["id"] for p in model["panels"]}) == len(model["panels"])


def test_every_promql_query_parses_and_names_an_exported_metric(wired):
    profile, _, run = wired
    queries = [(t, q) for t, ds, q in panel_queries(dashboard_model(run)) if ds == "${prometheus}"]
    variable = next(v for v in dashboard_model(run)["templating"]["list"] if v["name"] == "namespace")
    queries.append(("namespace variable", variable["query"].removeprefix("label_values(").split(",")[0]))
    assert len(queries) >= 5
    for title, query in queries:
        metrics = promql_metrics(query)
        assert metrics and metrics <= EXPORTED[profile], f"{title}: {query} selects {metrics}"


def test_a_malformed_promql_query_is_caught():
    with pytest.raises(ValueError):
        promql_metrics("sum(rate(falco_events[$__rate_interval])")


needs_logql = pytest.mark.skipif(
    not logql_available(),
    reason="Node.js and tests/support/logql/node_modules (npm ci --prefix tests/support/logql) are needed",
)


@needs_logql
def test_every_logql_query_is_well_formed(wired):
    profile, _, run = wired
    queries = [q for _, ds, q in panel_queries(dashboard_model(run)) if ds == "${loki}"]
    assert run.exports["walkthroughLogQuery"].value in queries
    assert len(queries) == (2 if profile == "current" else 1)
    assert logql_errors(queries) == {q: [] for q in queries}


@needs_logql
def test_a_malformed_logql_query_is_caught():
    errors = logql_errors(['{container="etcd" |= "compaction"', '{container=etcd} |= "compaction"'])
    assert all(errors.values())


def test_the_critical_events_panel_reads_falcosidekick_streams():
    model = dashboard_model(run_program({"profile": "current"}))
    panel = next(p for p in model["panels"] if p["title"] == "Latest Critical and above Falco events")
    # Falcosidekick labels its Loki streams with the priority's name (types/priority.go).
    assert 'priority=~"Critical|Alert|Emergency"' in panel["targets"][0]["expr"]


# -- the alert --------------------------------------------------------------------------------


def test_alert_fires_on_any_critical_or_worse_event_in_five_minutes(wired):
    profile, _, run = wired
    group = only(run, "alerting/ruleGroup:RuleGroup")
    assert group.plain("intervalSeconds") == 60
    assert group.plain("folderUid") == only(run, "oss/folder:Folder").plain("uid")
    (rule,) = group.plain("rules")
    assert rule["condition"] == "C" and rule["for"] == "0s" and rule["noDataState"] == "OK"
    data = {d["refId"]: d for d in rule["datas"]}
    query = json.loads(data["A"]["model"])
    assert data["A"]["datasourceUid"] == run.exports["dataSourceUids"].value["prometheus"]
    assert data["A"]["relativeTimeRange"] == {"from": 300, "to": 0}
    assert query["expr"] == alerts.query(profile)
    assert promql_metrics(query["expr"]) <= EXPORTED[profile]
    assert falco_metrics.CRITICAL_AND_ABOVE_NUMBERS in query["expr"]  # 0 Emergency, 1 Alert, 2 Critical
    assert "offset 5m" in query["expr"]
    reduce, threshold = json.loads(data["B"]["model"]), json.loads(data["C"]["model"])
    assert (reduce["type"], reduce["expression"], reduce["reducer"]) == ("reduce", "A", "last")
    assert threshold["type"] == "threshold" and threshold["expression"] == "B"
    assert threshold["conditions"] == [{"evaluator": {"params": [0], "type": "gt"}}]


def test_without_a_contact_point_the_rule_follows_the_default_policy():
    run = run_program({})
    assert grafana_resources(run, "alerting/contactPoint:ContactPoint") == []
    (rule,) = only(run, "alerting/ruleGroup:RuleGroup").plain("rules")
    assert "notificationSettings" not in rule or rule["notificationSettings"] is None


def test_a_webhook_contact_point_is_secret_and_routes_the_rule():
    run = run_program({"alertWebhookUrl": Secret("https://hooks.example.com/T000/B000/XXXX")})
    contact = only(run, "alerting/contactPoint:ContactPoint")
    assert contact.secret("webhooks")
    assert contact.plain("webhooks")[0]["url"] == "https://hooks.example.com/T000/B000/XXXX"
    (rule,) = only(run, "alerting/ruleGroup:RuleGroup").plain("rules")
    assert rule["notificationSettings"]["contactPoint"] == contact.plain("name")


def test_an_email_contact_point():
    run = run_program({"alerting": {"email": ["secops@example.com", "oncall@example.com"]}})
    contact = only(run, "alerting/contactPoint:ContactPoint")
    assert contact.plain("emails")[0]["addresses"] == ["secops@example.com", "oncall@example.com"]


# -- outputs ----------------------------------------------------------------------------------


def test_grafana_outputs(wired):
    profile, mode, run = wired
    exports = run.exports
    base = exports["grafanaUrl"].value
    urls = exports["dashboardUrls"].value
    assert urls["Runtime defense overview"] == f"{base}/d/runtime-defense-overview"
    if mode == "baseline":
        upstream = {"current": {"Falco", "Falco logs"}, "tutorial": {"Falco Events (11914)"}}[profile]
        assert set(urls) == {"Runtime defense overview", *upstream}
        assert exports["grafanaAdminPassword"].secret
    else:
        assert set(urls) == {"Runtime defense overview"}  # no sidecar loads the charts' dashboards
        assert "grafanaAdminPassword" not in exports
    assert exports["walkthroughLogQuery"].value == '{container="etcd"} |= "compaction"'


def test_the_alert_rules_wait_for_the_data_source_they_query(wired):
    """Grafana refuses a rule whose data source does not exist yet."""
    _, _, run = wired
    rule_group = only(run, "alerting/ruleGroup:RuleGroup")
    queried = {data["datasourceUid"] for rule in rule_group.plain("rules") for data in rule["datas"]} - {"__expr__"}
    sources = {r.plain("uid"): r.urn for r in grafana_resources(run, "oss/dataSource:DataSource")}
    assert queried and queried <= set(sources)
    for uid in queried:
        assert sources[uid] in rule_group.dependencies, uid
