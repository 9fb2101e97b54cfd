"""Is a URL the program hands to a client served by what the stack renders?

An in-cluster URL (`<service>[.<namespace>[.svc[.cluster.local]]]:<port>`) must name a
Service of the stack with that port, whose target is a port a selected container declares.
A URL from outside the cluster must reach a Service through an Ingress for its host, or a
NodePort equal to its port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from references import selects
from rendering import Obj, RenderedStack

DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 443}


def _service(stack: RenderedStack, name: str, namespace: str) -> Obj | None:
    found = [o for o in stack.of_kind("Service") if o.name == name and o.namespace == namespace]
    return found[0] if found else None


def _target_resolves(stack: RenderedStack, service: Obj, port: dict) -> bool:
    """A named target port must be a port a selected container declares; a number reaches
    the container whether it declares it or not, as long as some pod is selected."""
    target = port.get("targetPort", port["port"])
    for workload in stack.workloads():
        selector = service.body["spec"].get("selector")
        if workload.owner.namespace != service.namespace or not selects(selector, workload.labels):
            continue
        if isinstance(target, int):
            return True
        for container in workload.containers(init=False):
            for declared in container.get("ports") or []:
                if target == declared.get("name"):
                    return True
    return False


def in_cluster_problems(stack: RenderedStack, url: str, client_namespace: str) -> list[str]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme)
    labels = host.split(".")
    if len(labels) > 2 and labels[2:] not in (["svc"], ["svc", "cluster", "local"]):
        return [f"{url}: {host} is not a cluster Service name"]
    name, namespace = labels[0], labels[1] if len(labels) > 1 else client_namespace
    service = _service(stack, name, namespace)
    if service is None:
        return [f"{url}: no Service {namespace}/{name} in the stack"]
    ports = [p for p in service.body["spec"].get("ports") or [] if p["port"] == port]
    if not ports:
        served = [p["port"] for p in service.body["spec"].get("ports") or []]
        return [f"{url}: Service {namespace}/{name} has no port {port} (it has {served})"]
    if not _target_resolves(stack, service, ports[0]):
        return [f"{url}: Service {namespace}/{name} port {port} reaches no port of a selected container"]
    return []


def external_problems(stack: RenderedStack, url: str) -> list[str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme)
    for ingress in stack.of_kind("Ingress"):
        for rule in ingress.body["spec"].get("rules") or []:
            if rule.get("host") != host:
                continue
            if parts.scheme == "https" and not any(
                host in (tls.get("hosts") or []) for tls in ingress.body["spec"].get("tls") or []
            ):
                return [f"{url}: Ingress {ingress.name} serves {host} without TLS"]
            problems = []
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = path["backend"]["service"]
                number = backend["port"].get("number") or backend["port"].get("name")
                service = _service(stack, backend["name"], ingress.namespace or "")
                if service is None or not any(
                    number in (p["port"], p.get("name")) for p in service.body["spec"].get("ports") or []
                ):
                    problems.append(f"{url}: Ingress {ingress.name} routes to a missing {backend['name']}:{number}")
            return problems
    for service in stack.of_kind("Service"):
        exposed = service.body["spec"].get("type") in ("NodePort", "LoadBalancer")
        if exposed and any(p.get("nodePort") == port for p in service.body["spec"].get("ports") or []):
            return [] if parts.scheme == "http" else [f"{url}: NodePort {port} serves plain HTTP"]
    return [f"{url}: no Ingress for {host} and no NodePort {port} in the stack"]
