"""StackNamespaces: the namespaces the stack owns, created before anything lands in them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import manifests
from components.config import Namespaces

# Every namespace here runs node agents that need host access (node-exporter, Falco
# loading its probe) or privileged DaemonSets, which Pod Security "baseline" forbids;
# the label says so instead of failing on clusters that enforce it by default.
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "privileged"}


@dataclass(frozen=True)
class Namespace:
    name: str  # for in-cluster URLs and chart values
    ref: pulumi.Output[str]  # the same name, carrying the dependency on its creation


class StackNamespaces(pulumi.ComponentResource):
    """Creates each configured namespace once; deleting them on destroy removes what is left inside."""

    def __init__(self, name: str, namespaces: Namespaces, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:cluster:StackNamespaces", name, None, opts)
        self.group = manifests.apply(
            f"{name}-namespaces",
            [manifests.namespace(ns, POD_SECURITY) for ns in namespaces.distinct()],
            pulumi.ResourceOptions(parent=self),
        )
        self.monitoring = self._created(namespaces.monitoring)
        self.logging = self._created(namespaces.logging)
        self.falco = self._created(namespaces.falco)
        self.register_outputs({"namespaces": list(namespaces.distinct())})

    def _created(self, name: str) -> Namespace:
        # The URN is known even during preview, so the name stays known (charts render in
        # `pulumi preview`) while everything that uses it waits for the namespace.
        return Namespace(name=name, ref=self.group.urn.apply(lambda _: name))
