"""Does every reference between the objects a stack applies resolve?

A pod that mounts a Secret nobody creates stays in ContainerCreating; a Service whose
selector matches no pod has no endpoints; a ServiceMonitor whose port names no Service
port scrapes nothing. Kubernetes accepts all of them without a word, so this module
resolves each reference against the rendered objects (``rendering.RenderedStack``) and
what the cluster itself provides, and reports, in words, every one that does not resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rendering import Obj, RenderedStack, Workload

# ClusterRoles every cluster has (the default user-facing roles and the system: ones).
BUILT_IN_CLUSTER_ROLES = {"cluster-admin", "admin", "edit", "view"}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector (matchLabels/matchExpressions, or a plain map as Services use)."""
    if selector is None:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


@dataclass(frozen=True)
class ClusterPods:
    """Pods the cluster runs itself (kubeadm and minikube labels), which chart Services select."""

    namespace: str
    labels: Mapping[str, str]
    what: str


CLUSTER_PODS = (
    ClusterPods("kube-system", {"k8s-app": "kube-dns"}, "CoreDNS"),
    ClusterPods("kube-system", {"component": "etcd"}, "etcd"),
    ClusterPods("kube-system", {"component": "kube-controller-manager"}, "the controller manager"),
    ClusterPods("kube-system", {"component": "kube-scheduler"}, "the scheduler"),
    ClusterPods("kube-system", {"k8s-app": "kube-proxy"}, "kube-proxy"),
)


def provided_objects(stack: RenderedStack) -> list[Obj]:
    """What exists without the stack creating it: each namespace's default ServiceAccount and
    root-CA ConfigMap, the API server's Service, and the kubelet Service the Prometheus
    operator maintains (its --kubelet-service flag)."""
    namespaces = {o.namespace for o in stack.objects if o.namespace} | {"default", "kube-system"}
    provided = []
    for ns in sorted(namespaces):
        provided.append(Obj("cluster", _meta("ServiceAccount", "default", ns)))
        provided.append(Obj("cluster", {**_meta("ConfigMap", "kube-root-ca.crt", ns), "data": {"ca.crt": ""}}))
    provided.append(
        Obj(
            "cluster",
            {
                **_meta("Service", "kubernetes", "default", component="apiserver", provider="kubernetes"),
                "spec": {"ports": [{"name": "https", "port": 443}]},
            },
        )
    )
    for obj in stack.objects:
        workload = Workload.of(obj)
        for container in workload.containers() if workload else []:
            for arg in container.get("args") or []:
                if str(arg).startswith("--kubelet-service="):
                    ns, name = str(arg).split("=", 1)[1].split("/")
                    labels = {
                        "k8s-app": "kubelet",
                        "app.kubernetes.io/name": "kubelet",
                        "app.kubernetes.io/managed-by": "prometheus-operator",
                    }
                    ports = [{"name": p} for p in ("https-metrics", "http-metrics", "cadvisor")]
                    provided.append(Obj("operator", {**_meta("Service", name, ns, **labels), "spec": {"ports": ports}}))
    return provided


def _meta(kind: str, name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels}}


