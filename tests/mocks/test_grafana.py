"""Grafana wired through pulumiverse-grafana: provider and auth, data sources, the overview
dashboard's queries, and the Falco alerts, for both profiles and both Grafana modes."""

import base64
import json

import promql_parser
import pytest
from harness import Secret, run_program
from queries import expand, logql_errors, promql_metrics, promql_selectors

# The metrics each profile really exports, from the pinned releases' sources (see
# components/falco_metrics.py for the files): Falcosidekick 2.32.0 and Falco 0.44.1 native
# metrics in `current`; falco-exporter 0.8.7 in `tutorial`.
EXPORTED = {
    "current": {
        "falcosecurity_falcosidekick_falco_events_total",
        "falcosecurity_falco_rules_matches_total",
        "falcosecurity_scap_n_evts_total",
        "falcosecurity_scap_n_drops_total",
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "falcosecurity_falcosidekick_outputs_total",
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
        assert {
            "System calls seen",
            "System calls dropped",
            "Share of system calls dropped",
            "Falco events lost on the way out",
            "Falco CPU",
            "Falco memory",
        } <= set(titles)
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


needs_logql = pytest.mark.usefixtures("needs_node_logql")


@needs_logql
def test_every_logql_query_is_well_formed(wired):
    profile, _, run = wired
    queries = [q for _, ds, q in panel_queries(dashboard_model(run)) if ds == "${loki}"]
    assert run.exports["walkthroughLogQuery"].value in queries
    assert len(queries) == (3 if profile == "current" else 2)
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


# -- the alerts -------------------------------------------------------------------------------

# Metrics the sensor-health rules read besides the profile's own: every scrape target's `up`,
# and kube-state-metrics' nodes and pods (kube-prometheus-stack 88.5.3).
HEALTH_METRICS = {"up", "kube_node_info", "kube_pod_info", "kube_pod_status_ready"}


def rule_groups(run) -> dict[str, object]:
    return {g.plain("name"): g for g in grafana_resources(run, "alerting/ruleGroup:RuleGroup")}


def rules_of(run) -> dict[str, dict]:
    return {rule["name"]: rule for group in rule_groups(run).values() for rule in group.plain("rules")}


def query_of(rule: dict) -> str:
    return json.loads({d["refId"]: d for d in rule["datas"]}["A"]["model"])["expr"]


def condition_of(rule: dict) -> tuple[str, float]:
    (condition,) = json.loads({d["refId"]: d for d in rule["datas"]}["C"]["model"])["conditions"]
    return condition["evaluator"]["type"], condition["evaluator"]["params"][0]


def test_two_rule_groups_in_the_folder(wired):
    profile, _, run = wired
    groups = rule_groups(run)
    assert {name: g.plain("intervalSeconds") for name, g in groups.items()} == {
        "Falco critical events": 10,
        "Falco sensor health": 30,
    }
    folder = only(run, "oss/folder:Folder").plain("uid")
    assert all(g.plain("folderUid") == folder for g in groups.values())
    names = set(rules_of(run))
    assert {
        "Falco event of priority Critical or above",
        "Falco is not running on a node",
        "Node coverage cannot be checked",
        "Falco scrape target down",
        "Falco scrape target absent",
        "mTLS certificate expires soon",
    } <= names
    falco_metrics = {
        "Falco sees no system calls",
        "Falco drops system calls",
        "Falco drops events at its outputs",
        "Falcosidekick cannot deliver to Loki",
    }
    assert falco_metrics & names == (falco_metrics if profile == "current" else set())
    assert ("falco-exporter is not running on a node" in names) == (profile == "tutorial")
    assert "Falcosidekick cannot deliver to the webhook" not in names  # no webhook configured


def test_every_rule_is_a_prometheus_query_reduced_and_compared(wired):
    """What tests/rules feeds to promtool: A (PromQL), B = last(A), C = B against a threshold;
    no data means healthy, an unreachable Prometheus raises Grafana's error alert."""
    _, _, run = wired
    prometheus_uid = run.exports["dataSourceUids"].value["prometheus"]
    for name, rule in rules_of(run).items():
        assert rule["condition"] == "C" and rule["noDataState"] == "OK" and rule["execErrState"] == "Error", name
        data = {d["refId"]: d for d in rule["datas"]}
        assert data["A"]["datasourceUid"] == prometheus_uid, name
        assert json.loads(data["A"]["model"])["instant"] is True, name
        reduce = json.loads(data["B"]["model"])
        assert (reduce["type"], reduce["expression"], reduce["reducer"]) == ("reduce", "A", "last"), name
        assert json.loads(data["C"]["model"])["expression"] == "B", name
        assert rule["labels"]["source"] == "falco" and rule["labels"]["severity"] in ("critical", "warning"), name


def test_every_alert_query_parses_and_names_only_metrics_that_exist(wired):
    profile, _, run = wired
    for name, rule in rules_of(run).items():
        metrics = promql_metrics(query_of(rule))
        assert metrics <= EXPORTED[profile] | HEALTH_METRICS, name
        if name != "mTLS certificate expires soon":
            assert metrics, name


def test_the_critical_rule_counts_at_the_sensor(wired):
    """Which priorities fire, across restarts and resets, is evaluated on sample series by
    promtool (tests/rules); here: the counter it reads is the sensor's own."""
    profile, _, run = wired
    rule = rules_of(run)["Falco event of priority Critical or above"]
    query = query_of(rule)
    counter = {"current": "falcosecurity_falco_rules_matches_total", "tutorial": "falco_events"}[profile]
    assert promql_metrics(query) == {counter}
    assert "offset 5m" not in query  # the old now-minus-five-minutes-ago count, blinded by restarts
    assert rule["for"] == "0s" and condition_of(rule) == ("gt", 0)


def vector_selectors(query: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """(metric, {label: (operator, value)}) for every series selector of a PromQL query."""
    return [
        (node.name, {m.name: (str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers})
        for node in promql_selectors(promql_parser.parse(expand(query)))
    ]


# Nodes belong to no namespace; every other series a rule reads must be the stack's own.
CLUSTER_WIDE = {"kube_node_info"}
# The rules that read no namespaced series: kube-state-metrics' node list, and certificate ends.
READ_NOTHING_NAMESPACED = {"Node coverage cannot be checked", "mTLS certificate expires soon"}


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_every_rule_reads_only_the_falco_namespace_it_is_given(profile):
    """Another Falco in the cluster, another DaemonSet named falco, another `up` of a Service
    named falco-metrics elsewhere: none may fire or hide an alert of this stack's. Each series
    selector of each rule names the Falco namespace exactly (tests/rules runs the decoys)."""
    config = {"profile": profile, "namespaces": {"falco": "runtime-security"}}
    run = run_program({**config, "alertWebhookUrl": Secret("https://hooks.example.com/T000/B000/XXXX")})
    rules = rules_of(run)
    unscoped = set()
    for name, rule in rules.items():
        selectors = [(metric, m) for metric, m in vector_selectors(query_of(rule)) if metric not in CLUSTER_WIDE]
        if not selectors:
            unscoped.add(name)
        for metric, matchers in selectors:
            assert matchers.get("namespace") == ("Equal", "runtime-security"), f"{name}: {metric} {matchers}"
    assert unscoped == READ_NOTHING_NAMESPACED
    down = query_of(rules["Falco scrape target down"])
    services = {"current": "falco-metrics|falcosidekick", "tutorial": "falco-exporter"}[profile]
    assert f'service=~"{services}"' in down


def test_a_selector_without_the_namespace_is_caught():
    (only_selector,) = vector_selectors('sum by (node) (increase(falcosecurity_scap_n_evts_total{job="x"}[2m]))')
    assert only_selector == ("falcosecurity_scap_n_evts_total", {"job": ("Equal", "x")})
    assert vector_selectors('up{namespace=~"falco"}')[0][1]["namespace"] == ("Re", "falco")


def test_the_expiry_rule_knows_each_certificates_end_of_validity():
    """The harness's pulumi-tls stand-in issues at 2026-01-01T00:00:00Z; the CA lives 5 years,
    the others one, and the rule fires 360 hours (half of the 720-hour renewal window) ahead."""
    rule = rules_of(run_program({}))["mTLS certificate expires soon"]
    query = query_of(rule)
    ca_end = 1767225600 + 43800 * 3600
    assert f'label_replace(vector({ca_end}), "certificate", "CA", "", "")' in query
    for name in ("server", "client"):
        assert f'label_replace(vector(1798761600), "certificate", "{name}", "", "")' in query
    assert query.endswith(" - time()")
    assert condition_of(rule) == ("lt", 360 * 3600)


def test_the_expiry_warning_is_configurable_within_the_renewal_window():
    rule = rules_of(run_program({"alerting": {"certificateWarningHours": 168}}))["mTLS certificate expires soon"]
    assert condition_of(rule) == ("lt", 168 * 3600)
    run = run_program(
        {"pki": {"validityHours": 2160, "earlyRenewalHours": 360}, "alerting": {"certificateWarningHours": 400}},
        expect_error=True,
    )
    assert "runtime-defense:alerting.certificateWarningHours = 400: must be at most pki.earlyRenewalHours (360)" in (
        str(run.error)
    )
    assert not rule_groups(run)


def test_without_a_contact_point_the_rules_follow_the_default_policy():
    run = run_program({})
    assert grafana_resources(run, "alerting/contactPoint:ContactPoint") == []
    for name, rule in rules_of(run).items():
        assert not rule.get("notificationSettings"), name


def test_a_webhook_contact_point_is_secret_and_routes_every_rule():
    run = run_program({"alertWebhookUrl": Secret("https://hooks.example.com/T000/B000/XXXX")})
    contact = only(run, "alerting/contactPoint:ContactPoint")
    assert contact.secret("webhooks")
    assert contact.plain("webhooks")[0]["url"] == "https://hooks.example.com/T000/B000/XXXX"
    rules = rules_of(run)
    for name, rule in rules.items():
        assert rule["notificationSettings"]["contactPoint"] == contact.plain("name"), name
    # Critical events go out at once, not after the default policy's 30 s group wait.
    assert rules["Falco event of priority Critical or above"]["notificationSettings"]["groupWait"] == "0s"
    # Falcosidekick posts to the same webhook; its failures are an alert of their own.
    failing = rules["Falcosidekick cannot deliver to the webhook"]
    assert promql_metrics(query_of(failing)) == {"falcosecurity_falcosidekick_outputs_total"}
    assert 'destination="webhook", status="error"' in query_of(failing)
    for group in rule_groups(run).values():
        assert contact.urn in group.dependencies


def test_in_tutorial_the_webhook_is_grafanas_only():
    run = run_program({"profile": "tutorial", "alertWebhookUrl": Secret("https://hooks.example.com/T000/B000/XXXX")})
    assert "Falcosidekick cannot deliver to the webhook" not in rules_of(run)
    assert "falcosidekick" not in run.charts()


def test_an_email_contact_point():
    run = run_program({"alerting": {"email": ["secops@example.com", "oncall@example.com"]}})
    contact = only(run, "alerting/contactPoint:ContactPoint")
    assert contact.plain("emails")[0]["addresses"] == ["secops@example.com", "oncall@example.com"]
    assert "Falcosidekick cannot deliver to the webhook" not in rules_of(run)


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
    sources = {r.plain("uid"): r.urn for r in grafana_resources(run, "oss/dataSource:DataSource")}
    for rule_group in rule_groups(run).values():
        queried = {data["datasourceUid"] for rule in rule_group.plain("rules") for data in rule["datas"]} - {"__expr__"}
        assert queried and queried <= set(sources)
        for uid in queried:
            assert sources[uid] in rule_group.dependencies, uid


def test_a_standalone_stack_shows_one_cluster_as_it_always_did(wired):
    """The fleet's additions stay on a fleet's hub: no cluster variable, selector, grouping or
    summary, no spoke silence rule, and no tenant header on the Loki data source."""
    _, _, run = wired
    rules = rules_of(run)
    assert "Spoke stopped sending" not in rules
    for name, rule in rules.items():
        assert "cluster" not in query_of(rule) and "$labels.cluster" not in rule["annotations"]["summary"], name
    model = dashboard_model(run)
    assert [v["name"] for v in model["templating"]["list"]] == ["prometheus", "loki", "namespace"]
    assert not any("cluster" in query or "__tenant_id__" in query for _, _, query in panel_queries(model))
    for source in grafana_resources(run, "oss/dataSource:DataSource"):
        assert source.plain("httpHeaders") is None, source.plain("type")
