"""runtime-defense: configuration -> components -> stack outputs."""

import pulumi

from components import config as stack_config
from components.cluster import kubernetes_provider
from components.logging_stack import WALKTHROUGH_QUERY, LoggingStack, LoggingStackArgs
from components.monitoring import MonitoringBaseline, MonitoringBaselineArgs
from components.namespaces import StackNamespaces

cfg = stack_config.load()
on_cluster = pulumi.ResourceOptions(providers=[kubernetes_provider(cfg.kubernetes)])

namespaces = StackNamespaces("runtime-defense", cfg.namespaces, on_cluster)
monitoring = (
    MonitoringBaseline(
        "monitoring",
        MonitoringBaselineArgs(
            namespace=namespaces.monitoring,
            grafana_node_port=cfg.monitoring.grafana_node_port,
            control_plane_metrics=cfg.monitoring.control_plane_metrics,
        ),
        on_cluster,
    )
    if cfg.monitoring.deploy
    else None
)
logging = LoggingStack(
    "logging",
    LoggingStackArgs(
        profile=cfg.profile,
        namespace=namespaces.logging,
        storage_size=cfg.logging.storage_size,
        storage_class=cfg.logging.storage_class,
        retention=cfg.logging.retention,
    ),
    on_cluster,
)

pulumi.export("profile", cfg.profile)
pulumi.export("namespaces", {"monitoring": namespaces.monitoring.name, "logging": namespaces.logging.name})
pulumi.export("lokiQueryUrl", logging.query_url)
pulumi.export("lokiPushUrl", logging.push_url)
pulumi.export("walkthroughLogQuery", WALKTHROUGH_QUERY)
if monitoring is not None:
    pulumi.export("grafanaNodePort", monitoring.grafana_node_port)
    pulumi.export("grafanaAdminUser", monitoring.grafana_admin_user)
    pulumi.export("grafanaAdminPassword", monitoring.grafana_admin_password)
    pulumi.export("prometheusUrl", monitoring.prometheus_url)
