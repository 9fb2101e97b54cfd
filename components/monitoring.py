"""MonitoringBaseline: Prometheus, its operator and Grafana from kube-prometheus-stack."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components import manifests
from components.charts import KUBE_PROMETHEUS_STACK, helm_chart
from components.namespaces import Namespace
from components.sizing import CONTAINERS, INIT_CONTAINERS

RELEASE = "kube-prometheus-stack"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
# Labels Grafana's sidecars look for, in every namespace.
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_FOLDER_ANNOTATION = "grafana_dashboard_folder"  # the falcosecurity charts default


@dataclass(frozen=True)
class MonitoringBaselineArgs:
    namespace: Namespace
    grafana_node_port: int
    # Scrape etcd, the scheduler, the controller manager and kube-proxy. minikube binds
    # them to 127.0.0.1, so there they only produce "target down" alerts.
    control_plane_metrics: bool


class MonitoringBaseline(pulumi.ComponentResource):
    """Deploys kube-prometheus-stack sized for a small node, with Grafana on a fixed NodePort.

    Grafana's admin password is generated, kept secret, and reaches the pod only through a
    Kubernetes Secret. Grafana keeps its database on a volume, so what Pulumi creates through
    its API survives a pod restart.
    """

    def __init__(self, name: str, args: MonitoringBaselineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:monitoring:MonitoringBaseline", name, None, opts)
        ns = args.namespace

        password = random.RandomPassword(
            f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        self.grafana_admin_user = GRAFANA_ADMIN_USER
        self.grafana_admin_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        admin_secret = manifests.apply(
            f"{name}-grafana-admin",
            [
                manifests.secret(
                    GRAFANA_ADMIN_SECRET,
                    ns.ref,
                    {"admin-user": GRAFANA_ADMIN_USER, "admin-password": self.grafana_admin_password},
                )
            ],
            pulumi.ResourceOptions(parent=self),
        )

        self.chart = helm_chart(
            name,
            KUBE_PROMETHEUS_STACK,
            release=RELEASE,
            namespace=ns.ref,
            values=self._values(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[admin_secret]),
        )

        svc = f"{ns.name}.svc.cluster.local"
        self.prometheus_url = f"http://{RELEASE}-prometheus.{svc}:9090"
        self.grafana_cluster_url = f"http://{RELEASE}-grafana.{svc}"
        self.grafana_node_port = args.grafana_node_port
        self.register_outputs(
            {
                "prometheusUrl": self.prometheus_url,
                "grafanaClusterUrl": self.grafana_cluster_url,
                "grafanaAdminPassword": self.grafana_admin_password,
            }
        )

    @staticmethod
    def _values(args: MonitoringBaselineArgs) -> dict:
        control_plane = {"enabled": args.control_plane_metrics}
        return {
            # Grafana alerting does the alerting here; an Alertmanager would only idle.
            "alertmanager": {"enabled": False},
            "kubeEtcd": control_plane,
            "kubeControllerManager": control_plane,
            "kubeScheduler": control_plane,
            "kubeProxy": control_plane,
            "prometheusOperator": {
                # The webhook's certificates, and the Secret the operator would mount to serve
                # TLS, are made only by Helm hook Jobs, which Helm v4 Chart never runs: both off,
                # so the operator serves plain HTTP on 8080 and mounts nothing that never comes.
                "admissionWebhooks": {"enabled": False},
                "tls": {"enabled": False},
                "resources": CONTAINERS["prometheus-operator"].values(),
                "prometheusConfigReloader": {"resources": CONTAINERS["prometheus-config-reloader"].values()},
            },
            "prometheus": {
                "prometheusSpec": {
                    # Select ServiceMonitors and rules from every release, not only this one.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "probeSelectorNilUsesHelmValues": False,
                    "scrapeConfigSelectorNilUsesHelmValues": False,
                    "retention": "7d",
                    "retentionSize": "4GB",
                    "resources": CONTAINERS["prometheus"].values(),
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "5Gi"}},
                            }
                        }
                    },
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                }
            },
            # Subchart key read by kube-state-metrics 8.4.0 templates/deployment.yaml.
            "kube-state-metrics": {"resources": CONTAINERS["kube-state-metrics"].values()},
            # Subchart key read by prometheus-node-exporter 4.56.1 templates/daemonset.yaml.
            "prometheus-node-exporter": {"resources": CONTAINERS["node-exporter"].values()},
            "grafana": {
                "admin": {
                    "existingSecret": GRAFANA_ADMIN_SECRET,
                    "userKey": "admin-user",
                    "passwordKey": "admin-password",
                },
                # grafana 12.11.1 templates/service.yaml reads service.nodePort.
                "service": {"type": "NodePort", "nodePort": args.grafana_node_port},
                "persistence": {"enabled": True, "size": "1Gi"},
                "resources": CONTAINERS["grafana"].values(),
                "initChownData": {"resources": INIT_CONTAINERS["grafana-init-chown-data"].values()},
                "testFramework": {"enabled": False},
                "sidecar": {
                    "resources": CONTAINERS["grafana-sidecar"].values(),
                    "dashboards": {
                        "label": DASHBOARD_LABEL,
                        "searchNamespace": "ALL",
                        "folderAnnotation": DASHBOARD_FOLDER_ANNOTATION,
                        "provider": {"foldersFromFilesStructure": True},
                    },
                    # Off: Pulumi creates the data sources through Grafana's API instead
                    # (components/grafana_wiring.py), so the alert rules naming them can wait
                    # for them; a sidecar would add them at some point after Grafana starts.
                    "datasources": {"enabled": False},
                },
            },
        }
