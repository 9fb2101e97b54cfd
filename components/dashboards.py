"""The "Runtime defense overview" dashboard, as code with grafana-foundation-sdk.

On a fleet's hub, the same dashboard shows every cluster: a ``cluster`` variable picks them,
each PromQL selector keeps to the picked clusters and each aggregation keeps clusters apart
(``cluster=~"$cluster"``, ``by (cluster, ...)``), and each LogQL stream selector picks the
clusters' Loki tenants (``__tenant_id__=~"$cluster"``)."""

from __future__ import annotations

from dataclasses import dataclass

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
from components.fleet_view import CLUSTER, FleetView
from components.logging_stack import FALCO_LOG_CRITICAL_LOGQL, WALKTHROUGH_QUERY
from components.profile import Profile

OVERVIEW_UID = "runtime-defense-overview"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${prometheus}")
LOKI = DataSourceRef(type_val="loki", uid="${loki}")
# Falcosidekick's Loki streams carry priority names (types/priority.go).
CRITICAL_EVENTS_LOGQL = '{priority=~"Critical|Alert|Emergency", k8s_ns_name=~"$namespace"}'
CLUSTER_VARIABLE = "cluster"
# Loki's label for the tenant of each stream in a multi-tenant query: a cluster's logs.
TENANT_LABEL = "__tenant_id__"


@dataclass(frozen=True)
class Clusters:
    """Whose series and logs a query reads: the one cluster (standalone: queries as they
    always were), or the clusters picked in the ``cluster`` variable of a fleet's hub."""

    fleet: bool

    def select(self, metric: str, *matchers: str) -> str:
        """A PromQL selector of ``metric``, on a hub limited to the picked clusters."""
        named = [*matchers, f'{CLUSTER}=~"${CLUSTER_VARIABLE}"'] if self.fleet else list(matchers)
        return f"{metric}{{{', '.join(named)}}}" if named else metric

    def by(self, *labels: str) -> str:
        """Grouping labels, on a hub the cluster first."""
        return ", ".join((CLUSTER, *labels) if self.fleet else labels)

    def aggregate(self, operator: str, *labels: str) -> str:
        """``sum by (node)``, ``sum``...: on a hub per cluster too."""
        grouping = self.by(*labels)
        return f"{operator} by ({grouping})" if grouping else operator

    def legend(self, text: str) -> str:
        return f"{{{{{CLUSTER}}}}} {text}" if self.fleet else text

    def logs(self, query: str) -> str:
        """A LogQL query whose stream selector, on a hub, also picks the clusters' tenants."""
        if not self.fleet:
            return query
        if not query.startswith("{") or "}" not in query:
            raise ValueError(f"a LogQL query starting with its stream selector is expected, not {query!r}")
        end = query.index("}")
        return f'{query[:end]}, {TENANT_LABEL}=~"${CLUSTER_VARIABLE}"{query[end:]}'


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


