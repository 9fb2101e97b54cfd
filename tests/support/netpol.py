"""Which pod may open a connection to which pod and port, by the NetworkPolicies a stack
applies, evaluated as the Kubernetes API defines them
(https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- a pod that no policy with the Ingress type selects accepts everything; once one selects
  it, it accepts only what some rule of a policy selecting it allows (they add up);
- a rule with no ``from`` admits every source, with no ``ports`` every port; a ``from``
  entry with a podSelector alone means pods of the policy's namespace, a
  namespaceSelector alone every pod of the matching namespaces, both: those pods there;
- a port is a number (with ``endPort``, a range) or a name, looked up in the destination
  pod's container ports; the protocol defaults to TCP;
- a pod on the host network is outside what policies apply to (and a source on the host
  network is matched by no pod selector); traffic from the pod's own node (the kubelet's
  probes) is always allowed, and a pod can always reach itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from references import selects
from rendering import Obj, RenderedStack, Workload

NAMESPACE_NAME = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Source:
    """Where a connection comes from: a pod (its namespace and labels), or, with no
    namespace, a client outside the pod network."""

    what: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False

    @classmethod
    def of(cls, workload: Workload) -> Source:
        return cls(
            str(workload.owner),
            workload.owner.namespace,
            workload.labels,
            bool(workload.pod.get("hostNetwork")),
        )


OUTSIDE = Source("a client outside the cluster")


def container_ports(workload: Workload) -> list[dict[str, Any]]:
    return [port for container in workload.containers(init=False) for port in container.get("ports") or []]


def named_port(workload: Workload, name: str, protocol: str = "TCP") -> int | None:
    for port in container_ports(workload):
        if port.get("name") == name and port.get("protocol", "TCP") == protocol:
            return int(port["containerPort"])
    return None


class NetworkPolicies:
    """The NetworkPolicies among ``objects``, and the namespaces' labels their namespace
    selectors match (the API server labels every namespace with its name)."""

    def __init__(self, objects: Iterable[Obj]):
        objects = list(objects)
        self.policies = [o for o in objects if o.kind == "NetworkPolicy"]
        self.namespace_labels = {o.name: {**o.labels, NAMESPACE_NAME: o.name} for o in objects if o.kind == "Namespace"}

    def labels_of(self, namespace: str) -> dict[str, str]:
        return self.namespace_labels.get(namespace, {NAMESPACE_NAME: namespace})

    def selecting(self, workload: Workload) -> list[Obj]:
        """The policies that isolate ``workload`` for ingress."""
        found = []
        for policy in self.policies:
            spec = policy.body["spec"]
            types = spec.get("policyTypes") or ["Ingress"]
            if (
                policy.namespace == workload.owner.namespace
                and "Ingress" in types
                and selects(spec.get("podSelector") or {}, workload.labels)
            ):
                found.append(policy)
        return found

    def admits(self, source: Source, workload: Workload, port: int, protocol: str = "TCP") -> bool:
        """Whether ``source`` may open a connection to ``workload`` on ``port``."""
        if workload.pod.get("hostNetwork"):
            return True  # no policy applies to a pod on the host network
        policies = self.selecting(workload)
        if not policies:
            return True
        return any(self.rule_admits(policy, rule, source, workload, port, protocol) for policy, rule in rules(policies))

    def rule_admits(
        self, policy: Obj, rule: Mapping[str, Any], source: Source, workload: Workload, port: int, protocol: str
    ) -> bool:
        return self.port_matches(rule.get("ports"), workload, port, protocol) and self.source_matches(
            rule.get("from"), source, policy.namespace
        )

    @staticmethod
    def port_matches(ports: list[dict[str, Any]] | None, workload: Workload, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for entry in ports:
            if entry.get("protocol", "TCP") != protocol:
                continue
            wanted = entry.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str) and not wanted.isdigit():
                if named_port(workload, wanted, protocol) == port:
                    return True
                continue
            low = int(float(wanted))  # numbers may arrive as floats through Pulumi's mocks
            high = int(float(entry.get("endPort", low)))
            if low <= port <= high:
                return True
        return False

    def source_matches(self, peers: list[dict[str, Any]] | None, source: Source, policy_namespace: str | None) -> bool:
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                if source.namespace is None and peer["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0"):
                    return True
                continue
            if source.namespace is None or source.host_network:
                continue  # pod and namespace selectors match pods of the pod network only
            namespaces, pods = peer.get("namespaceSelector"), peer.get("podSelector")
            if namespaces is None and source.namespace != policy_namespace:
                continue
            if namespaces is not None and not selects(namespaces, self.labels_of(source.namespace)):
                continue
            if pods is not None and not selects(pods, source.labels):
                continue
            return True
        return False


def rules(policies: Iterable[Obj]) -> Iterator[tuple[Obj, dict[str, Any]]]:
    for policy in policies:
        for rule in policy.body["spec"].get("ingress") or []:
            yield policy, rule


# -- Services, and what a connection to one reaches --------------------------------------------


@dataclass(frozen=True)
class Target:
    """A Service port and a pod behind it, with the container port the connection lands on."""

    service: Obj
    service_port: dict[str, Any]
    workload: Workload
    port: int
    protocol: str

    def __str__(self) -> str:
        name = self.service_port.get("name") or self.service_port["port"]
        return f"{self.service.namespace}/{self.service.name}:{name} -> {self.workload.owner.name}:{self.port}"


def service_targets(stack: RenderedStack, service: Obj, service_port: Mapping[str, Any]) -> list[Target]:
    """The pods a Service port sends connections to, and on which container port."""
    selector = service.body["spec"].get("selector")
    if not selector:
        return []
    protocol = service_port.get("protocol", "TCP")
    found = []
    for workload in stack.workloads():
        if workload.owner.namespace != service.namespace or not selects(selector, workload.labels):
            continue
        target = service_port.get("targetPort", service_port["port"])
        port = named_port(workload, target, protocol) if isinstance(target, str) else int(float(target))
        if port is not None:
            found.append(Target(service, dict(service_port), workload, port, protocol))
    return found


def service_port_targets(stack: RenderedStack, namespace: str, name: str, port: int) -> list[Target]:
    """What a client dialling ``name.namespace:port`` reaches."""
    service = stack.get("Service", name, namespace)
    (entry,) = [p for p in service.body["spec"]["ports"] if int(float(p["port"])) == port]
    return service_targets(stack, service, entry)


def url_targets(stack: RenderedStack, url: str) -> list[Target]:
    """What a client using ``url`` (http://<service>.<namespace>.svc...:<port>/...) reaches."""
    match = re.match(r"^https?://([^./:]+)\.([^./:]+)(?:\.svc[^:/]*)?:(\d+)", url)
    assert match, url
    service, namespace, port = match.groups()
    return service_port_targets(stack, namespace, service, int(port))


def kube_rbac_proxied(target: Target) -> bool:
    """Whether the port is served by kube-rbac-proxy, which lets a request through only with
    a token that TokenReview accepts and SubjectAccessReview authorizes."""
    for container in target.workload.containers(init=False):
        args = [str(a) for a in container.get("args") or []]
        listens = [a.rsplit(":", 1)[-1] for a in args if a.startswith("--secure-listen-address=")]
        ports = [int(p["containerPort"]) for p in container.get("ports") or []]
        if "kube-rbac-proxy" in container["image"] and str(target.port) in listens and target.port in ports:
            return True
    return False
