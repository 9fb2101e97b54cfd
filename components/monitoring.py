"""MonitoringBaseline: Prometheus, its operator and Grafana from kube-prometheus-stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random

from components import manifests
from components.charts import KUBE_PROMETHEUS_STACK, helm_chart
from components.monitoring_config import GrafanaIngress
from components.namespaces import RESTRICTED_CONTAINER, Namespace
from components.sizing import CONTAINERS

RELEASE = "kube-prometheus-stack"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
# Labels Grafana's sidecars look for, in every namespace.
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_FOLDER_ANNOTATION = "grafana_dashboard_folder"  # the falcosecurity charts default
# Pod labels the charts give Grafana and the operator gives Prometheus (prometheus-operator
# pkg/prometheus/server/operator.go makeSelectorLabels), for the NetworkPolicies.
GRAFANA_PODS = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": RELEASE}
PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": f"{RELEASE}-prometheus"}
OPERATOR_PODS = {"app": f"{RELEASE}-operator", "release": RELEASE}
KUBE_STATE_METRICS_PODS = {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": RELEASE}
GRAFANA_PORT = 3000
PROMETHEUS_PORT = 9090
RELOADER_PORT = 8080  # the config reloader's metrics, in the Prometheus pod
OPERATOR_PORT = 8080
KUBE_STATE_METRICS_PORT = 8080
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# The restricted profile, and a read-only root: these containers write only to their volumes.
READ_ONLY_RESTRICTED_CONTAINER = {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True}


@dataclass(frozen=True)
class HubPrometheus:
    """A hub's Prometheus: it takes its spokes' remote writes (through the hub's receivers,
    which label them), labels its own series with the hub's name (a default scrape class, so
    every ServiceMonitor's targets get it), and is sized for the fleet (components/fleet_sizing.py)."""

    cluster: str
    memory_request: str
    memory_limit: str
    volume: str
    retention_size: str


@dataclass(frozen=True)
class MonitoringBaselineArgs:
    namespace: Namespace
    grafana_node_port: int
    # Scrape etcd, the scheduler, the controller manager and kube-proxy. minikube binds
    # them to 127.0.0.1, so there they only produce "target down" alerts.
    control_plane_metrics: bool
    # Where node-exporter runs: the namespace of the stack's node agents (Falco's), the one
    # whose Pod Security level admits host networking and host paths.
    node_agents: Namespace
    grafana_ingress: GrafanaIngress | None = None  # else Grafana listens on the NodePort
    install_crds: bool = True
    hub: HubPrometheus | None = None  # a fleet's hub


# Select ServiceMonitors and rules from every release, not only this one.
SELECT_FROM_EVERY_RELEASE = {
    "serviceMonitorSelectorNilUsesHelmValues": False,
    "podMonitorSelectorNilUsesHelmValues": False,
    "ruleSelectorNilUsesHelmValues": False,
    "probeSelectorNilUsesHelmValues": False,
    "scrapeConfigSelectorNilUsesHelmValues": False,
}


def operator_values() -> dict[str, Any]:
    """The Prometheus Operator, as both the baseline and a spoke's metrics agent run it."""
    return {
        # The webhook's certificates, and the Secret the operator would mount to serve
        # TLS, are made only by Helm hook Jobs, which Helm v4 Chart never runs: both off,
        # so the operator serves plain HTTP on 8080 and mounts nothing that never comes.
        "admissionWebhooks": {"enabled": False},
        "tls": {"enabled": False},
        "resources": CONTAINERS["prometheus-operator"].values(),
        "prometheusConfigReloader": {"resources": CONTAINERS["prometheus-config-reloader"].values()},
    }


