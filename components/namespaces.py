"""StackNamespaces: the namespaces the stack owns, created before anything lands in them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.yaml.v2 import ConfigGroup

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


def retain_on_delete(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    """Keeps a resource, and what it contains, when the stack is destroyed."""
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


class StackNamespaces(pulumi.ComponentResource):
    """Creates each namespace the stack deploys into, once; deleting them on destroy removes
    what is left inside. The monitoring namespace is the stack's only when it deploys the
    monitoring baseline: an existing Prometheus's namespace is never touched. Namespaces
    named in ``retained`` are left in place by `pulumi destroy`, with what they hold (kept
    volumes), and adopted again by the next `pulumi up`.
    """

    def __init__(
        self,
        name: str,
        namespaces: Namespaces,
        *,
        with_monitoring: bool,
        retained: frozenset[str] = frozenset(),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("runtime-defense:cluster:StackNamespaces", name, None, opts)
        self._groups: dict[str, ConfigGroup] = {}
        used = ([namespaces.monitoring] if with_monitoring else []) + [namespaces.logging, namespaces.falco]
        self.names = tuple(dict.fromkeys(used))
        owned = [ns for ns in self.names if ns not in retained]
        kept = [ns for ns in self.names if ns in retained]
        # A transform reaches the Namespace objects the ConfigGroup's provider creates.
        for suffix, names, transforms in (("namespaces", owned, None), ("kept-namespaces", kept, [retain_on_delete])):
            if names:
                group = manifests.apply(
                    f"{name}-{suffix}",
                    [manifests.namespace(ns, POD_SECURITY) for ns in names],
                    pulumi.ResourceOptions(parent=self, transforms=transforms),
                )
                self._groups.update(dict.fromkeys(names, group))
        self.monitoring = self._created(namespaces.monitoring) if with_monitoring else None
        self.logging = self._created(namespaces.logging)
        self.falco = self._created(namespaces.falco)
        self.register_outputs({"namespaces": list(self.names)})

    def _created(self, name: str) -> Namespace:
        # The URN is known even during preview, so the name stays known (charts render in
        # `pulumi preview`) while everything that uses it waits for the namespace.
        return Namespace(name=name, ref=self._groups[name].urn.apply(lambda _: name))
