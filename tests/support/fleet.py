"""The committed fleet, as the clusters receive it: the hub (Pulumi.hub.yaml) and its two spokes
(Pulumi.spoke-a.yaml, Pulumi.spoke-b.yaml), each spoke's StackReference answered with the hub's
real exports (secret ones marked secret), each stack rendered once per session.

Also what the cross-stack tests read out of the rendered objects: a Secret's data, a
container's environment as the kubelet builds it, the hub gateway's nginx.conf (its exact
locations, maps and upstreams), and the pods behind a Service port.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import alloy_syntax
from harness import Secret, environment_config, stack_reference
from references import selects
from rendering import Obj, RenderedStack, Workload, render_config

from components.fleet_hub import GATEWAY_PODS, RECEIVER_PODS

HUB_STACK = "organization/runtime-defense/hub"  # what the spokes' fleet.hubStack names
SPOKES = ("spoke-a", "spoke-b")
FLEET_STACKS = ("hub", *SPOKES)


def hub_config(spokes: list[str] | None = None) -> dict[str, Any]:
    """The committed hub's configuration (admitting ``spokes`` instead, when given)."""
    config = {
        **environment_config("hub"),
        "lokiS3AccessKeyId": Secret("AKIAEXAMPLE"),
        "lokiS3SecretAccessKey": Secret("wJalrXUtnFEMI/EXAMPLEKEY"),
    }
    if spokes is not None:
        config["fleet"] = {**config["fleet"], "spokes": spokes}
    return config


def hub() -> RenderedStack:
    return render_config("hub", "hub", hub_config())


def spoke(name: str) -> RenderedStack:
    return render_config(name, name, environment_config(name), reads=stack_reference(hub().run, HUB_STACK))


def rendered(name: str) -> RenderedStack:
    """One stack of the committed fleet by its name: ``hub`` or a spoke."""
    return hub() if name == "hub" else spoke(name)


# -- Secrets and environments ---------------------------------------------------------------------


def secret_data(obj: Obj) -> dict[str, str]:
    """A Secret's keys and values as a pod reads them (``data`` decoded, ``stringData`` over it)."""
    body = obj.body
    data = {key: base64.b64decode(value).decode() for key, value in (body.get("data") or {}).items()}
    return {**data, **(body.get("stringData") or {})}


def container(workload: Workload, name: str) -> dict[str, Any]:
    (found,) = [c for c in workload.containers() if c["name"] == name]
    return found


def workload(stack: RenderedStack, kind: str, name: str) -> Workload:
    found = Workload.of(stack.get(kind, name))
    assert found is not None
    return found


