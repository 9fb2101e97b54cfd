"""FalcoCriticalAlert: a Grafana alert on any Falco event of priority Critical or above."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumiverse_grafana as grafana
from grafana_foundation_sdk.builders import expr, prometheus
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from components.config import Profile
from components.dashboards import OVERVIEW_UID
from components.falco_metrics import ALERT_COUNTERS, events_in_window

WINDOW_SECONDS = 300
THRESHOLD = 0  # any event at all
EXPRESSIONS = DataSourceRef(type_val="__expr__", uid="__expr__")


@dataclass(frozen=True)
class FalcoCriticalAlertArgs:
    profile: Profile
    folder_uid: pulumi.Input[str]
    prometheus_uid: str
    webhook_url: pulumi.Output[str] | None
    email_addresses: tuple[str, ...]
    after: Sequence[pulumi.Resource]


def query(profile: Profile) -> str:
    """Critical, Alert and Emergency events in the last five minutes."""
    return events_in_window(ALERT_COUNTERS[profile], f"{WINDOW_SECONDS // 60}m")


class FalcoCriticalAlert(pulumi.ComponentResource):
    """A Grafana-managed rule group evaluated every minute: it fires as soon as Falco reports
    an event of priority Critical or above within five minutes. With a webhook or e-mail
    configured, the rule notifies that contact point directly (Grafana's simplified
    routing); without, it follows Grafana's default notification policy.
    """

    def __init__(self, name: str, args: FalcoCriticalAlertArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:FalcoCriticalAlert", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))

        self.contact_point: grafana.alerting.ContactPoint | None = None
        if args.webhook_url is not None or args.email_addresses:
            self.contact_point = grafana.alerting.ContactPoint(
                f"{name}-contact",
                name="runtime-defense",
                webhooks=[grafana.alerting.ContactPointWebhookArgs(url=args.webhook_url)]
                if args.webhook_url is not None
                else None,
                emails=[grafana.alerting.ContactPointEmailArgs(addresses=list(args.email_addresses))]
                if args.email_addresses
                else None,
                opts=child,
            )

        encode = JSONEncoder(sort_keys=True).encode
        window = grafana.alerting.RuleGroupRuleDataRelativeTimeRangeArgs(from_=WINDOW_SECONDS, to=0)
        events = (
            prometheus.Dataquery()
            .ref_id("A")
            .expr(query(args.profile))
            .instant()
            .datasource(DataSourceRef(type_val="prometheus", uid=args.prometheus_uid))
        )
        last = expr.TypeReduce().ref_id("B").expression("A").reducer("last").datasource(EXPRESSIONS)
        above = (
            expr.TypeThreshold()
            .ref_id("C")
            .expression("B")
            .conditions(
                [
                    expr.ExprTypeThresholdConditions().evaluator(
                        expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([THRESHOLD])
                    )
                ]
            )
            .datasource(EXPRESSIONS)
        )
        self.rule_group = grafana.alerting.RuleGroup(
            name,
            name="Falco critical events",
            folder_uid=args.folder_uid,
            interval_seconds=60,
            rules=[
                grafana.alerting.RuleGroupRuleArgs(
                    name="Falco event of priority Critical or above",
                    condition="C",
                    for_="0s",
                    # No Falco metrics yet (no event since start) is not an incident.
                    no_data_state="OK",
                    exec_err_state="Error",
                    labels={"severity": "critical", "source": "falco"},
                    annotations={
                        "summary": "Falco reported {{ $values.B }} event(s) of priority Critical or above in 5 minutes",
                        "runbook": f"Grafana dashboard {OVERVIEW_UID}: Top rules, Events by namespace and pod",
                    },
                    datas=[
                        grafana.alerting.RuleGroupRuleDataArgs(
                            ref_id="A",
                            datasource_uid=args.prometheus_uid,
                            relative_time_range=window,
                            model=encode(events.build()),
                        ),
                        grafana.alerting.RuleGroupRuleDataArgs(
                            ref_id="B",
                            datasource_uid="__expr__",
                            relative_time_range=window,
                            model=encode(last.build()),
                        ),
                        grafana.alerting.RuleGroupRuleDataArgs(
                            ref_id="C",
                            datasource_uid="__expr__",
                            relative_time_range=window,
                            model=encode(above.build()),
                        ),
                    ],
                    notification_settings=grafana.alerting.RuleGroupRuleNotificationSettingsArgs(
                        contact_point=self.contact_point.name
                    )
                    if self.contact_point is not None
                    else None,
                )
            ],
            opts=child,
        )
        self.register_outputs({})
