"""GrafanaWiring: data sources, a folder, the overview dashboard and the Falco alerts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pulumi
import pulumiverse_grafana as grafana

from components import dashboards
from components.alerts import FalcoCriticalAlert, FalcoCriticalAlertArgs, FalcoSensorAlerts, FalcoSensorAlertsArgs
from components.fleet_view import FleetView
from components.profile import Profile

FOLDER_UID = "runtime-defense"


@dataclass(frozen=True)
class DataSourceUids:
    prometheus: str
    loki: str


@dataclass(frozen=True)
class BaselinePrometheus:
    """The baseline's Prometheus, in the baseline's Grafana. This stack made that Grafana, so
    its data sources take the uids the charts' dashboards hard-code ("prometheus" in Falco's,
    "loki" in Falcosidekick's), and Prometheus is the default."""

    url: str
    uids: ClassVar[DataSourceUids] = DataSourceUids(prometheus="prometheus", loki="loki")
    default: ClassVar[bool] = True
    title: ClassVar[str] = "Prometheus"


@dataclass(frozen=True)
class ExistingPrometheus:
    """A Prometheus of your own, in your Grafana: data sources under uids of their own, so
    nothing of yours is taken over, and not the default (yours stays)."""

    url: str
    uids: ClassVar[DataSourceUids] = DataSourceUids(
        prometheus="runtime-defense-prometheus", loki="runtime-defense-loki"
    )
    default: ClassVar[bool] = False
    title: ClassVar[str] = "Prometheus (runtime-defense)"


@dataclass(frozen=True)
class GrafanaWiringArgs:
    profile: Profile
    grafana_url: pulumi.Input[str]  # secret when configured as one: the dashboards' URLs are then secret too
    loki_url: str
    prometheus: BaselinePrometheus | ExistingPrometheus
    webhook_url: pulumi.Output[str] | None
    email_addresses: tuple[str, ...]
    falco_namespace: str
    # mTLS certificate -> end of its validity (RFC 3339), for the expiry alert.
    certificate_expiry: Mapping[str, pulumi.Input[str]]
    certificate_warning_hours: int
    # Dashboards the charts provision through the sidecar: title -> uid (for the URLs). Not
    # linked on a fleet's hub: they select no cluster, so they add up every cluster's series.
    upstream_dashboards: Mapping[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()  # Grafana's API is up once these are ready
    # What this Grafana and its database go with (the baseline's chart), if this stack owns it.
    deleted_with: pulumi.Resource | None = None
    # On a fleet's hub: the clusters whose metrics and logs this Grafana shows.
    fleet: FleetView | None = None

    @property
    def linked_dashboards(self) -> Mapping[str, str]:
        """The charts' dashboards the stack links: none on a fleet's hub."""
        return self.upstream_dashboards if self.fleet is None else {}


class GrafanaWiring(pulumi.ComponentResource):
    """Wires Grafana through the pulumiverse-grafana provider given in ``opts``: Prometheus
    and Loki data sources (exactly one default: the baseline's Prometheus, or whatever yours
    already is), a "Runtime defense" folder with the overview dashboard, and the Falco alert
    rule group, which waits for the data sources it queries.

    On a fleet's hub (``fleet``), the Loki data source queries every cluster's tenant, and the
    dashboard and the alerts cover every cluster, each told apart by its ``cluster`` label.
    """

    def __init__(self, name: str, args: GrafanaWiringArgs, opts: pulumi.ResourceOptions | None = None):
        if args.deleted_with is not None:
            # `pulumi destroy` deletes the baseline's Grafana, database included: deleting each
            # object inside it first, through an API that may already be gone, is pointless.
            within = pulumi.ResourceOptions(transforms=[deleted_with(args.deleted_with)])
            opts = pulumi.ResourceOptions.merge(opts, within)
        super().__init__("runtime-defense:grafana:GrafanaWiring", name, None, opts)
        after = list(args.after)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)

        folder = grafana.oss.Folder(f"{name}-folder", title="Runtime defense", uid=FOLDER_UID, opts=child)
        prometheus = args.prometheus
        uids = prometheus.uids
        # Both data sources are created here, through the API, so whatever names them (the
        # dashboards, the alert rules, which Grafana refuses while their data source is
        # missing) can wait for them.
        data_sources = [
            grafana.oss.DataSource(
                f"{name}-prometheus",
                type="prometheus",
                name=prometheus.title,
                uid=uids.prometheus,
                url=prometheus.url,
                access_mode="proxy",
                is_default=prometheus.default,
                json_data_encoded=json.dumps({"httpMethod": "POST", "timeInterval": "30s"}),
                opts=child,
            ),
            grafana.oss.DataSource(
                f"{name}-loki",
                type="loki",
                name="Loki (runtime-defense)",
                uid=uids.loki,
                url=args.loki_url,
                access_mode="proxy",
                is_default=False,
                json_data_encoded=json.dumps({"maxLines": 1000}),
                # Multi-tenant queries: every cluster's logs, each stream labelled __tenant_id__.
                http_headers={"X-Scope-OrgID": args.fleet.loki_tenants} if args.fleet is not None else None,
                opts=child,
            ),
        ]
        with_data = pulumi.ResourceOptions(parent=self, depends_on=[*after, *data_sources])
        grafana.oss.Dashboard(
            f"{name}-overview",
            folder=folder.uid,
            config_json=dashboards.overview(args.profile, uids.prometheus, uids.loki, args.fleet),
            overwrite=True,
            opts=with_data,
        )
        critical = FalcoCriticalAlert(
            f"{name}-falco-critical",
            FalcoCriticalAlertArgs(
                profile=args.profile,
                falco_namespace=args.falco_namespace,
                folder_uid=folder.uid,
                prometheus_uid=uids.prometheus,
                webhook_url=args.webhook_url,
                email_addresses=args.email_addresses,
                after=[*after, *data_sources],
                fleet=args.fleet,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        FalcoSensorAlerts(
            f"{name}-falco-health",
            FalcoSensorAlertsArgs(
                profile=args.profile,
                folder_uid=folder.uid,
                prometheus_uid=uids.prometheus,
                falco_namespace=args.falco_namespace,
                webhook_from_sidekick=args.profile == "current" and args.webhook_url is not None,
                certificate_expiry=args.certificate_expiry,
                certificate_warning_hours=args.certificate_warning_hours,
                contact_point=critical.contact_point_name,
                after=[*after, *data_sources, *([critical.contact_point] if critical.contact_point else [])],
                fleet=args.fleet,
            ),
            pulumi.ResourceOptions(parent=self),
        )

        self.data_source_uids = {"prometheus": uids.prometheus, "loki": uids.loki}
        self.dashboard_urls = {
            "Runtime defense overview": pulumi.Output.concat(args.grafana_url, "/d/", dashboards.OVERVIEW_UID),
            **{
                title: pulumi.Output.concat(args.grafana_url, "/d/", uid)
                for title, uid in args.linked_dashboards.items()
            },
        }
        self.register_outputs({"dataSourceUids": self.data_source_uids, "dashboardUrls": self.dashboard_urls})


def deleted_with(store: pulumi.Resource) -> pulumi.ResourceTransform:
    """A transform giving every Grafana object below a component ``deleted_with=store``: when
    ``store`` is deleted in the same operation, the engine skips their API calls; removed on
    their own, they are still deleted through the API."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not args.type_.startswith("grafana:"):
            return None
        return pulumi.ResourceTransformResult(
            props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(deleted_with=store))
        )

    return transform
