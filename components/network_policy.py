"""NetworkPolicies: who may open a connection to which pods and ports. ``Peer`` names a
client, ``ingress_policy`` writes a policy admitting clients to ports, and
``MutualTlsNetworkPolicy`` fences the mTLS link (components/fences.py fences the rest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import manifests
from components.namespaces import Namespace

# The label the API server puts on every namespace (Kubernetes 1.21+), naming it.
NAMESPACE_NAME = "kubernetes.io/metadata.name"


def labelled(labels: Mapping[str, str]) -> dict[str, Any]:
    """The label selector of pods carrying all of ``labels``."""
    return {"matchLabels": dict(labels)}


def labelled_any_of(labels: Mapping[str, str], key: str, values: Sequence[str]) -> dict[str, Any]:
    """The label selector of pods carrying ``labels`` and one of ``values`` for ``key``."""
    return {"matchLabels": dict(labels), "matchExpressions": [{"key": key, "operator": "In", "values": list(values)}]}


@dataclass(frozen=True)
class Peer:
    """Who opens the connections: the pods ``pods`` selects (a label selector) in
    ``namespace``, every pod of ``namespace`` when ``pods`` is None, anyone at all (outside
    the cluster included) when ``namespace`` is None."""

    what: str
    namespace: str | None = None
    pods: Mapping[str, Any] | None = None

    def rule(self) -> dict[str, Any] | None:
        """The ``from`` entry admitting this peer, or None for anyone (no ``from`` at all)."""
        if self.namespace is None:
            return None
        peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: self.namespace}}}
        if self.pods is not None:
            peer["podSelector"] = dict(self.pods)
        return peer


def ingress_rule(ports: Sequence[int], peers: Sequence[Peer]) -> dict[str, Any]:
    """Admits ``peers`` (anyone, if one of them is anyone) to the TCP ``ports``."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port} for port in ports]}
    sources = [peer.rule() for peer in peers]
    if None not in sources:
        rule["from"] = sources
    return rule


def ingress_policy(
    name: str,
    namespace: pulumi.Input[str],
    pods: Mapping[str, Any],
    rules: Sequence[dict[str, Any]],
    purpose: str,
) -> dict[str, Any]:
    """A NetworkPolicy selecting ``pods`` (a label selector: matchLabels / matchExpressions,
    {} for every pod of the namespace) that admits only what ``rules`` allow."""
    metadata = manifests.metadata(name, namespace)
    metadata["annotations"] = {"runtime-defense/purpose": purpose}
    spec: dict[str, Any] = {"podSelector": dict(pods), "policyTypes": ["Ingress"]}
    if rules:
        spec["ingress"] = list(rules)
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata, "spec": spec}


@dataclass(frozen=True)
class MutualTlsNetworkPolicyArgs:
    namespace: Namespace  # the server's
    server: Mapping[str, str]  # pod labels of the server
    port: int  # the mTLS port
    client: Mapping[str, str]  # pod labels of the one client allowed
    client_namespace: str
    scraped_ports: Sequence[int]  # the server's metrics ports
    scrapers: Peer  # Prometheus


class MutualTlsNetworkPolicy(pulumi.ComponentResource):
    """A NetworkPolicy in front of the mTLS server: the client's pods may reach the mTLS
    port, Prometheus the metrics ports, nothing else gets in (the kubelet's health checks
    come from the node, which a policy never blocks). Mutual TLS already refuses strangers;
    this keeps them from reaching the TLS stack at all. (It takes a CNI that enforces
    policies, e.g. `minikube start --cni=calico`.)
    """

    def __init__(self, name: str, args: MutualTlsNetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:network:MutualTlsNetworkPolicy", name, None, opts)
        self.policy_name = name
        client = Peer("the mTLS client", args.client_namespace, labelled(args.client))
        policy = ingress_policy(
            name,
            args.namespace.ref,
            labelled(args.server),
            [ingress_rule([args.port], [client]), ingress_rule(args.scraped_ports, [args.scrapers])],
            "the mTLS port admits only the client; the metrics ports only Prometheus",
        )
        manifests.apply(f"{name}-policy", [policy], pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