def overview(profile: Profile, prometheus_uid: str, loki_uid: str, fleet: FleetView | None = None) -> str:
    """The dashboard model as JSON: events, Falco's health, and the logs that matter; on a
    fleet's hub (``fleet``), of the clusters picked in its ``cluster`` variable."""
    clusters = Clusters(fleet is not None)
    events = EVENT_COUNTERS[profile]
    in_namespace = clusters.select(events.name, 'k8s_ns_name=~"$namespace"')
    builder = (
        dashboard.Dashboard("Runtime defense overview")
        .uid(OVERVIEW_UID)
        .tags(["runtime-defense", "falco", profile])
        .time("now-6h", "now")
        .refresh("30s")
    )
    if clusters.fleet:
        builder = builder.with_variable(
            dashboard.QueryVariable(CLUSTER_VARIABLE)
            .label("Cluster")
            .datasource(PROMETHEUS)
            # Every scrape target of every cluster has an `up` series.
            .query(f"label_values(up, {CLUSTER})")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
    builder = (
        builder.with_variable(_datasource_variable("prometheus", "prometheus", prometheus_uid))
        .with_variable(_datasource_variable("loki", "loki", loki_uid))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(PROMETHEUS)
            .query(f"label_values({clusters.select(events.name)}, k8s_ns_name)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
        .with_row(dashboard.Row("Falco events"))
        .with_panel(
            _timeseries(
                "Falco events by priority",
                f"{clusters.aggregate('sum', events.priority_label)} (rate({in_namespace}[$__rate_interval]))",
                clusters.legend(f"{{{{{events.priority_label}}}}}"),
                "ops",
                12,
                ""
                if profile == "current"
                else "Falco numbers priorities: 0 Emergency, 1 Alert, 2 Critical, "
                "3 Error, 4 Warning, 5 Notice, 6 Informational, 7 Debug.",
            )
        )
        # On a hub, the fleet's top ten: topk keeps each row's cluster.
        .with_panel(
            _table(
                "Top rules", f"topk(10, {clusters.aggregate('sum', 'rule')} (increase({in_namespace}[$__range])))", 6
            )
        )
        .with_panel(
            _table(
                "Events by namespace and pod",
                f"{clusters.aggregate('sum', 'k8s_ns_name', 'k8s_pod_name')} (increase({in_namespace}[$__range])) > 0",
                6,
            )
        )
        .with_row(dashboard.Row("Falco health"))
    )
    for panel in _health_panels(profile, clusters):
        builder = builder.with_panel(panel)
    builder = builder.with_row(dashboard.Row("Logs")).with_panel(
        _logs(
            "etcd compaction (the walk-through's query)",
            clusters.logs(WALKTHROUGH_QUERY),
            12 if profile == "current" else 24,
        )
    )
    if profile == "current":
        builder = builder.with_panel(
            _logs("Latest Critical and above Falco events", clusters.logs(CRITICAL_EVENTS_LOGQL), 12)
        )
    builder = builder.with_panel(_falco_log_panel(clusters))
    model = builder.build()
    for panel_id, built in enumerate(model.panels or [], start=1):
        built.id_val = panel_id  # unique ids: Grafana links, alerts and edits refer to panels by id
    return JSONEncoder(sort_keys=True).encode(model)


def _falco_log_panel(clusters: Clusters) -> logs.Panel:
    """Critical and above events from Falco's own log lines, which the collector ships even
    while Falcosidekick is down (in ``tutorial``, the only copy of events in Loki)."""
    return _logs(
        "Critical and above Falco events, from Falco's own log", clusters.logs(FALCO_LOG_CRITICAL_LOGQL), 24
    ).description("Falco's JSON output as the log collector ships it: found even when Falcosidekick is down.")


def _health_panels(profile: Profile, clusters: Clusters) -> list[timeseries.Panel]:
    if profile == "tutorial":
        # Falco 0.43 here exports no metrics of its own; falco-exporter's counter is all there is.
        events = clusters.select("falco_events")
        return [
            _timeseries(
                "Falco hosts reporting events",
                # count(...) standalone, count by (cluster) (...) on a hub
                f"{clusters.aggregate('count')}{' ' if clusters.fleet else ''}"
                f"({clusters.aggregate('count', 'hostname')} ({events}))",
                clusters.legend("hosts"),
                "short",
                12,
            ),
            _timeseries(
                "Events per host",
                f"{clusters.aggregate('sum', 'hostname')} (rate({events}[$__rate_interval]))",
                clusters.legend("{{hostname}}"),
                "ops",
                12,
            ),
        ]
    # Per node: every scrape path labels Falco's targets with it (components/scraping.py).
    by_node = clusters.aggregate("sum", NODE)
    legend = clusters.legend(f"{{{{{NODE}}}}}")
    seen, dropped = clusters.select(SYSCALLS_SEEN), clusters.select(SYSCALLS_DROPPED)
    to_loki_failed = clusters.select(SIDEKICK_OUTPUTS, 'destination="loki"', 'status="error"')
    return [
        _timeseries("System calls seen", f"{by_node} (rate({seen}[$__rate_interval]))", legend, "ops", 6),
        _timeseries(
            "System calls dropped",
            f"{by_node} (rate({dropped}[$__rate_interval]))",
            legend,
            "ops",
            6,
            "Drops mean Falco missed events: raise the driver's buffer or Falco's CPU.",
        ),
        _timeseries(
            "Falco CPU",
            f"{clusters.aggregate('max', NODE)} ({clusters.select('falcosecurity_falco_cpu_usage_ratio')})",
            legend,
            "percentunit",
            6,
        ),
        _timeseries(
            "Falco memory",
            f"{clusters.aggregate('max', NODE)} ({clusters.select('falcosecurity_falco_memory_rss_bytes')})",
            legend,
            "bytes",
            6,
        ),
        _timeseries(
            "Share of system calls dropped",
            f"{by_node} (increase({dropped}[{DROPS_WINDOW}])) / {by_node} (increase({seen}[{DROPS_WINDOW}]))",
            legend,
            "percentunit",
            12,
            f'Over {DROPS_WINDOW}, as the alert "Falco drops system calls" reads it; '
            f"it fires above {DROPPED_SHARE:.0%}.",
        ),
        _timeseries_of(
            "Falco events lost on the way out",
            [
                (f"{by_node} (increase({clusters.select(OUTPUT_QUEUE_DROPS)}[5m]))", f"Falco's output queue, {legend}"),
                (
                    f"{clusters.aggregate('sum')} (increase({to_loki_failed}[5m]))",
                    clusters.legend("Falcosidekick to Loki"),
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
