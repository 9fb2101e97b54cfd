"""GrafanaWiring: data sources, a folder, the overview dashboard and the Falco alert."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumiverse_grafana as grafana

from components import dashboards
from components.alerts import FalcoCriticalAlert, FalcoCriticalAlertArgs
from components.config import Profile

FOLDER_UID = "runtime-defense"
LOKI_UID = "runtime-defense-loki"
PROMETHEUS_UID = "runtime-defense-prometheus"


@dataclass(frozen=True)
class ProvisionedPrometheus:
    """The baseline's Prometheus data source, which Grafana's sidecar provisions as the default."""

    uid: str


@dataclass(frozen=True)
class ExistingPrometheus:
    """A Prometheus of your own, added as a data source (not as the default: yours stays)."""

    url: str


@dataclass(frozen=True)
class GrafanaWiringArgs:
    profile: Profile
    grafana_url: str
    loki_url: str
    prometheus: ProvisionedPrometheus | ExistingPrometheus
    webhook_url: pulumi.Output[str] | None
    email_addresses: tuple[str, ...]
    # Dashboards the charts provision through the sidecar: title -> uid (for the URLs).
    upstream_dashboards: Mapping[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()  # Grafana's API is up once these are ready


class GrafanaWiring(pulumi.ComponentResource):
    """Wires Grafana through the pulumiverse-grafana provider given in ``opts``: a Loki data
    source at the logging stack, a Prometheus one unless the baseline provisions it (exactly
    one default: the baseline's, or whatever yours already is), a "Runtime defense" folder
    with the overview dashboard, and the Falco alert rule group.
    """

    def __init__(self, name: str, args: GrafanaWiringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:grafana:GrafanaWiring", name, None, opts)
        after = list(args.after)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)

        folder = grafana.oss.Folder(f"{name}-folder", title="Runtime defense", uid=FOLDER_UID, opts=child)
        data_sources = [
            grafana.oss.DataSource(
                f"{name}-loki",
                type="loki",
                name="Loki (runtime-defense)",
                uid=LOKI_UID,
                url=args.loki_url,
                access_mode="proxy",
                is_default=False,
                json_data_encoded=json.dumps({"maxLines": 1000}),
                opts=child,
            )
        ]
        if isinstance(args.prometheus, ProvisionedPrometheus):
            prometheus_uid = args.prometheus.uid
        else:
            prometheus_uid = PROMETHEUS_UID
            data_sources.append(
                grafana.oss.DataSource(
                    f"{name}-prometheus",
                    type="prometheus",
                    name="Prometheus (runtime-defense)",
                    uid=PROMETHEUS_UID,
                    url=args.prometheus.url,
                    access_mode="proxy",
                    is_default=False,
                    json_data_encoded=json.dumps({"httpMethod": "POST"}),
                    opts=child,
                )
            )
        with_data = pulumi.ResourceOptions(parent=self, depends_on=[*after, *data_sources])
        grafana.oss.Dashboard(
            f"{name}-overview",
            folder=folder.uid,
            config_json=dashboards.overview(args.profile, prometheus_uid, LOKI_UID),
            overwrite=True,
            opts=with_data,
        )
        FalcoCriticalAlert(
            f"{name}-falco-critical",
            FalcoCriticalAlertArgs(
                profile=args.profile,
                folder_uid=folder.uid,
                prometheus_uid=prometheus_uid,
                webhook_url=args.webhook_url,
                email_addresses=args.email_addresses,
                after=[*after, *data_sources],
            ),
            pulumi.ResourceOptions(parent=self),
        )

        self.data_source_uids = {"prometheus": prometheus_uid, "loki": LOKI_UID}
        self.dashboard_urls = {
            "Runtime defense overview": f"{args.grafana_url}/d/{dashboards.OVERVIEW_UID}",
            **{title: f"{args.grafana_url}/d/{uid}" for title, uid in args.upstream_dashboards.items()},
        }
        self.register_outputs({"dataSourceUids": self.data_source_uids, "dashboardUrls": self.dashboard_urls})