def keep_crds(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """Leaves the chart's CRDs in place on `pulumi destroy`: deleting a CRD deletes every
    object of its kind in the cluster, other teams' ServiceMonitors and PrometheusRules too.
    (Chart v4 would do the same for a `helm.sh/resource-policy: keep` annotation, which these
    CRDs, files of the chart's crds/ directory, do not carry; a transform on the Chart reaches
    the resources the provider registers for it.)"""
    if args.type_ != CRD:
        return None
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


class MonitoringBaseline(pulumi.ComponentResource):
    """Deploys kube-prometheus-stack sized for a small node, with Grafana on a fixed NodePort,
    or behind an Ingress with TLS.

    Grafana's admin password is generated, kept secret, and reaches the pod only through a
    Kubernetes Secret. Grafana keeps its database on a volume, so what Pulumi creates through
    its API survives a pod restart. The Prometheus Operator's CRDs are installed (unless
    ``install_crds`` is off, when they already exist) and kept on `pulumi destroy`. Every pod
    of the monitoring namespace passes the "restricted" Pod Security level; node-exporter,
    which reads the host, runs in the node agents' namespace, behind kube-rbac-proxy.
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=[admin_secret], transforms=[keep_crds]),
        )

        svc = f"{ns.name}.svc.cluster.local"
        self.prometheus_url = f"http://{RELEASE}-prometheus.{svc}:{PROMETHEUS_PORT}"
        self.grafana_cluster_url = f"http://{RELEASE}-grafana.{svc}"
        self.grafana_node_port = args.grafana_node_port if args.grafana_ingress is None else None
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
        values: dict[str, Any] = {
            # Off when the CRDs already exist (left by an earlier destroy, or another team's).
            "crds": {"enabled": args.install_crds},
            # Grafana alerting does the alerting here; an Alertmanager would only idle.
            "alertmanager": {"enabled": False},
            "kubeEtcd": control_plane,
            "kubeControllerManager": control_plane,
            "kubeScheduler": control_plane,
            "kubeProxy": control_plane,
            "prometheusOperator": operator_values(),
            "prometheus": {
                "prometheusSpec": {
                    **SELECT_FROM_EVERY_RELEASE,
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
            "prometheus-node-exporter": MonitoringBaseline._node_exporter_values(args),
            "grafana": {
                "admin": {
                    "existingSecret": GRAFANA_ADMIN_SECRET,
                    "userKey": "admin-user",
                    "passwordKey": "admin-password",
                },
                **MonitoringBaseline._grafana_exposure(args),
                "persistence": {"enabled": True, "size": "1Gi"},
                "resources": CONTAINERS["grafana"].values(),
                # The init container chowns the volume as root, which "restricted" forbids;
                # the pod's fsGroup (472) already makes the volume Grafana's.
                "initChownData": {"enabled": False},
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
        if args.hub is not None:
            MonitoringBaseline._hub_prometheus(values["prometheus"]["prometheusSpec"], args.hub)
        return values

    @staticmethod
    def _hub_prometheus(spec: dict, hub: HubPrometheus) -> None:
        spec["enableRemoteWriteReceiver"] = True
        # The class every ServiceMonitor without one uses (prometheus-operator 0.93 ScrapeClass).
        spec["scrapeClasses"] = [
            {
                "name": "fleet-cluster",
                "default": True,
                "relabelings": [{"targetLabel": "cluster", "replacement": hub.cluster, "action": "replace"}],
            }
        ]
        spec["resources"] = {
            **spec["resources"],
            "requests": {**spec["resources"]["requests"], "memory": hub.memory_request},
            "limits": {"memory": hub.memory_limit},
        }
        spec["retentionSize"] = hub.retention_size
        spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] = hub.volume

    @staticmethod
    def _grafana_exposure(args: MonitoringBaselineArgs) -> dict:
        ingress = args.grafana_ingress
        if ingress is None:
            # grafana 12.11.1 templates/service.yaml reads service.nodePort.
            return {"service": {"type": "NodePort", "nodePort": args.grafana_node_port}}
        values: dict = {
            "enabled": True,
            "hosts": [ingress.host],
            "path": "/",
            "tls": [{"secretName": ingress.tls_secret, "hosts": [ingress.host]}],
        }
        if ingress.class_name:
            values["ingressClassName"] = ingress.class_name
        return {
            "service": {"type": "ClusterIP"},
            "ingress": values,
            # Links and redirects name the Ingress's https address, not the pod's port.
            "grafana.ini": {"server": {"root_url": f"https://{ingress.host}/"}},
        }

    @staticmethod
    def _node_exporter_values(args: MonitoringBaselineArgs) -> dict:
        """node-exporter reads the node: host network (the node's interfaces), host PID and
        /proc, /sys and / as host paths, so it runs in the node agents' namespace. A
        NetworkPolicy cannot fence a pod on the host network: kube-rbac-proxy serves its
        port instead, over TLS, to callers whose token may get this Service's metrics
        (the chart grants that to Prometheus), and node-exporter listens on 127.0.0.1."""
        return {
            "namespaceOverride": args.node_agents.ref,
            # Read by prometheus-node-exporter 4.56.1 templates/daemonset.yaml.
            "resources": CONTAINERS["node-exporter"].values(),
            "containerSecurityContext": READ_ONLY_RESTRICTED_CONTAINER,
            "kubeRBACProxy": {
                "enabled": True,
                "resources": CONTAINERS["kube-rbac-proxy"].values(),
                "containerSecurityContext": READ_ONLY_RESTRICTED_CONTAINER,
            },
            "prometheus": {
                "monitor": {
                    "scheme": "https",
                    "bearerTokenFile": TOKEN_FILE,
                    # kube-rbac-proxy serves a self-signed certificate; the token is checked.
                    "tlsConfig": {"insecureSkipVerify": True},
                }
            },
        }
