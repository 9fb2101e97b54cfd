"""runtime-defense: configuration -> components -> stack outputs."""

import pulumi

from components import config as stack_config
from components.cluster import kubernetes_provider
from components.event_pipeline import FalcoEventPipeline, FalcoEventPipelineArgs
from components.fences import HubFences, IngressFences, IngressFencesArgs, grafana_peer, grafana_users, prometheus_peer
from components.fleet_hub import FleetHub, FleetHubArgs, fleet_shape
from components.fleet_spoke import FLEET_HUB_ANNOTATION, HubConnection, HubConnectionArgs, HubLink, HubLinkArgs
from components.fleet_view import FleetView
from components.grafana_api import GeneratedAdmin, GrafanaApi, GrafanaApiArgs, existing_grafana_credentials
from components.grafana_wiring import BaselinePrometheus, ExistingPrometheus, GrafanaWiring, GrafanaWiringArgs
from components.logging_stack import WALKTHROUGH_QUERY, LoggingStack, LoggingStackArgs, LokiScale
from components.loki_destination import LokiDestination
from components.metrics_agent import SCRAPE_INTERVAL, MetricsAgent, MetricsAgentArgs
from components.monitoring import HubPrometheus, MonitoringBaseline, MonitoringBaselineArgs
from components.namespaces import StackNamespaces
from components.scraping import Scraping

cfg = stack_config.load()
fleet = cfg.fleet
if cfg.grafana is not None and cfg.grafana.url_found:
    pulumi.log.info(cfg.grafana.url_found)  # where the program looked for Grafana
retained = frozenset({cfg.namespaces.logging} if cfg.logging.retain_volumes else ())
on_cluster = pulumi.ResourceOptions(providers=[kubernetes_provider(cfg.kubernetes)])
shape = fleet_shape(len(fleet.spokes), fleet.nodes_per_cluster, cfg.logging.retention) if fleet.is_hub else None

# A spoke: what its hub gives it (endpoints, CA, its own credentials), once the hub admits it.
link = (
    HubLink("fleet-hub", HubLinkArgs(fleet.hub_stack or "", fleet.name, cfg.namespaces.falco), on_cluster)
    if fleet.is_spoke
    else None
)
namespaces = StackNamespaces(
    "runtime-defense",
    cfg.namespaces,
    with_monitoring=cfg.monitoring.deploy,
    retained=retained,
    # Only what a destroy left on purpose is taken over again, through its own provider.
    adopting=kubernetes_provider(cfg.kubernetes, "kubernetes-retained", adopt_existing=True) if retained else None,
    annotations={FLEET_HUB_ANNOTATION: link.admission} if link else None,
    opts=on_cluster,
)
hub = (
    HubConnection(
        "fleet",
        HubConnectionArgs(
            link,
            # Where something sends: Falcosidekick and the agent; the collector where it runs.
            [
                namespaces.falco,
                *([namespaces.logging] if cfg.logging.pod_logs == "api" else []),
                *([namespaces.monitoring] if namespaces.monitoring else []),
            ],
        ),
        on_cluster,
    )
    if link is not None
    else None
)
monitoring = (
    MonitoringBaseline(
        "monitoring",
        MonitoringBaselineArgs(
            namespace=namespaces.monitoring,
            grafana_node_port=cfg.monitoring.grafana_node_port,
            control_plane_metrics=cfg.monitoring.control_plane_metrics,
            node_agents=namespaces.falco,
            grafana_ingress=cfg.monitoring.grafana_ingress,
            install_crds=cfg.monitoring.install_crds,
            hub=HubPrometheus(
                fleet.name,
                shape.prometheus_memory_request,
                shape.prometheus_memory_limit,
                shape.prometheus_volume,
                shape.prometheus_retention_size,
            )
            if shape is not None
            else None,
        ),
        on_cluster,
    )
    if namespaces.monitoring is not None and hub is None  # made exactly when the baseline is deployed
    else None
)
agent = (
    MetricsAgent(
        "metrics-agent",
        MetricsAgentArgs(
            namespace=namespaces.monitoring,
            cluster=fleet.name,
            remote_write_url=link.metrics_url,
            credentials=hub.credentials,
            install_crds=cfg.monitoring.install_crds,
        ),
        on_cluster,
    )
    if link is not None and hub is not None and namespaces.monitoring is not None
    else None
)
# A hub: the front door its spokes push through, with their credentials.
front_door = (
    FleetHub(
        "fleet",
        FleetHubArgs(
            cluster=fleet.name,
            spokes=fleet.spokes,
            receiver_ports=fleet.receiver_ports,
            ingress=fleet.ingress,
            namespace=namespaces.logging,
            prometheus_write_url=f"{monitoring.prometheus_url}/api/v1/write",
            shape=shape,
            pki=cfg.pki,
        ),
        on_cluster,
    )
    if monitoring is not None and shape is not None and fleet.ingress is not None
    else None
)
logging = LoggingStack(
    "logging",
    LoggingStackArgs(
        profile=cfg.profile,
        namespace=namespaces.logging,
        node_agents=namespaces.falco,
        pod_logs=cfg.logging.pod_logs,
        container_runtimes=cfg.falco.container_runtimes,
        storage_size=cfg.logging.storage_size,
        storage_class=cfg.logging.storage_class,
        retention=cfg.logging.retention,
        mode=cfg.logging.mode,
        replicas=cfg.logging.replicas,
        object_storage=cfg.logging.object_storage,
        retain_volumes=cfg.logging.retain_volumes,
        destination=LokiDestination(link.logs_url, cluster=fleet.name, credentials=hub.credentials)
        if link and hub
        else None,
        tenancy=front_door.tenancy if front_door else None,
        scale=LokiScale(
            shape.loki_write_replicas,
            shape.loki_read_replicas,
            shape.loki_backend_replicas,
            shape.loki_write_volume,
            shape.loki_backend_memory_limit,
        )
        if shape is not None
        else None,
    ),
    on_cluster,
)
existing = cfg.monitoring.existing
prometheus = prometheus_peer(cfg.monitoring, namespaces.monitoring, agent=agent is not None)
events = FalcoEventPipeline(
    "falco",
    FalcoEventPipelineArgs(
        profile=cfg.profile,
        namespace=namespaces.falco,
        falco=cfg.falco,
        pki=cfg.pki,
        sidekick_replicas=cfg.event_export.replicas,
        loki=logging.destination,
        scraping=Scraping(
            service_monitors=cfg.monitoring.has_prometheus_operator,
            prometheus=prometheus,
            labels=existing.service_monitor_labels if existing else {},
            crds=monitoring.chart if monitoring else agent.chart if agent else None,
            interval=SCRAPE_INTERVAL if agent else None,
        ),
        # The charts' own dashboards know no cluster: a hub shows the fleet in its own.
        dashboards=monitoring is not None and not fleet.is_hub,
        alert_webhook_url=cfg.alerting.webhook_url,
    ),
    on_cluster,
)
IngressFences(
    "fences",
    IngressFencesArgs(
        profile=cfg.profile,
        loki_mode=cfg.logging.mode,
        logging=namespaces.logging,
        falco=namespaces.falco,
        monitoring=namespaces.monitoring,
        prometheus=prometheus,
        grafana=grafana_peer(cfg.monitoring, namespaces.monitoring),
        grafana_users=grafana_users(cfg.monitoring) if agent is None else None,
        hub=HubFences(fleet.ingress.controller_namespace, list(fleet.receiver_ports.values()))
        if front_door and fleet.ingress
        else None,
        spoke=agent is not None,
        pod_logs=cfg.logging.pod_logs,
    ),
    on_cluster,
)

