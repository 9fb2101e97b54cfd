"""StackNamespaces: the namespaces the stack owns, created before anything lands in them,
each labelled with the Pod Security level its pods pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.yaml.v2 import ConfigGroup

from components import manifests
from components.namespaces_config import Namespaces

# Pod Security Standards levels, from the least privileged.
RESTRICTED, BASELINE, PRIVILEGED = "restricted", "baseline", "privileged"
LEVELS = (RESTRICTED, BASELINE, PRIVILEGED)
# The version of the standards the rendered pods are checked against (tests/rendered/
# test_pod_security.py): a later Kubernetes may tighten "latest", not these labels.
POD_SECURITY_VERSION = "v1.33"
# What each namespace runs. Monitoring (Prometheus, its operator, kube-state-metrics,
# Grafana) and logging (Loki, its caches, Alloy reading through the Kubernetes API) pass
# "restricted". Every pod that needs the host runs in Falco's namespace: Falco (kernel driver,
# host paths), node-exporter (host network and PID namespace, /proc and /sys) and a collector
# reading the node's log files (Promtail in the tutorial, Alloy with logging.podLogs = files),
# so that namespace alone is "privileged".
LEVEL_OF_ROLE = {"monitoring": RESTRICTED, "logging": RESTRICTED, "falco": PRIVILEGED}
# What the restricted level asks of a container (its pod sets runAsNonRoot).
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_security_labels(level: str) -> dict[str, str]:
    """Enforced, and also audited and warned about, at the pinned version of the standards."""
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = level
        labels[f"pod-security.kubernetes.io/{mode}-version"] = POD_SECURITY_VERSION
    return labels


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
    """Creates each namespace the stack deploys into, once, labelled with the Pod Security
    level its pods pass (``LEVEL_OF_ROLE``; a namespace given two roles takes the more
    privileged level); deleting them on destroy removes what is left inside. The monitoring
    namespace is the stack's only when it deploys the monitoring baseline: an existing
    Prometheus's namespace is never touched. Namespaces named in ``retained`` are left in
    place by `pulumi destroy`, with what they hold (kept volumes), and adopted again by the
    next `pulumi up` through ``adopting``, the one provider allowed to take over what exists.
    """

    def __init__(
        self,
        name: str,
        namespaces: Namespaces,
        *,
        with_monitoring: bool,
        retained: frozenset[str] = frozenset(),
        adopting: pulumi.ProviderResource | None = None,
        # On each namespace; an annotation known only later holds every namespace, and so
        # everything deployed into them, until it is (a spoke's admission by its hub).
        annotations: Mapping[str, pulumi.Input[str]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("runtime-defense:cluster:StackNamespaces", name, None, opts)
        self._groups: dict[str, ConfigGroup] = {}
        roles = {"monitoring": namespaces.monitoring} if with_monitoring else {}
        roles |= {"logging": namespaces.logging, "falco": namespaces.falco}
        self.levels: Mapping[str, str] = levels_of(roles)
        self.names = tuple(self.levels)
        owned = [ns for ns in self.names if ns not in retained]
        kept = [ns for ns in self.names if ns in retained]
        groups = [("namespaces", owned, pulumi.ResourceOptions())]
        if kept:
            if adopting is None:
                raise ValueError(
                    "retained namespaces are adopted again by the next `pulumi up`: give an adopting provider"
                )
            # A transform reaches the Namespace objects the ConfigGroup's provider creates.
            groups.append(
                ("kept-namespaces", kept, pulumi.ResourceOptions(transforms=[retain_on_delete], providers=[adopting]))
            )
        for suffix, names, extra in groups:
            if names:
                group = manifests.apply(
                    f"{name}-{suffix}",
                    [manifests.namespace(ns, pod_security_labels(self.levels[ns]), annotations) for ns in names],
                    pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), extra),
                )
                self._groups.update(dict.fromkeys(names, group))
        self.monitoring = self._created(namespaces.monitoring) if with_monitoring else None
        self.logging = self._created(namespaces.logging)
        self.falco = self._created(namespaces.falco)
        self.register_outputs({"namespaces": list(self.names), "podSecurity": dict(self.levels)})

    def _created(self, name: str) -> Namespace:
        # The URN is known even during preview, so the name stays known (charts render in
        # `pulumi preview`) while everything that uses it waits for the namespace.
        return Namespace(name=name, ref=self._groups[name].urn.apply(lambda _: name))


def levels_of(roles: Mapping[str, str]) -> dict[str, str]:
    """Namespace -> the Pod Security level of the most privileged role it holds."""
    levels: dict[str, str] = {}
    for role, namespace in roles.items():
        level = LEVEL_OF_ROLE[role]
        levels[namespace] = max(levels.get(namespace, RESTRICTED), level, key=LEVELS.index)
    return levels
