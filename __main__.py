"""runtime-defense: configuration -> components -> stack outputs."""

import pulumi

from components import config as stack_config
from components.cluster import kubernetes_provider
from components.event_pipeline import FalcoEventPipeline, FalcoEventPipelineArgs
from components.fences import IngressFences, IngressFencesArgs, grafana_peer, grafana_users, prometheus_peer
from components.grafana_api import GeneratedAdmin, GrafanaApi, GrafanaApiArgs, existing_grafana_credentials
from components.grafana_wiring import BaselinePrometheus, ExistingPrometheus, GrafanaWiring, GrafanaWiringArgs
from components.logging_stack import WALKTHROUGH_QUERY, LoggingStack, LoggingStackArgs
from components.monitoring import MonitoringBaseline, MonitoringBaselineArgs
from components.namespaces import StackNamespaces
from components.scraping import Scraping

cfg = stack_config.load()
if cfg.grafana.url_found:
    pulumi.log.info(cfg.grafana.url_found)  # where the program looked for Grafana
retained = frozenset({cfg.namespaces.logging} if cfg.logging.retain_volumes else ())
on_cluster = pulumi.ResourceOptions(providers=[kubernetes_provider(cfg.kubernetes)])

namespaces = StackNamespaces(
    "runtime-defense",
    cfg.namespaces,
    with_monitoring=cfg.monitoring.deploy,
    retained=retained,
    # Only what a destroy left on purpose is taken over again, through its own provider.
    adopting=kubernetes_provider(cfg.kubernetes, "kubernetes-retained", adopt_existing=True) if retained else None,
    opts=on_cluster,
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
        ),
        on_cluster,
    )
    if namespaces.monitoring is not None  # made exactly when the baseline is deployed
    else None
)
logging = LoggingStack(
    "logging",
    LoggingStackArgs(
        profile=cfg.profile,
        namespace=namespaces.logging,
        node_agents=namespaces.falco,
        storage_size=cfg.logging.storage_size,
        storage_class=cfg.logging.storage_class,
        retention=cfg.logging.retention,
        mode=cfg.logging.mode,
        replicas=cfg.logging.replicas,
        object_storage=cfg.logging.object_storage,
        retain_volumes=cfg.logging.retain_volumes,
    ),
    on_cluster,
)
existing = cfg.monitoring.existing
events = FalcoEventPipeline(
    "falco",
    FalcoEventPipelineArgs(
        profile=cfg.profile,
        namespace=namespaces.falco,
        falco=cfg.falco,
        pki=cfg.pki,
        sidekick_replicas=cfg.event_export.replicas,
        loki_push_url=logging.push_url,
        scraping=Scraping(
            service_monitors=cfg.monitoring.has_prometheus_operator,
            prometheus=prometheus_peer(cfg.monitoring, namespaces.monitoring),
            labels=existing.service_monitor_labels if existing else {},
            crds=monitoring.chart if monitoring else None,
        ),
        dashboards=monitoring is not None,
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
        prometheus=prometheus_peer(cfg.monitoring, namespaces.monitoring),
        grafana=grafana_peer(cfg.monitoring, namespaces.monitoring),
        grafana_users=grafana_users(cfg.monitoring),
    ),
    on_cluster,
)

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
    ),
    pulumi.ResourceOptions(providers=[grafana_api.provider]),
)

pulumi.export("profile", cfg.profile)
pulumi.export("namespaces", list(namespaces.names))
pulumi.export("podSecurity", dict(namespaces.levels))
pulumi.export("lokiQueryUrl", logging.query_url)
pulumi.export("lokiPushUrl", logging.push_url)
pulumi.export("walkthroughLogQuery", WALKTHROUGH_QUERY)
pulumi.export("falcoDriver", cfg.falco.driver)
pulumi.export("eventEndpoint", events.endpoint)
pulumi.export("mtlsCaCertPem", events.ca_cert_pem)
pulumi.export("mtlsClientSecret", events.client_secret)
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
