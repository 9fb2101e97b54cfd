"""The Grafana wiring of a fleet's hub, registered under Pulumi's mocks on its own.

Until the fleet is in the program's config, a hub's Grafana objects are registered by
``GrafanaWiring`` itself with a ``FleetView``, exactly as ``__main__.py`` registers the
standalone stack's; the same recording monitor records them (``ProgramRun``), so the tests
read a hub's rule groups, dashboard and data sources as they read the program's.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from harness import PROJECT, Export, ProgramMocks, ProgramRun, RecordingMonitor, Secret
from pulumi.runtime import settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.fleet_view import FleetView
from components.grafana_wiring import BaselinePrometheus, GrafanaWiring, GrafanaWiringArgs
from components.profile import Profile

FLEET = FleetView("hub", ("spoke-a", "spoke-b"))
FALCO_NAMESPACE = "falco"
GRAFANA_URL = "http://grafana.hub.example:3000"
LOKI_URL = "http://loki.logging.svc.cluster.local:3100"
PROMETHEUS_URL = "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
WEBHOOK = Secret("https://hooks.example.com/falco")
# The titles and uids the charts' sidecar dashboards have in the standalone stack.
UPSTREAM_DASHBOARDS = {"Falco": "falco-dashboard", "Falco logs": "falcosidekick-loki"}
# pulumi-tls's ends of validity as a hub's stack knows them (RFC 3339).
CERTIFICATE_EXPIRY = {"CA": "2031-01-01T00:00:00Z", "server": "2027-01-01T00:00:00Z", "client": "2027-01-01T00:00:00Z"}


def run_hub_wiring(
    profile: Profile = "current",
    fleet: FleetView | None = FLEET,
    *,
    webhook: bool = False,
    certificate_expiry: Mapping[str, str] = CERTIFICATE_EXPIRY,
    certificate_warning_hours: int = 360,
    upstream_dashboards: Mapping[str, str] = UPSTREAM_DASHBOARDS,
) -> ProgramRun:
    """``GrafanaWiring`` for ``fleet``'s hub (or, with None, a standalone stack's), with its
    outputs exported as the program exports them (``dashboardUrls``, ``dataSourceUids``)."""
    settings.ROOT.set(None)
    set_all_config({}, [])
    monitor = RecordingMonitor(ProgramMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack="hub", preview=False, monitor=monitor)

    def build() -> None:
        wiring = GrafanaWiring(
            "grafana",
            GrafanaWiringArgs(
                profile=profile,
                grafana_url=GRAFANA_URL,
                loki_url=LOKI_URL,
                prometheus=BaselinePrometheus(PROMETHEUS_URL),
                webhook_url=pulumi.Output.secret(str(WEBHOOK)) if webhook else None,
                email_addresses=(),
                falco_namespace=FALCO_NAMESPACE,
                certificate_expiry=dict(certificate_expiry),
                certificate_warning_hours=certificate_warning_hours,
                upstream_dashboards=dict(upstream_dashboards),
                fleet=fleet,
            ),
        )
        pulumi.export("dashboardUrls", wiring.dashboard_urls)
        pulumi.export("dataSourceUids", wiring.data_source_uids)

    _sync_await(run_pulumi_func(build))
    root = settings.get_root_resource()
    assert root is not None
    exports = {}
    for key, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        exports[key] = Export(value=_sync_await(output.future()), secret=bool(_sync_await(output.is_secret())))
    return ProgramRun(resources=monitor.registrations, exports=exports)
