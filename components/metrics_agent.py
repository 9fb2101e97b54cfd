"""MetricsAgent: a spoke's Prometheus in agent mode, shipping what its hub reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.charts import KUBE_PROMETHEUS_STACK, helm_chart
from components.falco_metrics import FLEET_METRICS
from components.loki_destination import CA_KEY, PASSWORD_KEY, USERNAME_KEY, HubCredentials
from components.monitoring import RELEASE, SELECT_FROM_EVERY_RELEASE, keep_crds, operator_values
from components.namespaces import Namespace
from components.sizing import CONTAINERS

# The pods the operator runs for a PrometheusAgent (prometheus-operator 0.93
# pkg/prometheus/agent/operator.go makeSelectorLabels), for the NetworkPolicies.
AGENT_PODS = {"app.kubernetes.io/name": "prometheus-agent", "operator.prometheus.io/name": f"{RELEASE}-prometheus"}
AGENT_PORT = 9090
SCRAPE_INTERVAL = "30s"


@dataclass(frozen=True)
class MetricsAgentArgs:
    namespace: Namespace
    cluster: str  # the spoke's name: the `cluster` label on every series it sends
    remote_write_url: pulumi.Input[str]  # the hub's, read from the hub's stack
    credentials: HubCredentials
    install_crds: bool = True


class MetricsAgent(pulumi.ComponentResource):
    """Deploys kube-prometheus-stack with Prometheus in agent mode on a spoke: the Prometheus
    Operator (so the Falco and Falcosidekick ServiceMonitors work as on a standalone stack),
    kube-state-metrics (the hub's node-coverage alerts join on it), and a Prometheus that
    scrapes, keeps a write-ahead log and forwards to the hub, no more: no Grafana, no
    Alertmanager, no rules, no node-exporter and none of the control plane's metrics. Only the
    series the hub's dashboards and alerts read leave the cluster (``FLEET_METRICS``), over TLS
    to the hub's CA, with the spoke's own credentials from its Secret.
    """

    def __init__(self, name: str, args: MetricsAgentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:fleet:MetricsAgent", name, None, opts)
        self.chart = helm_chart(
            name,
            KUBE_PROMETHEUS_STACK,
            release=RELEASE,
            namespace=args.namespace.ref,
            values=self._values(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.credentials.ready], transforms=[keep_crds]),
        )
        self.register_outputs({})

    @staticmethod
    def _values(args: MetricsAgentArgs) -> dict[str, Any]:
        secret = args.credentials.secret
        off = {"enabled": False}
        return {
            "crds": {"enabled": args.install_crds},
            "alertmanager": off,
            "grafana": off,
            "defaultRules": {"create": False},  # an agent evaluates no rules: the hub alerts
            "nodeExporter": off,
            "kubeApiServer": off,
            "kubelet": off,
            "coreDns": off,
            "kubeEtcd": off,
            "kubeControllerManager": off,
            "kubeScheduler": off,
            "kubeProxy": off,
            "prometheusOperator": operator_values(),
            "kube-state-metrics": {"resources": CONTAINERS["kube-state-metrics"].values()},
            "prometheus": {
                # templates/prometheus/prometheus.yaml renders a PrometheusAgent instead of a Prometheus.
                "agentMode": True,
                "prometheusSpec": {
                    **SELECT_FROM_EVERY_RELEASE,
                    "scrapeInterval": SCRAPE_INTERVAL,
                    "resources": CONTAINERS["prometheus-agent"].values(),
                    "externalLabels": {"cluster": args.cluster},
                    "remoteWrite": [
                        {
                            "url": args.remote_write_url,
                            "basicAuth": {
                                "username": {"name": secret, "key": USERNAME_KEY},
                                "password": {"name": secret, "key": PASSWORD_KEY},
                            },
                            "tlsConfig": {"ca": {"secret": {"name": secret, "key": CA_KEY}}},
                            # What the hub reads, nothing else: its load, and what leaves the cluster.
                            "writeRelabelConfigs": [
                                {"sourceLabels": ["__name__"], "regex": FLEET_METRICS, "action": "keep"}
                            ],
                        }
                    ],
                    # The write-ahead log on a volume: what the hub could not take yet survives a restart.
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "2Gi"}},
                            }
                        }
                    },
                },
            },
        }
