"""The Falco alerts in Grafana: Critical-or-above events, and the sensor going dark.

Every rule is one Prometheus query, reduced to its last value per series and compared with
a threshold (``AlertRule``), so the same query and condition can be run by ``promtool test
rules`` (tests/rules/). No rule relies on Grafana's no-data handling: a query that finds
nothing means healthy, and absence is spelled out in PromQL (``absent``).

On a fleet's hub (``fleet``), the same rules watch every cluster: each aggregation and join
is per ``cluster`` too, each absence is spelled out per cluster, each summary names the
cluster, and one more rule says when a spoke stopped sending (``spoke_silence_query``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pulumi
import pulumiverse_grafana as grafana
from grafana_foundation_sdk.builders import expr, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from components import event_export, falco
from components.dashboards import OVERVIEW_UID
from components.falco_metrics import (
    ALERT_COUNTERS,
    DROPPED_SHARE,
    DROPS_WINDOW,
    NODE,
    OUTPUT_QUEUE_DROPS,
    SIDEKICK_OUTPUTS,
    SYSCALLS_DROPPED,
    SYSCALLS_SEEN,
    WINDOW,
    new_events,
)
from components.fleet_view import CLUSTER, FleetView
from components.profile import Profile

EXPRESSIONS = DataSourceRef(type_val="__expr__", uid="__expr__")
CONTACT_POINT = "runtime-defense"
CRITICAL_GROUP = "Falco critical events"
HEALTH_GROUP = "Falco sensor health"
# The slowest hop of the Grafana path is the scrape (15 s Falco, 30 s the exporters); an
# evaluation every 10 s (Grafana's minimum by default) adds at most 10 s to it.
CRITICAL_INTERVAL_SECONDS = 10
HEALTH_INTERVAL_SECONDS = 30
# Sent at once when a contact point is configured (Grafana's default policy waits 30 s).
CRITICAL_GROUP_WAIT = "0s"
# The Services Prometheus scrapes: falco chart 9.1.0 names its metrics Service
# "<fullname>-metrics" (templates/service.yaml); the others are the release names.
FALCO_METRICS_SERVICE = f"{falco.RELEASE}-metrics"
SCRAPED_SERVICES: dict[Profile, tuple[str, ...]] = {
    "current": (FALCO_METRICS_SERVICE, event_export.SIDEKICK_RELEASE),
    "tutorial": (event_export.EXPORTER_RELEASE,),
}
# DaemonSets that must have a ready pod on every node: Falco, and in `tutorial` the
# exporter, which is ready only once it has subscribed to Falco's gRPC event stream.
NODE_AGENTS: dict[Profile, tuple[str, ...]] = {
    "current": (falco.RELEASE,),
    "tutorial": (falco.RELEASE, event_export.EXPORTER_RELEASE),
}
AGENT_NAMES = {falco.RELEASE: "Falco", event_export.EXPORTER_RELEASE: "falco-exporter"}
# Why a node has no ready pod of each agent, most common cause first.
# (Ubuntu and Debian kernels add paranoia levels above 2 that refuse perf_event_open without
# CAP_SYS_ADMIN, which the least-privileged modern_ebpf driver needs since Falco 0.42:
# falcosecurity/charts#921.)
NOT_RUNNING_CAUSES = {
    falco.RELEASE: "system calls there go unwatched; on Ubuntu and Debian hosts the usual cause is "
    "kernel.perf_event_paranoid above 2, which makes the least-privileged modern_ebpf driver fail "
    "and Falco crash-loop (docs/operations.md, Troubleshooting)",
    event_export.EXPORTER_RELEASE: "Falco's events there are not counted",
}
RUNBOOK = f"Grafana dashboard {OVERVIEW_UID}; docs/alerting.md"
SPOKE_SILENT = "Spoke stopped sending"
# A spoke is silent when none of its `up` samples of the last SILENCE_WINDOW_MINUTES has reached
# the hub. Its Prometheus agent scrapes every 30 s, and each of the two remote-write hops (agent
# -> gateway -> the hub's Alloy receiver -> Prometheus) sends a batch within 5 s and retries
# with backoff capped at 5 s (Prometheus' and Alloy's defaults), so the newest sample on the hub
# is normally under 40 s old; two minutes leave room for three lost scrapes. The alert then
# waits SILENCE_PENDING_MINUTES more: the agent's and Alloy's write-ahead logs resend, with their
# own timestamps, what a restart of the gateway, Alloy or the hub's Prometheus held back, so
# such a stall fills in before it fires.
SILENCE_WINDOW_MINUTES = 2
SILENCE_PENDING_MINUTES = 1


@dataclass(frozen=True)
class AlertRule:
    """A query and what of its value fires: ``last(query) <evaluator> threshold`` per series,
    held for ``pending`` (Grafana's "for") before the alert fires."""

    title: str
    query: pulumi.Input[str]  # a str, or an Output where a value is known only after `up`
    evaluator: Literal["gt", "lt"]
    threshold: float
    pending: str
    severity: Literal["critical", "warning"]
    summary: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroupSpec:
    title: str
    interval_seconds: int
    rules: tuple[AlertRule, ...]


def _by(fleet: FleetView | None, *labels: str) -> str:
    """Labels to group or match by: with a fleet, the cluster's first."""
    return ", ".join((CLUSTER, *labels) if fleet is not None else labels)


def _of_cluster(fleet: FleetView | None) -> str:
    return f" of cluster {{{{ $labels.{CLUSTER} }}}}" if fleet is not None else ""


def _per_cluster(fleet: FleetView, metric: str, matchers: Sequence[str] = ()) -> list[str]:
    """``metric``'s selector once per admitted cluster, each naming its cluster exactly (so
    that ``absent`` of it carries the label)."""
    selectors = []
    for cluster in fleet.clusters:
        named = [*matchers, f'{CLUSTER}="{cluster}"']
        selectors.append(f"{metric}{{{', '.join(named)}}}")
    return selectors


def spoke_silence_query(fleet: FleetView) -> str:
    """1 per spoke from which no ``up`` sample arrived within ``SILENCE_WINDOW_MINUTES``, labelled with
    its cluster. Every scrape the spoke's agent makes writes ``up`` for its target and
    remote-writes it with the rest, so ``up`` arrives whenever anything does, and reading
    only it keeps the rule cheap however many series a spoke sends."""
    return " or ".join(
        f'absent_over_time(up{{{CLUSTER}="{spoke}"}}[{SILENCE_WINDOW_MINUTES}m])' for spoke in fleet.spokes
    )


def _unless_silent(query: str, fleet: FleetView | None) -> str:
    """``query`` less its alerts about spokes that stopped sending: their series age out one
    after another (instant vectors after Prometheus' five-minute lookback, ranges sooner), and
    "Spoke stopped sending" then speaks for the whole cluster instead of one alert per node."""
    if fleet is None or not fleet.spokes:
        return query
    return f"({query}) unless on ({CLUSTER}) ({spoke_silence_query(fleet)})"


def critical_events_query(profile: Profile, namespace: str, fleet: FleetView | None = None) -> str:
    """Critical, Alert and Emergency events per rule (and cluster, in a fleet) in the last
    five minutes, counted by the stack's Falco (scraped in ``namespace``) across pod restarts
    and counter resets (components/falco_metrics.py ``new_events``)."""
    counter = ALERT_COUNTERS[profile]
    return new_events(counter.selector(namespace), by=(counter.rule_label,), fleet=fleet)


def critical_events_group(profile: Profile, namespace: str, fleet: FleetView | None = None) -> RuleGroupSpec:
    rule_label = ALERT_COUNTERS[profile].rule_label
    where = f" on cluster {{{{ $labels.{CLUSTER} }}}}" if fleet is not None else ""
    return RuleGroupSpec(
        CRITICAL_GROUP,
        CRITICAL_INTERVAL_SECONDS,
        (
            AlertRule(
                title="Falco event of priority Critical or above",
                query=critical_events_query(profile, namespace, fleet),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="critical",
                summary=f"Falco rule {{{{ $labels.{rule_label} }}}} matched {{{{ $values.B }}}} time(s) "
                f"at priority Critical or above{where} in the last {WINDOW // 60} minutes",
            ),
        ),
    )


def _ready_on_every_node(namespace: str, daemonset: str, fleet: FleetView | None = None) -> str:
    """Nodes with no ready pod of ``daemonset``: 1 per such node, nothing when all have one."""
    pods = f'kube_pod_info{{namespace="{namespace}", created_by_kind="DaemonSet", created_by_name="{daemonset}"}}'
    ready = f'kube_pod_status_ready{{namespace="{namespace}", condition="true"}} == 1'
    nodes = _by(fleet, NODE)
    return (
        f"max by ({nodes}) (kube_node_info) unless on ({nodes}) "
        f"({pods} and on ({_by(fleet, 'namespace', 'pod')}) ({ready}))"
    )


def certificate_expiry_query(valid_until: Mapping[str, float], cluster: str | None = None) -> str:
    """Seconds each certificate has left, labelled ``certificate`` (and ``cluster``, when
    given): the expiry is known to the program (pulumi-tls ``validity_end_time``) and changes
    only when `pulumi up` renews."""
    each = " or ".join(
        f'label_replace(vector({int(end)}), "certificate", "{name}", "", "")' for name, end in valid_until.items()
    )
    if cluster is None:
        return f"({each}) - time()"
    return f'label_replace(({each}), "{CLUSTER}", "{cluster}", "", "") - time()'


def sensor_health_group(
    profile: Profile,
    namespace: str,
    webhook_from_sidekick: bool,
    certificate_expiry: Mapping[str, pulumi.Input[str]],
    certificate_warning_hours: int,
    fleet: FleetView | None = None,
) -> RuleGroupSpec:
    """Silence is an alert: a node without Falco, a scrape target down or gone, a node from
    which no Falco counts system calls, Falco dropping system calls or events, deliveries to
    the webhook or Loki failing, and certificates about to expire. Every query reads only the
    series of ``namespace`` (kube-state-metrics' node list aside), and each alert about a node
    or target names it on every scrape path (components/falco_metrics.py ``NODE``).

    On a fleet's hub, per cluster (the same Falco namespace on each), plus a spoke that stopped
    sending; the certificates are the hub's own (each spoke's stack issues its own)."""
    services = SCRAPED_SERVICES[profile]
    targets = f'up{{namespace="{namespace}", service=~"{"|".join(services)}"}}'
    of_cluster = _of_cluster(fleet)
    rules = []
    if fleet is not None and fleet.spokes:
        rules.append(
            AlertRule(
                title=SPOKE_SILENT,
                query=spoke_silence_query(fleet),
                evaluator="gt",
                threshold=0,
                pending=f"{SILENCE_PENDING_MINUTES}m",
                severity="critical",
                summary=f"No metric of spoke cluster {{{{ $labels.{CLUSTER} }}}} has reached the hub for "
                f"{SILENCE_WINDOW_MINUTES + SILENCE_PENDING_MINUTES} minutes: "
                "its Prometheus agent is down or cannot reach the hub's gateway, or the hub's receiver for it is "
                "down. Falco there may still run, unwatched; its other alerts wait until it sends again",
            )
        )
    rules += [
        AlertRule(
            title=f"{AGENT_NAMES[agent]} is not running on a node",
            query=_ready_on_every_node(namespace, agent, fleet),
            evaluator="gt",
            threshold=0,
            pending="3m",
            severity="critical",
            summary=f"Node {{{{ $labels.node }}}}{of_cluster} has had no ready {AGENT_NAMES[agent]} pod for "
            "3 minutes: " + NOT_RUNNING_CAUSES[agent],
            labels={"daemonset": agent},
        )
        for agent in NODE_AGENTS[profile]
    ]
    if fleet is None:
        absent_targets = " or ".join(f'absent(up{{namespace="{namespace}", service="{s}"}})' for s in services)
        absent_nodes = "absent(kube_node_info)"
    else:
        absent_targets = " or ".join(
            f"absent({selector})"
            for s in services
            for selector in _per_cluster(fleet, "up", (f'namespace="{namespace}"', f'service="{s}"'))
        )
        absent_nodes = " or ".join(f"absent({selector})" for selector in _per_cluster(fleet, "kube_node_info"))
    rules += [
        AlertRule(
            title="Node coverage cannot be checked",
            query=_unless_silent(absent_nodes, fleet),
            evaluator="gt",
            threshold=0,
            pending="5m",
            severity="warning",
            summary=f"kube-state-metrics{of_cluster} reports no nodes, so nothing tells whether Falco runs on "
            "every node",
        ),
        AlertRule(
            title="Falco scrape target down",
            # One series per target, whichever labels the scrape path adds (pod, job,
            # endpoint...): node and instance name it on every path.
            query=f"max by ({_by(fleet, 'namespace', 'service', NODE, 'instance')}) ({targets}) == bool 0",
            evaluator="gt",
            threshold=0,
            pending="2m",
            severity="critical",
            summary=f"Prometheus cannot scrape {{{{ $labels.service }}}} on node {{{{ $labels.node }}}}{of_cluster} "
            "({{ $labels.instance }})",
        ),
        AlertRule(
            title="Falco scrape target absent",
            query=_unless_silent(absent_targets, fleet),
            evaluator="gt",
            threshold=0,
            pending="2m",
            severity="critical",
            summary="Prometheus has no target for {{ $labels.service }} in namespace {{ $labels.namespace }}"
            + of_cluster,
        ),
    ]
    if profile == "current":
        rules += _falco_metric_rules(namespace, fleet)
    if webhook_from_sidekick:
        rules.append(
            AlertRule(
                title="Falcosidekick cannot deliver to the webhook",
                query=new_events(
                    f'{SIDEKICK_OUTPUTS}{{namespace="{namespace}", destination="webhook", status="error"}}',
                    fleet=fleet,
                ),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="critical",
                summary=f"{{{{ $values.B }}}} Falco event(s){of_cluster} failed to reach the webhook in the last "
                "5 minutes",
            )
        )
    if profile == "current":
        rules.append(
            AlertRule(
                title="Falcosidekick cannot deliver to Loki",
                # Falcosidekick 2.32.0 posts each event to Loki once (outputs/loki.go, no retry):
                # every error is an event missing from Loki for good. The alerts count at the
                # sensor and still fire; what is lost is the record a defender searches.
                query=new_events(
                    f'{SIDEKICK_OUTPUTS}{{namespace="{namespace}", destination="loki", status="error"}}', fleet=fleet
                ),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="warning",
                summary=f"{{{{ $values.B }}}} Falco event(s){of_cluster} failed to reach Loki in the last 5 minutes",
            )
        )
    if certificate_expiry:
        names = list(certificate_expiry)
        hub = fleet.hub if fleet is not None else None
        expiry_query = pulumi.Output.all(*certificate_expiry.values()).apply(
            lambda ends: certificate_expiry_query(dict(zip(names, map(_unix_seconds, ends), strict=True)), hub)
        )
        rules.append(
            AlertRule(
                title="mTLS certificate expires soon",
                query=expiry_query,
                evaluator="lt",
                threshold=certificate_warning_hours * 3600,
                pending="0s",
                severity="warning",
                summary=f"The mTLS {{{{ $labels.certificate }}}} certificate{of_cluster} expires in less than "
                f"{certificate_warning_hours} hours and `pulumi up` has not renewed it",
            )
        )
    return RuleGroupSpec(HEALTH_GROUP, HEALTH_INTERVAL_SECONDS, tuple(rules))


def _falco_metric_rules(namespace: str, fleet: FleetView | None = None) -> list[AlertRule]:
    """The rules on Falco's own metrics (`current`), one alert per node (per cluster and node
    in a fleet; the ratio's two sides match on every label they keep, the cluster's too)."""
    nodes = _by(fleet, NODE)
    on_node = f"node {{{{ $labels.node }}}}{_of_cluster(fleet)}"
    seen = f'sum by ({nodes}) (increase({SYSCALLS_SEEN}{{namespace="{namespace}"}}[2m]))'
    dropped = f'sum by ({nodes}) (increase({SYSCALLS_DROPPED}{{namespace="{namespace}"}}[{DROPS_WINDOW}]))'
    sent = f'sum by ({nodes}) (increase({SYSCALLS_SEEN}{{namespace="{namespace}"}}[{DROPS_WINDOW}]))'
    return [
        AlertRule(
            title="Falco sees no system calls",
            # Any node makes system calls all the time: a node (kube-state-metrics' list) from
            # which no Falco counted any for two minutes is unwatched, whether its Falco is blind,
            # down, gone or not scraped; without kube-state-metrics, a Falco whose count stands
            # still still fires.
            query=_unless_silent(
                f"(max by ({nodes}) (kube_node_info) unless on ({nodes}) ({seen} > 0)) or ({seen} == bool 0)", fleet
            ),
            evaluator="gt",
            threshold=0,
            pending="1m",
            severity="critical",
            summary=f"No Falco has counted a system call on {on_node} for 3 minutes: it is blind, down or not scraped",
        ),
        AlertRule(
            title="Falco drops system calls",
            query=f"{dropped} / {sent}",
            evaluator="gt",
            threshold=DROPPED_SHARE,
            pending="0s",
            severity="critical",
            summary=f"Falco on {on_node} dropped {{{{ humanizePercentage $values.B.Value }}}} of its "
            "system calls in the last 5 minutes: what ran there may go unseen",
        ),
        AlertRule(
            title="Falco drops events at its outputs",
            # Falco counts a rule's match before queueing the event for its outputs, so the
            # Critical-events rule still fires; Falcosidekick, Loki and the webhook never see it.
            query=new_events(f'{OUTPUT_QUEUE_DROPS}{{namespace="{namespace}"}}', by=(NODE,), fleet=fleet),
            evaluator="gt",
            threshold=0,
            pending="0s",
            severity="warning",
            summary=f"Falco on {on_node} dropped {{{{ $values.B }}}} event(s) from its output queue "
            "in the last 5 minutes: they reached neither Falcosidekick nor Loki",
        ),
    ]


def _unix_seconds(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _rule_args(
    rule: AlertRule, prometheus_uid: str, contact_point: pulumi.Output[str] | None, group_wait: str | None
) -> grafana.alerting.RuleGroupRuleArgs:
    encode = JSONEncoder(sort_keys=True).encode
    window = grafana.alerting.RuleGroupRuleDataRelativeTimeRangeArgs(from_=WINDOW, to=0)

    def query_model(query: str) -> str:
        return encode(
            prometheus.Dataquery()
            .ref_id("A")
            .expr(query)
            .instant()
            .datasource(DataSourceRef(type_val="prometheus", uid=prometheus_uid))
            .build()
        )

    last = expr.TypeReduce().ref_id("B").expression("A").reducer("last").datasource(EXPRESSIONS)
    condition = (
        expr.TypeThreshold()
        .ref_id("C")
        .expression("B")
        .conditions(
            [
                expr.ExprTypeThresholdConditions().evaluator(
                    expr.ExprTypeThresholdConditionsEvaluator().type(rule.evaluator).params([rule.threshold])
                )
            ]
        )
        .datasource(EXPRESSIONS)
    )
    return grafana.alerting.RuleGroupRuleArgs(
        name=rule.title,
        condition="C",
        for_=rule.pending,
        # The queries spell out absence themselves; nothing found means healthy.
        no_data_state="OK",
        # Prometheus unreachable: Grafana raises a DatasourceError alert.
        exec_err_state="Error",
        labels={"severity": rule.severity, "source": "falco", **rule.labels},
        annotations={
            "summary": rule.summary,
            "runbook": RUNBOOK,
        },
        datas=[
            grafana.alerting.RuleGroupRuleDataArgs(
                ref_id="A",
                datasource_uid=prometheus_uid,
                relative_time_range=window,
                model=pulumi.Output.from_input(rule.query).apply(query_model),
            ),
            grafana.alerting.RuleGroupRuleDataArgs(
                ref_id="B", datasource_uid="__expr__", relative_time_range=window, model=encode(last.build())
            ),
            grafana.alerting.RuleGroupRuleDataArgs(
                ref_id="C", datasource_uid="__expr__", relative_time_range=window, model=encode(condition.build())
            ),
        ],
        notification_settings=grafana.alerting.RuleGroupRuleNotificationSettingsArgs(
            contact_point=contact_point, group_wait=group_wait
        )
        if contact_point is not None
        else None,
    )


def rule_group(
    name: str,
    spec: RuleGroupSpec,
    folder_uid: pulumi.Input[str],
    prometheus_uid: str,
    contact_point: pulumi.Output[str] | None,
    opts: pulumi.ResourceOptions,
    group_wait: str | None = None,
) -> grafana.alerting.RuleGroup:
    return grafana.alerting.RuleGroup(
        name,
        name=spec.title,
        folder_uid=folder_uid,
        interval_seconds=spec.interval_seconds,
        rules=[_rule_args(rule, prometheus_uid, contact_point, group_wait) for rule in spec.rules],
        opts=opts,
    )


@dataclass(frozen=True)
class FalcoCriticalAlertArgs:
    profile: Profile
    falco_namespace: str  # only the stack's own Falco counts, not another in the cluster
    folder_uid: pulumi.Input[str]
    prometheus_uid: str
    webhook_url: pulumi.Output[str] | None
    email_addresses: tuple[str, ...]
    after: Sequence[pulumi.Resource]
    fleet: FleetView | None = None  # on a fleet's hub: every cluster's events, each alert naming its cluster


class FalcoCriticalAlert(pulumi.ComponentResource):
    """The contact point, and a rule group evaluated every 10 s that fires as soon as the
    stack's Falco counts an event of priority Critical or above, per rule, across restarts. With a webhook
    or e-mail configured, its rules notify that contact point at once (Grafana's simplified
    routing, no group wait); without, they follow Grafana's default notification policy.

    In `current` with a webhook, Falcosidekick posts each such event to the webhook itself
    within seconds (components/event_export.py); this rule is then the dashboard's view and a
    second path that counts at the sensor, so it still fires when Falcosidekick is down.
    On a fleet's hub, it counts every cluster's events, per cluster.
    """

    def __init__(self, name: str, args: FalcoCriticalAlertArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:FalcoCriticalAlert", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))

        self.contact_point: grafana.alerting.ContactPoint | None = None
        if args.webhook_url is not None or args.email_addresses:
            self.contact_point = grafana.alerting.ContactPoint(
                f"{name}-contact",
                name=CONTACT_POINT,
                webhooks=[grafana.alerting.ContactPointWebhookArgs(url=args.webhook_url)]
                if args.webhook_url is not None
                else None,
                emails=[grafana.alerting.ContactPointEmailArgs(addresses=list(args.email_addresses))]
                if args.email_addresses
                else None,
                opts=child,
            )
        self.contact_point_name = self.contact_point.name if self.contact_point is not None else None
        self.rule_group = rule_group(
            name,
            critical_events_group(args.profile, args.falco_namespace, args.fleet),
            args.folder_uid,
            args.prometheus_uid,
            self.contact_point_name,
            child,
            group_wait=CRITICAL_GROUP_WAIT,
        )
        self.register_outputs({})


@dataclass(frozen=True)
class FalcoSensorAlertsArgs:
    profile: Profile
    folder_uid: pulumi.Input[str]
    prometheus_uid: str
    falco_namespace: str
    webhook_from_sidekick: bool  # Falcosidekick posts Critical events to the webhook itself
    # Certificate name -> its end of validity (RFC 3339), known once pulumi-tls has issued it.
    certificate_expiry: Mapping[str, pulumi.Input[str]]
    certificate_warning_hours: int
    contact_point: pulumi.Output[str] | None
    after: Sequence[pulumi.Resource]
    fleet: FleetView | None = None  # on a fleet's hub: every cluster's sensors, and spokes gone silent


class FalcoSensorAlerts(pulumi.ComponentResource):
    """A rule group evaluated every 30 s that fires when the sensor goes dark: a node without
    a ready Falco (or, in `tutorial`, falco-exporter), a Falco, Falcosidekick or exporter scrape
    target down or gone, a node from which Falco counts no system calls, Falco dropping system
    calls or events, Falcosidekick failing to deliver to the webhook or to Loki, and an mTLS
    certificate close to expiry that no `pulumi up` has renewed. On a fleet's hub, for every
    cluster, each alert naming its cluster, and for each spoke that stopped sending.
    """

    def __init__(self, name: str, args: FalcoSensorAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:FalcoSensorAlerts", name, None, opts)
        spec = sensor_health_group(
            args.profile,
            args.falco_namespace,
            args.webhook_from_sidekick,
            args.certificate_expiry,
            args.certificate_warning_hours,
            args.fleet,
        )
        self.rule_group = rule_group(
            name,
            spec,
            args.folder_uid,
            args.prometheus_uid,
            args.contact_point,
            pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.register_outputs({})
