"""IngressFences: every port the stack listens on admits only the pods that use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import event_export, falco, fleet_hub, logging_stack, manifests, metrics_agent, monitoring
from components.logging_config import LokiMode, PodLogs
from components.monitoring_config import MonitoringConfig
from components.namespaces import Namespace
from components.network_policy import Peer, ingress_policy, ingress_rule, labelled, labelled_any_of
from components.profile import Profile

COMPONENT = "app.kubernetes.io/component"
FALCO_EXPORTER_PORT = 9376  # falco-exporter 0.12.2 values.yaml service.port


@dataclass(frozen=True)
class Fence:
    """One NetworkPolicy: the pods it selects admit ``clients`` on ``ports`` (several fences
    may select the same pods; what they admit adds up)."""

    name: str
    pods: Mapping[str, Any]  # a label selector
    ports: Sequence[int]
    clients: Sequence[Peer]

    def policy(self, namespace: pulumi.Input[str]) -> dict[str, Any]:
        who = ", ".join(client.what for client in self.clients)
        ports = ", ".join(str(port) for port in self.ports)
        return ingress_policy(
            self.name, namespace, self.pods, [ingress_rule(self.ports, self.clients)], f"{ports} from {who}"
        )


@dataclass(frozen=True)
class HubFences:
    """A hub's front door: the gateway admits the ingress controller, each spoke's receiver
    only the gateway, and the hub's Prometheus the receivers' remote writes."""

    controller_namespace: str
    receiver_ports: Sequence[int]


@dataclass(frozen=True)
class IngressFencesArgs:
    profile: Profile
    loki_mode: LokiMode
    logging: Namespace
    falco: Namespace  # Falco's, and every node agent's
    monitoring: Namespace | None  # the baseline's, when the stack deploys it
    prometheus: Peer  # who scrapes the metrics ports
    grafana: Peer  # who queries Loki (and, in the baseline, Prometheus)
    grafana_users: Peer | None  # who reaches the baseline's Grafana: anyone (NodePort) or the ingress controller
    hub: HubFences | None = None  # a fleet's hub
    spoke: bool = False  # a fleet's spoke: no Loki, no Grafana, a Prometheus agent
    pod_logs: PodLogs = "api"  # files: Alloy runs in the node agents' namespace

    @property
    def alloy(self) -> Namespace:
        """Where Alloy runs (components/logging_stack.py LoggingStack.collector_namespace)."""
        return self.falco if self.pod_logs == "files" else self.logging


class IngressFences(pulumi.ComponentResource):
    """A NetworkPolicy denying all ingress in each of the stack's namespaces, and one per
    listener admitting exactly its clients: Loki's push port only the log collector (and
    Falcosidekick), its query port only Grafana, its gRPC, gossip and cache ports only Loki,
    every metrics port only Prometheus, Grafana its users and Prometheus, Prometheus Grafana.
    (The mTLS port is fenced by MutualTlsNetworkPolicy.) Loki serves pushes and queries on
    one port (3100): a NetworkPolicy sees ports, not paths, so a monolithic Loki admits both
    clients on it; the scalable one splits them (write, read). The kubelet's probes come from
    the node, which no policy blocks. node-exporter is on the host network, where no policy
    applies: kube-rbac-proxy fences it (components/monitoring.py).
    """

    def __init__(self, name: str, args: IngressFencesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:network:IngressFences", name, None, opts)
        groups = [(args.logging, self.logging_fences(args)), (args.falco, self.node_agent_fences(args))]
        if args.monitoring is not None:
            groups.append((args.monitoring, self.monitoring_fences(args)))
        self.fences: dict[str, list[Fence]] = {}
        namespaces: dict[str, Namespace] = {}
        for namespace, fences in groups:  # namespaces may be shared between roles
            self.fences.setdefault(namespace.name, []).extend(fences)
            namespaces[namespace.name] = namespace
        policies = []
        for ns_name, namespace in namespaces.items():
            deny = ingress_policy("default-deny-ingress", namespace.ref, {}, [], "nothing gets in unless admitted")
            policies += [deny, *(fence.policy(namespace.ref) for fence in self.fences[ns_name])]
        manifests.apply(f"{name}-policies", policies, pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

    @staticmethod
    def alloy_metrics_fences(args: IngressFencesArgs) -> list[Fence]:
        """Alloy's metrics port, in the namespace it runs in (the current profile's collector)."""
        if args.profile != "current":
            return []
        return [
            Fence("alloy-metrics", labelled(logging_stack.ALLOY_PODS), [logging_stack.ALLOY_PORT], [args.prometheus])
        ]

    @staticmethod
    def logging_fences(args: IngressFencesArgs) -> list[Fence]:
        ns = args.logging.name
        alloy_metrics = IngressFences.alloy_metrics_fences(args) if args.pod_logs == "api" else []
        if args.spoke:
            return alloy_metrics  # the collector alone, if it runs here: its logs go to the hub
        loki_port = logging_stack.LOKI_HTTP_PORT
        internal = [logging_stack.LOKI_GRPC_PORT, logging_stack.MEMBERLIST_PORT]
        if args.profile == "tutorial":
            loki_2 = labelled(logging_stack.LOKI_2_PODS)
            promtail = Peer("Promtail", args.falco.name, labelled(logging_stack.PROMTAIL_PODS))
            return [
                Fence("loki-push", loki_2, [loki_port], [promtail]),
                Fence("loki-query", loki_2, [loki_port], [args.grafana]),
                Fence("loki-cluster", loki_2, internal, [Peer("Loki", ns, loki_2)]),
            ]

        def loki(*components: str) -> dict[str, Any]:
            return labelled_any_of(logging_stack.LOKI_PODS, COMPONENT, components)

        push, query = ("write", "read") if args.loki_mode == "scalable" else ("single-binary", "single-binary")
        servers = loki(*logging_stack.LOKI_SERVERS)
        alloy = Peer("Alloy", args.alloy.name, labelled(logging_stack.ALLOY_PODS))
        sidekick = Peer("Falcosidekick", args.falco.name, labelled(event_export.SIDEKICK_SELECTOR))
        caches = loki(*logging_stack.LOKI_CACHES)
        pushers = [alloy, sidekick]
        if args.hub is not None:
            pushers.append(Peer("the fleet's gateway", ns, labelled(fleet_hub.GATEWAY_PODS)))
        fences = [
            Fence("loki-push", loki(push), [loki_port], pushers),
            Fence("loki-query", loki(query), [loki_port], [args.grafana]),
            Fence("loki-cluster", servers, internal, [Peer("Loki", ns, servers)]),
            Fence("loki-caches", caches, [logging_stack.MEMCACHED_PORT], [Peer("Loki", ns, servers)]),
            Fence("loki-cache-metrics", caches, [logging_stack.MEMCACHED_EXPORTER_PORT], [args.prometheus]),
            *alloy_metrics,
        ]
        if args.loki_mode == "scalable":
            # The backend target (compactor, index gateway, query scheduler) has no outside
            # client: its HTTP port admits only the other Loki targets.
            fences.append(Fence("loki-backend-http", loki("backend"), [loki_port], [Peer("Loki", ns, servers)]))
        if args.hub is not None:
            fences += IngressFences.hub_fences(args, args.hub)
        return fences

    @staticmethod
    def hub_fences(args: IngressFencesArgs, hub: HubFences) -> list[Fence]:
        ns = args.logging.name
        gateway = labelled(fleet_hub.GATEWAY_PODS)
        receivers = labelled(fleet_hub.RECEIVER_PODS)
        return [
            Fence(
                "fleet-gateway",
                gateway,
                [fleet_hub.GATEWAY_PORT],
                [Peer("the ingress controller", hub.controller_namespace)],
            ),
            Fence("fleet-receivers", receivers, hub.receiver_ports, [Peer("the fleet's gateway", ns, gateway)]),
            Fence("fleet-receiver-metrics", receivers, [logging_stack.ALLOY_PORT], [args.prometheus]),
        ]

    @staticmethod
    def node_agent_fences(args: IngressFencesArgs) -> list[Fence]:
        if args.profile == "current":
            # Falcosidekick: MutualTlsNetworkPolicy.
            falco_metrics = Fence("falco-metrics", labelled(falco.SELECTOR), [falco.METRICS_PORT], [args.prometheus])
            return [falco_metrics, *(IngressFences.alloy_metrics_fences(args) if args.pod_logs == "files" else [])]
        # Falco's gRPC and web ports: MutualTlsNetworkPolicy.
        return [
            Fence(
                "falco-exporter-metrics",
                labelled(event_export.EXPORTER_SELECTOR),
                [FALCO_EXPORTER_PORT],
                [args.prometheus],
            ),
            Fence(
                "promtail-metrics",
                labelled(logging_stack.PROMTAIL_PODS),
                [logging_stack.PROMTAIL_PORT],
                [args.prometheus],
            ),
        ]

    @staticmethod
    def monitoring_fences(args: IngressFencesArgs) -> list[Fence]:
        scrapers = [
            Fence(
                "prometheus-operator-metrics",
                labelled(monitoring.OPERATOR_PODS),
                [monitoring.OPERATOR_PORT],
                [args.prometheus],
            ),
            Fence(
                "kube-state-metrics",
                labelled(monitoring.KUBE_STATE_METRICS_PODS),
                [monitoring.KUBE_STATE_METRICS_PORT],
                [args.prometheus],
            ),
        ]
        if args.spoke:
            agent = labelled(metrics_agent.AGENT_PODS)
            return [
                Fence("prometheus-agent", agent, [metrics_agent.AGENT_PORT], [args.prometheus]),
                Fence("prometheus-reloader-metrics", agent, [monitoring.RELOADER_PORT], [args.prometheus]),
                *scrapers,
            ]
        assert args.grafana_users is not None  # the baseline's Grafana has users
        prometheus = labelled(monitoring.PROMETHEUS_PODS)
        writers = [args.grafana, args.prometheus]
        if args.hub is not None:
            writers.append(Peer("the fleet's receivers", args.logging.name, labelled(fleet_hub.RECEIVER_PODS)))
        return [
            Fence("grafana", labelled(monitoring.GRAFANA_PODS), [monitoring.GRAFANA_PORT], [args.grafana_users]),
            Fence("grafana-metrics", labelled(monitoring.GRAFANA_PODS), [monitoring.GRAFANA_PORT], [args.prometheus]),
            Fence("prometheus", prometheus, [monitoring.PROMETHEUS_PORT], writers),
            Fence("prometheus-reloader-metrics", prometheus, [monitoring.RELOADER_PORT], [args.prometheus]),
            *scrapers,
        ]


def prometheus_peer(config: MonitoringConfig, baseline: Namespace | None, agent: bool = False) -> Peer:
    """The Prometheus that scrapes the stack: the baseline's pods, or every pod of the
    existing Prometheus's namespace (its labels are not known here)."""
    if baseline is not None and agent:
        return Peer("the Prometheus agent", baseline.name, labelled(metrics_agent.AGENT_PODS))
    if baseline is not None:
        return Peer("Prometheus", baseline.name, labelled(monitoring.PROMETHEUS_PODS))
    assert config.existing is not None
    return Peer(f"namespace {config.existing.prometheus_namespace}", config.existing.prometheus_namespace)


def grafana_peer(config: MonitoringConfig, baseline: Namespace | None) -> Peer:
    """The Grafana that queries Loki: the baseline's pods, or every pod of the existing
    Grafana's namespace (its admin Secret's, else its Prometheus's)."""
    if baseline is not None:
        return Peer("Grafana", baseline.name, labelled(monitoring.GRAFANA_PODS))
    assert config.existing is not None
    return Peer(f"namespace {config.existing.grafana_namespace}", config.existing.grafana_namespace)


def grafana_users(config: MonitoringConfig) -> Peer | None:
    """Who reaches the baseline's Grafana: through its Ingress only the ingress controller's
    pods; on its NodePort anyone who reaches a node."""
    if not config.deploy:
        return None
    ingress = config.grafana_ingress
    if ingress is not None:
        return Peer("the ingress controller", ingress.controller_namespace)
    return Peer("anyone (NodePort)")
