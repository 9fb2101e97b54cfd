"""The "Runtime defense overview" dashboard, as code with grafana-foundation-sdk."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from components.falco_metrics import (
    DROPPED_SHARE,
    DROPS_WINDOW,
    EVENT_COUNTERS,
    NODE,
    OUTPUT_QUEUE_DROPS,
    SIDEKICK_OUTPUTS,
    SYSCALLS_DROPPED,
    SYSCALLS_SEEN,
)
from components.logging_stack import FALCO_LOG_CRITICAL_LOGQL, WALKTHROUGH_QUERY
from components.profile import Profile

OVERVIEW_UID = "runtime-defense-overview"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${prometheus}")
LOKI = DataSourceRef(type_val="loki", uid="${loki}")
# Falcosidekick's Loki streams carry priority names (types/priority.go).
CRITICAL_EVENTS_LOGQL = '{priority=~"Critical|Alert|Emergency", k8s_ns_name=~"$namespace"}'


def _prometheus_query(expr: str, legend: str | None = None, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().ref_id("A").expr(expr)
    if legend:
        query = query.legend_format(legend)
    if instant:
        query = query.instant().format(PromQueryFormat.TABLE)
    return query


def _timeseries(title: str, expr: str, legend: str, unit: str, width: int, description: str = "") -> timeseries.Panel:
    return _timeseries_of(title, [(expr, legend)], unit, width, description)


def _timeseries_of(
    title: str, queries: list[tuple[str, str]], unit: str, width: int, description: str = ""
) -> timeseries.Panel:
    """A time series panel of one or more (query, legend) pairs, refIds A, B..."""
    panel = timeseries.Panel().title(title).datasource(PROMETHEUS).unit(unit).span(width).height(8)
    for ref_id, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(_prometheus_query(expr, legend).ref_id(ref_id))
    return panel.description(description) if description else panel


def _table(title: str, expr: str, width: int) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .datasource(PROMETHEUS)
        .with_target(_prometheus_query(expr, instant=True))
        .span(width)
        .height(8)
    )


def _logs(title: str, expr: str, width: int) -> logs.Panel:
    query = loki.Dataquery().ref_id("A").expr(expr)
    return logs.Panel().title(title).datasource(LOKI).with_target(query).span(width).height(10)


def overview(profile: Profile, prometheus_uid: str, loki_uid: str) -> str:
    """The dashboard model as JSON: events, Falco's health, and the logs that matter."""
    events = EVENT_COUNTERS[profile]
    in_namespace = f'{events.name}{{k8s_ns_name=~"$namespace"}}'
    builder = (
        dashboard.Dashboard("Runtime defense overview")
        .uid(OVERVIEW_UID)
        .tags(["runtime-defense", "falco", profile])
        .time("now-6h", "now")
        .refresh("30s")
        .with_variable(_datasource_variable("prometheus", "prometheus", prometheus_uid))
        .with_variable(_datasource_variable("loki", "loki", loki_uid))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(PROMETHEUS)
            .query(f"label_values({events.name}, k8s_ns_name)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
        .with_row(dashboard.Row("Falco events"))
        .with_panel(
            _timeseries(
                "Falco events by priority",
                f"sum by ({events.priority_label}) (rate({in_namespace}[$__rate_interval]))",
                f"{{{{{events.priority_label}}}}}",
                "ops",
                12,
                ""
                if profile == "current"
                else "Falco numbers priorities: 0 Emergency, 1 Alert, 2 Critical, "
                "3 Error, 4 Warning, 5 Notice, 6 Informational, 7 Debug.",
            )
        )
        .with_panel(_table("Top rules", f"topk(10, sum by (rule) (increase({in_namespace}[$__range])))", 6))
        .with_panel(
            _table(
                "Events by namespace and pod",
                f"sum by (k8s_ns_name, k8s_pod_name) (increase({in_namespace}[$__range])) > 0",
                6,
            )
        )
        .with_row(dashboard.Row("Falco health"))
    )
    for panel in _health_panels(profile):
        builder = builder.with_panel(panel)
    builder = builder.with_row(dashboard.Row("Logs")).with_panel(
        _logs("etcd compaction (the walk-through's query)", WALKTHROUGH_QUERY, 12 if profile == "current" else 24)
    )
    if profile == "current":
        builder = builder.with_panel(_logs("Latest Critical and above Falco events", CRITICAL_EVENTS_LOGQL, 12))
    builder = builder.with_panel(_falco_log_panel())
    model = builder.build()
    for panel_id, built in enumerate(model.panels or [], start=1):
        built.id_val = panel_id  # unique ids: Grafana links, alerts and edits refer to panels by id
    return JSONEncoder(sort_keys=True).encode(model)


def _falco_log_panel() -> logs.Panel:
    """Critical and above events from Falco's own log lines, which the collector ships even
    while Falcosidekick is down (in ``tutorial``, the only copy of events in Loki)."""
    return _logs("Critical and above Falco events, from Falco's own log", FALCO_LOG_CRITICAL_LOGQL, 24).description(
        "Falco's JSON output as the log collector ships it: found even when Falcosidekick is down."
    )


def _health_panels(profile: Profile) -> list[timeseries.Panel]:
    if profile == "tutorial":
        # Falco 0.43 here exports no metrics of its own; falco-exporter's counter is all there is.
        return [
            _timeseries(
                "Falco hosts reporting events",
                "count(count by (hostname) (falco_events))",
                "hosts",
                "short",
                12,
            ),
            _timeseries(
                "Events per host", "sum by (hostname) (rate(falco_events[$__rate_interval]))", "{{hostname}}", "ops", 12
            ),
        ]
    # Per node: every scrape path labels Falco's targets with it (components/scraping.py).
    by_node = f"sum by ({NODE})"
    legend = f"{{{{{NODE}}}}}"
    return [
        _timeseries("System calls seen", f"{by_node} (rate({SYSCALLS_SEEN}[$__rate_interval]))", legend, "ops", 6),
        _timeseries(
            "System calls dropped",
            f"{by_node} (rate({SYSCALLS_DROPPED}[$__rate_interval]))",
            legend,
            "ops",
            6,
            "Drops mean Falco missed events: raise the driver's buffer or Falco's CPU.",
        ),
        _timeseries("Falco CPU", f"max by ({NODE}) (falcosecurity_falco_cpu_usage_ratio)", legend, "percentunit", 6),
        _timeseries("Falco memory", f"max by ({NODE}) (falcosecurity_falco_memory_rss_bytes)", legend, "bytes", 6),
        _timeseries(
            "Share of system calls dropped",
            f"{by_node} (increase({SYSCALLS_DROPPED}[{DROPS_WINDOW}]))"
            f" / {by_node} (increase({SYSCALLS_SEEN}[{DROPS_WINDOW}]))",
            legend,
            "percentunit",
            12,
            f'Over {DROPS_WINDOW}, as the alert "Falco drops system calls" reads it; '
            f"it fires above {DROPPED_SHARE:.0%}.",
        ),
        _timeseries_of(
            "Falco events lost on the way out",
            [
                (f"{by_node} (increase({OUTPUT_QUEUE_DROPS}[5m]))", f"Falco's output queue, {legend}"),
                (
                    f'sum (increase({SIDEKICK_OUTPUTS}{{destination="loki", status="error"}}[5m]))',
                    "Falcosidekick to Loki",
                ),
            ],
            "short",
            12,
            "Events Falco matched that never reached Loki, per five minutes: dropped from Falco's "
            "output queue, or failed on Falcosidekick's delivery to Loki. Any raises an alert.",
        ),
    ]


def _datasource_variable(name: str, plugin: str, uid: str) -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable(name)
        .label(name.capitalize())
        .type(plugin)
        .current(VariableOption(selected=True, text=uid, value=uid))
    )