def environment(stack: RenderedStack, pod: Workload, container_name: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it: each ``envFrom`` source in order
    (a later one wins), then ``env`` over them, ``secretKeyRef`` and ``configMapKeyRef``
    resolved against the rendered objects of the pod's namespace."""
    namespace = pod.owner.namespace
    spec = container(pod, container_name)
    env: dict[str, str] = {}
    for source in spec.get("envFrom") or []:
        if "secretRef" in source:
            env.update(secret_data(stack.get("Secret", source["secretRef"]["name"], namespace)))
        elif "configMapRef" in source:
            env.update(stack.get("ConfigMap", source["configMapRef"]["name"], namespace).body.get("data") or {})
    for variable in spec.get("env") or []:
        reference = variable.get("valueFrom") or {}
        if "secretKeyRef" in reference:
            ref = reference["secretKeyRef"]
            env[variable["name"]] = secret_data(stack.get("Secret", ref["name"], namespace))[ref["key"]]
        elif "configMapKeyRef" in reference:
            ref = reference["configMapKeyRef"]
            env[variable["name"]] = stack.get("ConfigMap", ref["name"], namespace).body["data"][ref["key"]]
        elif not reference:
            env[variable["name"]] = str(variable.get("value", ""))
    return env


# -- the hub's gateway (nginx) --------------------------------------------------------------------

SERVICE_HOST = re.compile(r"^(?P<service>[a-z0-9-]+)\.(?P<namespace>[a-z0-9-]+)\.svc\.cluster\.local$")
UPSTREAM = re.compile(r"https?://(?P<host>[a-z0-9.-]+):(?P<port>[0-9]+|\$[a-z_]+)(?P<path>/[^\s;\"]*)?")


def mounted_file(stack: RenderedStack, pod: Workload, container_name: str, path: str) -> str:
    """The text of the file at ``path`` in the container: a key of a ConfigMap or Secret volume
    mounted at its directory."""
    directory, _, key = path.rpartition("/")
    volumes = {volume["name"]: volume for volume in pod.pod.get("volumes") or []}
    for mount in container(pod, container_name).get("volumeMounts") or []:
        if mount["mountPath"].rstrip("/") != directory or mount.get("subPath"):
            continue
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            return stack.get("ConfigMap", volume["configMap"]["name"], pod.owner.namespace).body["data"][key]
        if "secret" in volume:
            return secret_data(stack.get("Secret", volume["secret"]["secretName"], pod.owner.namespace))[key]
    raise AssertionError(f"nothing of {pod.owner} is mounted at {directory} for {path}")


def block(text: str, header: str) -> str:
    """The body of the first nginx block that opens with ``header`` (e.g. ``server``,
    ``location = /api/v1/write``), nested blocks included."""
    match = re.search(rf"(?m)^\s*{re.escape(header)}\s*\{{", text)
    assert match, f"no `{header} {{` block"
    depth, start = 1, match.end()
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    raise AssertionError(f"`{header}` block is not closed")


def exact_location(conf: str, path: str) -> str:
    """The body of the server's ``location = <path>``: where nginx sends exactly that path."""
    return block(block(conf, "server"), f"location = {path}")


def nginx_map(conf: str, variable: str) -> tuple[str, dict[str, str]]:
    """The ``map <source> <variable> {...}`` that sets ``variable``: its source, and its
    entries as {key: value} (``default`` included)."""
    match = re.search(rf"(?m)^\s*map\s+(\S+)\s+{re.escape(variable)}\s*\{{", conf)
    assert match, f"no map sets {variable}"
    body = block(conf, f"map {match[1]} {variable}")
    entries = [line.strip().rstrip(";").split(None, 1) for line in body.splitlines() if line.strip()]
    return match[1], {key: value.strip('"') for key, value in entries}


def listen_ports(conf: str) -> set[int]:
    return {int(port) for port in re.findall(r"(?m)^\s*listen\s+(?:\[::\]:)?([0-9]+)\s*;", block(conf, "server"))}


@dataclass(frozen=True)
class Upstream:
    service: str
    namespace: str
    port: str  # a number, or an nginx variable such as $fleet_receiver_port
    path: str | None  # what proxy_pass replaces the request's path with, if anything


def upstreams(location: str) -> list[Upstream]:
    """Every in-cluster Service a location proxies to (``proxy_pass``, or ``set $backend``)."""
    found = []
    for match in UPSTREAM.finditer(location):
        service = SERVICE_HOST.match(match["host"])
        assert service, f"{match[0]}: not a Service's cluster DNS name"
        found.append(Upstream(service["service"], service["namespace"], match["port"], match["path"]))
    return found


# -- Services and the pods behind them ------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    pod: Workload
    container: str
    port: int  # the container port the Service's target port names


def endpoints(stack: RenderedStack, service: str, namespace: str, port: int) -> list[Endpoint]:
    """The pods (and container ports) behind port ``port`` of Service ``service``, as the
    endpoints controller finds them: pods of its namespace its selector matches, and in each
    the container port its ``targetPort`` names (by number or by name)."""
    body = stack.get("Service", service, namespace).body
    (entry,) = [p for p in body["spec"]["ports"] if int(p["port"]) == port] or [None]
    assert entry is not None, f"Service {namespace}/{service} has no port {port}"
    target = entry.get("targetPort", port)
    found = []
    for pod in stack.workloads():
        if pod.owner.namespace != namespace or not selects(body["spec"].get("selector"), pod.labels):
            continue
        for spec in pod.containers(init=False):
            for declared in spec.get("ports") or []:
                if (isinstance(target, str) and declared.get("name") == target) or (
                    not isinstance(target, str) and int(declared["containerPort"]) == int(target)
                ):
                    found.append(Endpoint(pod, spec["name"], int(declared["containerPort"])))
    return found


def selected_by(pod: Workload, labels: Mapping[str, str]) -> bool:
    return all(pod.labels.get(key) == value for key, value in labels.items())


# -- the hub's front door, as rendered ------------------------------------------------------------

NGINX_CONF = "/etc/nginx/nginx.conf"  # where the gateway's nginx image reads its configuration
RECEIVER_MAP = "$fleet_receiver_port"  # the gateway's variable: the authenticated spoke's receiver port


def gateway_pod(hub: RenderedStack) -> Workload:
    (pod,) = [w for w in hub.workloads() if selected_by(w, GATEWAY_PODS)]
    return pod


def gateway_conf(hub: RenderedStack) -> str:
    """The nginx.conf the gateway's container reads."""
    pod = gateway_pod(hub)
    return mounted_file(hub, pod, pod.containers(init=False)[0]["name"], NGINX_CONF)


def receiver_ports(conf: str) -> dict[str, int]:
    """The gateway's map: authenticated spoke -> the port of its receiver."""
    source, entries = nginx_map(conf, RECEIVER_MAP)
    assert source == "$remote_user", "the receiver must follow the user the gateway authenticated"
    assert entries.pop("default") == ""
    return {user: int(port) for user, port in entries.items()}


def receiver_pod(hub: RenderedStack) -> Workload:
    (pod,) = [w for w in hub.workloads() if selected_by(w, RECEIVER_PODS)]
    return pod


def alloy_pipeline(stack: RenderedStack, pod: Workload) -> list[alloy_syntax.Block]:
    """The configuration the pod's Alloy runs (`alloy run <file>`), parsed."""
    run = container(pod, "alloy")["args"]
    assert run[0] == "run", run
    return alloy_syntax.parse(mounted_file(stack, pod, "alloy", run[1]))


def component(ref: alloy_syntax.Ref) -> tuple[str, str]:
    """(component, label) of a reference to a component's `receiver`."""
    *name, label, export = ref.path.split(".")
    assert export == "receiver", ref
    return ".".join(name), label


def receiver_routes(hub: RenderedStack) -> dict[int, tuple[str, str]]:
    """{port: (the `cluster` every series the hub's receivers take on that port is given, the
    URL it is then written to)}, from the receivers' Alloy configuration."""
    blocks = alloy_pipeline(hub, receiver_pod(hub))
    by_label = {(b.name, b.label): b for b in blocks}
    found: dict[int, tuple[str, str]] = {}
    receivers = [b for b in blocks if b.name == "prometheus.receive_http"]
    assert receivers
    for receiver in receivers:
        (server,) = receiver.children("http")
        port = server.attributes["listen_port"]
        assert server.attributes["listen_address"] == "0.0.0.0"
        (forward,) = receiver.attributes["forward_to"]
        relabel = by_label[component(forward)]
        assert relabel.name == "prometheus.relabel", forward
        (rule,) = relabel.children("rule")
        # No source labels and no regex: the rule applies to every series, whatever it says.
        assert set(rule.attributes) <= {"target_label", "replacement", "action"}, rule.attributes
        assert rule.attributes.get("action", "replace") == "replace"
        assert rule.attributes["target_label"] == "cluster"
        (onward,) = relabel.attributes["forward_to"]
        write = by_label[component(onward)]
        assert write.name == "prometheus.remote_write", onward
        (endpoint,) = write.children("endpoint")
        assert port not in found, f"port {port} received twice"
        found[port] = (rule.attributes["replacement"], endpoint.attributes["url"])
    return found


def labelled_by_port(hub: RenderedStack) -> dict[int, str]:
    """{port: the `cluster` every series the hub's receivers take on that port is given}."""
    return {port: cluster for port, (cluster, _) in receiver_routes(hub).items()}
