"""The Falco alerts in Grafana: Critical-or-above events, and the sensor going dark.

Every rule is one Prometheus query, reduced to its last value per series and compared with
a threshold (``AlertRule``), so the same query and condition can be run by ``promtool test
rules`` (tests/rules/). No rule relies on Grafana's no-data handling: a query that finds
nothing means healthy, and absence is spelled out in PromQL (``absent``).
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


def critical_events_query(profile: Profile, namespace: str) -> str:
    """Critical, Alert and Emergency events per rule in the last five minutes, counted by the
    stack's Falco (scraped in ``namespace``) across pod restarts and counter resets
    (components/falco_metrics.py ``new_events``)."""
    counter = ALERT_COUNTERS[profile]
    return new_events(counter.selector(namespace), by=(counter.rule_label,))


def critical_events_group(profile: Profile, namespace: str) -> RuleGroupSpec:
    rule_label = ALERT_COUNTERS[profile].rule_label
    return RuleGroupSpec(
        CRITICAL_GROUP,
        CRITICAL_INTERVAL_SECONDS,
        (
            AlertRule(
                title="Falco event of priority Critical or above",
                query=critical_events_query(profile, namespace),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="critical",
                summary=f"Falco rule {{{{ $labels.{rule_label} }}}} matched {{{{ $values.B }}}} time(s) "
                f"at priority Critical or above in the last {WINDOW // 60} minutes",
            ),
        ),
    )


def _ready_on_every_node(namespace: str, daemonset: str) -> str:
    """Nodes with no ready pod of ``daemonset``: 1 per such node, nothing when all have one."""
    pods = f'kube_pod_info{{namespace="{namespace}", created_by_kind="DaemonSet", created_by_name="{daemonset}"}}'
    ready = f'kube_pod_status_ready{{namespace="{namespace}", condition="true"}} == 1'
    return f"max by (node) (kube_node_info) unless on (node) ({pods} and on (namespace, pod) ({ready}))"


def certificate_expiry_query(valid_until: Mapping[str, float]) -> str:
    """Seconds each certificate has left, labelled ``certificate``: the expiry is known to
    the program (pulumi-tls ``validity_end_time``) and changes only when `pulumi up` renews."""
    each = [f'label_replace(vector({int(end)}), "certificate", "{name}", "", "")' for name, end in valid_until.items()]
    return f"({' or '.join(each)}) - time()"


def sensor_health_group(
    profile: Profile,
    namespace: str,
    webhook_from_sidekick: bool,
    certificate_expiry: Mapping[str, pulumi.Input[str]],
    certificate_warning_hours: int,
) -> RuleGroupSpec:
    """Silence is an alert: a node without Falco, a scrape target down or gone, a node from
    which no Falco counts system calls, Falco dropping system calls or events, deliveries to
    the webhook or Loki failing, and certificates about to expire. Every query reads only the
    series of ``namespace`` (kube-state-metrics' node list aside), and each alert about a node
    or target names it on every scrape path (components/falco_metrics.py ``NODE``)."""
    services = SCRAPED_SERVICES[profile]
    targets = f'up{{namespace="{namespace}", service=~"{"|".join(services)}"}}'
    rules = [
        AlertRule(
            title=f"{AGENT_NAMES[agent]} is not running on a node",
            query=_ready_on_every_node(namespace, agent),
            evaluator="gt",
            threshold=0,
            pending="3m",
            severity="critical",
            summary=f"Node {{{{ $labels.node }}}} has had no ready {AGENT_NAMES[agent]} pod for 3 minutes: "
            + NOT_RUNNING_CAUSES[agent],
            labels={"daemonset": agent},
        )
        for agent in NODE_AGENTS[profile]
    ]
    rules += [
        AlertRule(
            title="Node coverage cannot be checked",
            query="absent(kube_node_info)",
            evaluator="gt",
            threshold=0,
            pending="5m",
            severity="warning",
            summary="kube-state-metrics reports no nodes, so nothing tells whether Falco runs on every node",
        ),
        AlertRule(
            title="Falco scrape target down",
            # One series per target, whichever labels the scrape path adds (pod, job,
            # endpoint...): node and instance name it on every path.
            query=f"max by (namespace, service, {NODE}, instance) ({targets}) == bool 0",
            evaluator="gt",
            threshold=0,
            pending="2m",
            severity="critical",
            summary="Prometheus cannot scrape {{ $labels.service }} on node {{ $labels.node }} "
            "({{ $labels.instance }})",
        ),
        AlertRule(
            title="Falco scrape target absent",
            query=" or ".join(f'absent(up{{namespace="{namespace}", service="{s}"}})' for s in services),
            evaluator="gt",
            threshold=0,
            pending="2m",
            severity="critical",
            summary="Prometheus has no target for {{ $labels.service }} in namespace {{ $labels.namespace }}",
        ),
    ]
    if profile == "current":
        rules += _falco_metric_rules(namespace)
    if webhook_from_sidekick:
        rules.append(
            AlertRule(
                title="Falcosidekick cannot deliver to the webhook",
                query=new_events(
                    f'{SIDEKICK_OUTPUTS}{{namespace="{namespace}", destination="webhook", status="error"}}'
                ),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="critical",
                summary="{{ $values.B }} Falco event(s) failed to reach the webhook in the last 5 minutes",
            )
        )
    if profile == "current":
        rules.append(
            AlertRule(
                title="Falcosidekick cannot deliver to Loki",
                # Falcosidekick 2.32.0 posts each event to Loki once (outputs/loki.go, no retry):
                # every error is an event missing from Loki for good. The alerts count at the
                # sensor and still fire; what is lost is the record a defender searches.
                query=new_events(f'{SIDEKICK_OUTPUTS}{{namespace="{namespace}", destination="loki", status="error"}}'),
                evaluator="gt",
                threshold=0,
                pending="0s",
                severity="warning",
                summary="{{ $values.B }} Falco event(s) failed to reach Loki in the last 5 minutes",
            )
        )
    if certificate_expiry:
        names = list(certificate_expiry)
        expiry_query = pulumi.Output.all(*certificate_expiry.values()).apply(
            lambda ends: certificate_expiry_query(dict(zip(names, map(_unix_seconds, ends), strict=True)))
        )
        rules.append(
            AlertRule(
                title="mTLS certificate expires soon",
                query=expiry_query,
                evaluator="lt",
                threshold=certificate_warning_hours * 3600,
                pending="0s",
                severity="warning",
                summary=f"The mTLS {{{{ $labels.certificate }}}} certificate expires in less than "
                f"{certificate_warning_hours} hours and `pulumi up` has not renewed it",
            )
        )
    return RuleGroupSpec(HEALTH_GROUP, HEALTH_INTERVAL_SECONDS, tuple(rules))


def _falco_metric_rules(namespace: str) -> list[AlertRule]:
    """The rules on Falco's own metrics (`current`), one alert per node."""
    seen = f'sum by ({NODE}) (increase({SYSCALLS_SEEN}{{namespace="{namespace}"}}[2m]))'
    dropped = f'sum by ({NODE}) (increase({SYSCALLS_DROPPED}{{namespace="{namespace}"}}[{DROPS_WINDOW}]))'
    sent = f'sum by ({NODE}) (increase({SYSCALLS_SEEN}{{namespace="{namespace}"}}[{DROPS_WINDOW}]))'
    return [
        AlertRule(
            title="Falco sees no system calls",
            # Any node makes system calls all the time: a node (kube-state-metrics' list) from
            # which no Falco counted any for two minutes is unwatched, whether its Falco is blind,
            # down, gone or not scraped; without kube-state-metrics, a Falco whose count stands
            # still still fires.
            query=f"(max by ({NODE}) (kube_node_info) unless on ({NODE}) ({seen} > 0)) or ({seen} == bool 0)",
            evaluator="gt",
            threshold=0,
            pending="1m",
            severity="critical",
            summary="No Falco has counted a system call on node {{ $labels.node }} for 3 minutes: "
            "it is blind, down or not scraped",
        ),
        AlertRule(
            title="Falco drops system calls",
            query=f"{dropped} / {sent}",
            evaluator="gt",
            threshold=DROPPED_SHARE,
            pending="0s",
            severity="critical",
            summary="Falco on node {{ $labels.node }} dropped {{ humanizePercentage $values.B.Value }} of its "
            "system calls in the last 5 minutes: what ran there may go unseen",
        ),
        AlertRule(
            title="Falco drops events at its outputs",
            # Falco counts a rule's match before queueing the event for its outputs, so the
            # Critical-events rule still fires; Falcosidekick, Loki and the webhook never see it.
            query=new_events(f'{OUTPUT_QUEUE_DROPS}{{namespace="{namespace}"}}', by=(NODE,)),
            evaluator="gt",
            threshold=0,
            pending="0s",
            severity="warning",
            summary="Falco on node {{ $labels.node }} dropped {{ $values.B }} event(s) from its output queue "
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


class FalcoCriticalAlert(pulumi.ComponentResource):
    """The contact point, and a rule group evaluated every 10 s that fires as soon as the
    stack's Falco counts an event of priority Critical or above, per rule, across restarts. With a webhook
    or e-mail configured, its rules notify that contact point at once (Grafana's simplified
    routing, no group wait); without, they follow Grafana's default notification policy.

    In `current` with a webhook, Falcosidekick posts each such event to the webhook itself
    within seconds (components/event_export.py); this rule is then the dashboard's view and a
    second path that counts at the sensor, so it still fires when Falcosidekick is down.
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
            critical_events_group(args.profile, args.falco_namespace),
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


class FalcoSensorAlerts(pulumi.ComponentResource):
    """A rule group evaluated every 30 s that fires when the sensor goes dark: a node without
    a ready Falco (or, in `tutorial`, falco-exporter), a Falco, Falcosidekick or exporter scrape
    target down or gone, a node from which Falco counts no system calls, Falco dropping system
    calls or events, Falcosidekick failing to deliver to the webhook or to Loki, and an mTLS
    certificate close to expiry that no `pulumi up` has renewed.
    """

    def __init__(self, name: str, args: FalcoSensorAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:FalcoSensorAlerts", name, None, opts)
        spec = sensor_health_group(
            args.profile,
            args.falco_namespace,
            args.webhook_from_sidekick,
            args.certificate_expiry,
            args.certificate_warning_hours,
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