class Index:
    def __init__(self, stack: RenderedStack):
        self.stack = stack
        self.objects = [*stack.objects, *provided_objects(stack)]
        self.by_key = {o.key: o for o in self.objects}
        self.hooks = {o.key: o for o in stack.hooks}
        self.workloads = list(stack.workloads())

    def find(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self.by_key.get((kind, namespace, name))

    def missing(self, kind: str, namespace: str | None, name: str) -> str:
        where = f"{namespace}/{name}" if namespace else name
        if (kind, namespace, name) in self.hooks:
            return f"{kind} {where} exists only as a Helm hook, which Helm v4 Chart never runs"
        return f"{kind} {where} is not created by the stack"

    def pods_in(self, namespace: str | None) -> list[Workload]:
        return [w for w in self.workloads if w.owner.namespace == namespace]


def secret_keys(obj: Obj) -> set[str]:
    return set(obj.body.get("data") or {}) | set(obj.body.get("stringData") or {})


def configmap_keys(obj: Obj) -> set[str]:
    return set(obj.body.get("data") or {}) | set(obj.body.get("binaryData") or {})


def _keyed(index: Index, kind: str, ns: str | None, name: str, keys: Iterable[str], optional: bool) -> Iterator[str]:
    target = index.find(kind, ns, name)
    if target is None:
        if not optional:
            yield index.missing(kind, ns, name)
        return
    have = secret_keys(target) if kind == "Secret" else configmap_keys(target)
    for key in keys:
        if key not in have:
            yield f"{kind} {ns}/{name} has no key {key!r} (it has {sorted(have)})"


def secrets_mounted(pod: Mapping[str, Any]) -> set[str]:
    """The Secrets a pod spec mounts: secret volumes and the secret sources of projected ones."""
    names = set()
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                names.add(source["secret"]["name"])
    return names


def secrets_read(workload: Workload) -> set[str]:
    """The Secrets a workload's pods read: mounted (``secrets_mounted``), or in their
    containers' environment (envFrom, or an env value from a secretKeyRef)."""
    names = secrets_mounted(workload.pod)
    for container in workload.containers():
        names |= {ref["secretRef"]["name"] for ref in container.get("envFrom") or [] if "secretRef" in ref}
        names |= {
            env["valueFrom"]["secretKeyRef"]["name"]
            for env in container.get("env") or []
            if "secretKeyRef" in (env.get("valueFrom") or {})
        }
    return names


def pod_references(index: Index, workload: Workload) -> Iterator[str]:
    pod, ns = workload.pod, workload.owner.namespace
    account = pod.get("serviceAccountName") or "default"
    if index.find("ServiceAccount", ns, account) is None:
        yield index.missing("ServiceAccount", ns, account)
    for secret in pod.get("imagePullSecrets") or []:
        if index.find("Secret", ns, secret["name"]) is None:
            yield index.missing("Secret", ns, secret["name"])
    claims = {t["metadata"]["name"] for t in workload.owner.body.get("spec", {}).get("volumeClaimTemplates") or []}
    for volume in pod.get("volumes") or []:
        if "secret" in volume:
            source = volume["secret"]
            keys = [item["key"] for item in source.get("items") or []]
            yield from _keyed(index, "Secret", ns, source["secretName"], keys, bool(source.get("optional")))
        if "configMap" in volume:
            source = volume["configMap"]
            keys = [item["key"] for item in source.get("items") or []]
            yield from _keyed(index, "ConfigMap", ns, source["name"], keys, bool(source.get("optional")))
        for projected in (volume.get("projected") or {}).get("sources") or []:
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in projected:
                    source = projected[key]
                    keys = [item["key"] for item in source.get("items") or []]
                    yield from _keyed(index, kind, ns, source["name"], keys, bool(source.get("optional")))
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim not in claims and index.find("PersistentVolumeClaim", ns, claim) is None:
            yield index.missing("PersistentVolumeClaim", ns, claim)
    for container in workload.containers():
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in source:
                    ref = source[key]
                    yield from _keyed(index, kind, ns, ref["name"], [ref["key"]], bool(ref.get("optional")))
        for env_from in container.get("envFrom") or []:
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in env_from:
                    ref = env_from[key]
                    yield from _keyed(index, kind, ns, ref["name"], [], bool(ref.get("optional")))


def container_port_names(workloads: Iterable[Workload]) -> set[str]:
    return {
        port["name"]
        for workload in workloads
        for container in workload.containers(init=False)
        for port in container.get("ports") or []
        if "name" in port
    }


def service_references(index: Index, service: Obj) -> Iterator[str]:
    selector = service.body["spec"].get("selector")
    if not selector:
        return  # endpoints managed by hand (or by a controller)
    pods = [w for w in index.pods_in(service.namespace) if selects(selector, w.labels)]
    external = [p for p in CLUSTER_PODS if p.namespace == service.namespace and selects(selector, p.labels)]
    if not pods and not external:
        yield f"{service} selects no pod ({selector})"
        return
    names = container_port_names(pods)
    for port in service.body["spec"].get("ports") or []:
        target = port.get("targetPort")
        if isinstance(target, str) and pods and target not in names:
            yield f"{service} port {port.get('name')} targets {target!r}, a port no selected container names"


def monitor_references(index: Index, monitor: Obj) -> Iterator[str]:
    spec = monitor.body["spec"]
    namespaces = spec.get("namespaceSelector") or {}
    services = [
        o
        for o in index.objects
        if o.kind == "Service"
        and (namespaces.get("any") or o.namespace in (namespaces.get("matchNames") or [monitor.namespace]))
        and selects(spec.get("selector") or {}, o.labels)
    ]
    if not services:
        yield f"{monitor} selects no Service ({spec.get('selector')})"
        return
    ports = {p.get("name") for s in services for p in s.body["spec"].get("ports") or []}
    for endpoint in spec.get("endpoints") or []:
        if "port" in endpoint and endpoint["port"] not in ports:
            yield f"{monitor} scrapes port {endpoint['port']!r}, which no selected Service has ({sorted(ports)})"


def selector_references(index: Index, obj: Obj) -> Iterator[str]:
    """NetworkPolicies and PodDisruptionBudgets must select pods of their namespace."""
    selector = obj.body["spec"].get("podSelector" if obj.kind == "NetworkPolicy" else "selector")
    if selector == {}:
        matched = index.pods_in(obj.namespace)  # an empty selector selects every pod
    else:
        matched = [w for w in index.pods_in(obj.namespace) if selects(selector, w.labels)]
    if not matched:
        yield f"{obj} selects no pod ({selector})"


def binding_references(index: Index, binding: Obj) -> Iterator[str]:
    role = binding.body["roleRef"]
    ns = binding.namespace if role["kind"] == "Role" else None
    if index.find(role["kind"], ns, role["name"]) is None and not (
        role["kind"] == "ClusterRole" and (role["name"] in BUILT_IN_CLUSTER_ROLES or role["name"].startswith("system:"))
    ):
        yield f"{binding} grants {index.missing(role['kind'], ns, role['name'])}"
    for subject in binding.body.get("subjects") or []:
        if subject["kind"] == "ServiceAccount":
            ns = subject.get("namespace") or binding.namespace
            if index.find("ServiceAccount", ns, subject["name"]) is None:
                yield f"{binding} binds {index.missing('ServiceAccount', ns, subject['name'])}"


def workload_references(index: Index, obj: Obj) -> Iterator[str]:
    service = obj.body["spec"].get("serviceName") if obj.kind == "StatefulSet" else None
    if service and index.find("Service", obj.namespace, service) is None:
        yield f"{obj} names its governing {index.missing('Service', obj.namespace, service)}"


def dangling(stack: RenderedStack) -> list[str]:
    """Every reference between the stack's objects that does not resolve, in words."""
    index = Index(stack)
    problems: list[str] = []
    for workload in index.workloads:
        problems += [f"{workload.owner}: {p}" for p in pod_references(index, workload)]
    for obj in stack.objects:
        if obj.kind == "Service":
            problems += service_references(index, obj)
        elif obj.kind == "ServiceMonitor":
            problems += monitor_references(index, obj)
        elif obj.kind in ("NetworkPolicy", "PodDisruptionBudget"):
            problems += selector_references(index, obj)
        elif obj.kind in ("RoleBinding", "ClusterRoleBinding"):
            problems += binding_references(index, obj)
        elif obj.kind == "StatefulSet":
            problems += workload_references(index, obj)
    return problems
