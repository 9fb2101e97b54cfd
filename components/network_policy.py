"""MutualTlsNetworkPolicy: only the mTLS client may open the mTLS port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components import manifests
from components.namespaces import Namespace


@dataclass(frozen=True)
class MutualTlsNetworkPolicyArgs:
    namespace: Namespace  # the server's
    server: Mapping[str, str]  # pod labels of the server
    port: int  # the mTLS port
    client: Mapping[str, str]  # pod labels of the one client allowed
    client_namespace: str
    open_ports: Sequence[int]  # health checks and metrics, reachable by anyone


class MutualTlsNetworkPolicy(pulumi.ComponentResource):
    """A NetworkPolicy in front of the mTLS server: the client's pods may reach the mTLS
    port, anyone may reach the health and metrics ports, nothing else gets in. Mutual TLS
    already refuses strangers; this keeps them from reaching the TLS stack at all.
    (It takes a CNI that enforces policies, e.g. `minikube start --cni=calico`.)
    """

    def __init__(self, name: str, args: MutualTlsNetworkPolicyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:network:MutualTlsNetworkPolicy", name, None, opts)
        self.policy_name = name
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": manifests.metadata(name, args.namespace.ref),
            "spec": {
                "podSelector": {"matchLabels": dict(args.server)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "podSelector": {"matchLabels": dict(args.client)},
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": args.client_namespace}
                                },
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": args.port}],
                    },
                    {"ports": [{"protocol": "TCP", "port": p} for p in args.open_ports]},
                ],
            },
        }
        manifests.apply(f"{name}-policy", [policy], pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