pulumi.export("profile", cfg.profile)
pulumi.export("namespaces", list(namespaces.names))
pulumi.export("podSecurity", dict(namespaces.levels))
pulumi.export("falcoDriver", cfg.falco.driver)
pulumi.export("eventEndpoint", events.endpoint)
pulumi.export("mtlsCaCertPem", events.ca_cert_pem)
pulumi.export("mtlsClientSecret", events.client_secret)
if link is not None:
    pulumi.export(
        "fleet",
        {
            "role": fleet.role,
            "clusterName": fleet.name,
            "hubStack": fleet.hub_stack,
            "hubCluster": link.admission,
            "endpoints": {"logs": link.logs_url, "metrics": link.metrics_url},
        },
    )
if cfg.grafana is not None:
    grafana_api = GrafanaApi(
        "grafana-api",
        GrafanaApiArgs(
            url=cfg.grafana.url,
            credentials=GeneratedAdmin(monitoring.grafana_admin_user, monitoring.grafana_admin_password)
            if monitoring
            else existing_grafana_credentials(cfg.grafana),
        ),
        on_cluster,
    )
    grafana = GrafanaWiring(
        "grafana",
        GrafanaWiringArgs(
            profile=cfg.profile,
            grafana_url=cfg.grafana.url,
            loki_url=logging.query_url,
            prometheus=BaselinePrometheus(monitoring.prometheus_url)
            if monitoring
            else ExistingPrometheus(cfg.monitoring.installation().prometheus_url),
            webhook_url=cfg.alerting.webhook_url,
            email_addresses=cfg.alerting.email_addresses,
            falco_namespace=cfg.namespaces.falco,
            certificate_expiry=events.certificate_expiry,
            certificate_warning_hours=cfg.alerting.certificate_warning_hours,
            upstream_dashboards=events.upstream_dashboards,
            after=[monitoring.chart] if monitoring else [],
            deleted_with=monitoring.chart if monitoring else None,
            fleet=FleetView(fleet.name, fleet.spokes) if fleet.is_hub else None,
        ),
        pulumi.ResourceOptions(providers=[grafana_api.provider]),
    )
    pulumi.export("lokiQueryUrl", logging.query_url)
    pulumi.export("lokiPushUrl", logging.push_url)
    pulumi.export("walkthroughLogQuery", WALKTHROUGH_QUERY)
    pulumi.export("grafanaUrl", cfg.grafana.url)
    pulumi.export("grafanaUrlSource", cfg.grafana.url_source)
    pulumi.export("dashboardUrls", grafana.dashboard_urls)
    pulumi.export("dataSourceUids", grafana.data_source_uids)
if monitoring is not None:
    if monitoring.grafana_node_port is not None:
        pulumi.export("grafanaNodePort", monitoring.grafana_node_port)
    pulumi.export("grafanaAdminUser", monitoring.grafana_admin_user)
    pulumi.export("grafanaAdminPassword", monitoring.grafana_admin_password)
    pulumi.export("prometheusUrl", monitoring.prometheus_url)
if front_door is not None:
    pulumi.export(
        "fleet",
        {
            "role": fleet.role,
            "clusterName": fleet.name,
            "spokes": list(fleet.spokes),
            "endpoints": front_door.endpoints,
            "caCertPem": front_door.ca_cert_pem,
            "falcoNamespace": cfg.namespaces.falco,
        },
    )
    pulumi.export("fleetSpokeCredentials", front_door.credentials)
