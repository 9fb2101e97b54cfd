"""What Falco takes from the node: its capabilities, the container runtime it asks for
container metadata, and host paths, each read-only unless Falco writes there.

The charts mount six runtime sockets, each as a file, and the host's /proc read-write. A
file bind mount pins the socket's inode: once the runtime restarts and makes a new socket,
Falco talks to the dead one and every event's container and k8s fields read <NA> until
Falco restarts (falcosecurity/charts#1052, fixed upstream by mounting the socket's directory:
falcosecurity/charts#1058, falcosecurity/falco#3978). Here Falco mounts the directory of the
configured runtime's socket only, through chart values; a transform on the rendered
DaemonSet drops what values cannot: the chart's socket-file mounts, host volumes no
container mounts, and write access to host paths Falco does not write.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

import pulumi

from components.sizing import INIT_CONTAINERS

# Capabilities of Falco on modern_ebpf, by falco.capabilities. least: BPF and PERFMON to load
# and attach the probe, SYS_RESOURCE for its ring buffers, SYS_PTRACE to read /proc of every
# process (the charts' own least-privileged set, templates/pod-template.tpl
# falco.securityContext). sysAdmin adds SYS_ADMIN, which Debian's and Ubuntu's kernels
# require for perf events when kernel.perf_event_paranoid is above 2 (falco-preflight.sh).
CAPABILITY_SETS: dict[str, tuple[str, ...]] = {
    "least": ("BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE"),
    "sysAdmin": ("BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "SYS_ADMIN"),
}
DEFAULT_CAPABILITIES = "least"
# The one driver Falco runs with capabilities instead of privileges.
LEAST_PRIVILEGED_DRIVER = "modern_ebpf"

# Container runtimes, by the name falco.containerRuntime takes: the container plugin's engine
# that speaks to it and its socket on the node (the plugin's defaults, falco chart
# values.yaml collectors.containerEngine.engines).
RUNTIMES: dict[str, tuple[str, str]] = {
    "docker": ("docker", "/var/run/docker.sock"),  # minikube's default runtime
    "containerd": ("cri", "/run/containerd/containerd.sock"),  # kind, kubeadm, EKS, GKE, AKS
    "cri-o": ("cri", "/run/crio/crio.sock"),
    "k3s": ("cri", "/run/k3s/containerd/containerd.sock"),  # k3s' and RKE2's embedded containerd
}
DEFAULT_RUNTIMES = ("docker",)
# Every engine of the container plugin in the pinned charts (templates/_helpers.tpl
# falco.containerPluginVolumes); those not configured are turned off.
PLUGIN_ENGINES = ("docker", "podman", "containerd", "cri", "lxc", "libvirt_lxc", "bpm")
# The chart's container plugin helper mounts each socket file as a volume of this name prefix.
CHART_SOCKET_VOLUMES = "container-engine-socket-"
HOST_ROOT = "/host"  # where Falco looks for the node's paths (the charts' HOST_ROOT)

PREFLIGHT = "falco-preflight"
_PREFLIGHT_SCRIPT = Path(__file__).with_name("falco-preflight.sh")
# The host paths a container of the Falco pod writes, as (container, mount path); every other
# host path is mounted read-only. Both are mounted with the kmod driver only.
WRITABLE_HOST_PATHS = frozenset(
    {
        # Falco writes its ring buffer size to /sys/module/falco/parameters/g_buffer_bytes_dim
        # (falcosecurity/libs userspace/libscap/engine/kmod/scap_kmod.c).
        ("falco", "/sys/module"),
        # falcoctl `dkms remove`s older builds of the module (falcoctl pkg/driver/type/kmod.go);
        # the loader image links /lib/modules to /host/lib/modules (falco docker/driver-loader).
        ("falco-driver-loader", "/host/lib/modules"),
    }
)
READ_ONLY = {"readOnly": True, "recursiveReadOnly": "IfPossible"}


def capabilities(driver: str, setting: str) -> tuple[str, ...] | None:
    """The capabilities the Falco container holds, or None where it runs privileged."""
    return CAPABILITY_SETS[setting] if driver == LEAST_PRIVILEGED_DRIVER else None


def sockets(runtimes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(RUNTIMES[runtime][1] for runtime in runtimes))


def socket_directories(runtimes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(posixpath.dirname(socket) for socket in sockets(runtimes)))


def _directory_volume(index: int) -> str:
    return f"runtime-socket-dir-{index}"


def _directory_mounts(runtimes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": _directory_volume(i), "mountPath": HOST_ROOT + directory, **READ_ONLY}
        for i, directory in enumerate(socket_directories(runtimes))
    ]


def container_engines(runtimes: tuple[str, ...]) -> dict[str, Any]:
    """``collectors.containerEngine.engines``: the configured runtimes' engines on their sockets."""
    engines: dict[str, Any] = {engine: {"enabled": False} for engine in PLUGIN_ENGINES}
    for runtime in runtimes:
        engine, socket = RUNTIMES[runtime]
        listed = engines[engine].get("sockets", [])
        engines[engine] = {"enabled": True, "sockets": [*listed, socket]}
    return engines


def preflight(image: str, held: tuple[str, ...] | None, runtimes: tuple[str, ...]) -> dict[str, Any]:
    """The init container that stops the pod, saying why, where Falco could not start or could
    not reach the runtime (falco-preflight.sh)."""
    env = {
        "FALCO_CAPABILITIES": " ".join(held) if held is not None else "privileged",
        "FALCO_CONTAINER_RUNTIME": ", ".join(runtimes),
        "RUNTIME_SOCKETS": " ".join(sockets(runtimes)),
        "KNOWN_RUNTIMES": ", ".join(RUNTIMES),
        "HOST_ROOT": HOST_ROOT,
    }
    return {
        "name": PREFLIGHT,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", _PREFLIGHT_SCRIPT.read_text()],
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            *({"name": name, "value": value} for name, value in env.items()),
        ],
        "resources": INIT_CONTAINERS[PREFLIGHT].values(),
        # Root only to read root-owned runtime directories such as /run/containerd (0711).
        "securityContext": {
            "runAsUser": 0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # Its last lines of output become the pod's message when it fails.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": _directory_mounts(runtimes),
    }


def host_values(driver: str, setting: str, runtimes: tuple[str, ...], image: str) -> dict[str, Any]:
    """The falco chart values (9.1.0 and 8.0.5 alike) for Falco's capabilities, its runtime
    socket directories and its preflight."""
    held = capabilities(driver, setting)
    values: dict[str, Any] = {
        "collectors": {"containerEngine": {"engines": container_engines(runtimes)}},
        # templates/pod-template.tpl: extra volumes of the pod, extra mounts of the Falco container.
        "mounts": {
            # A node without the runtime gets the empty directory (in /run, a tmpfs), so that
            # the preflight runs there and says which runtime to configure.
            "volumes": [
                {"name": _directory_volume(i), "hostPath": {"path": directory, "type": "DirectoryOrCreate"}}
                for i, directory in enumerate(socket_directories(runtimes))
            ],
            "volumeMounts": _directory_mounts(runtimes),
        },
        "extra": {"initContainers": [preflight(image, held, runtimes)]},
    }
    if held is not None:
        # Replaces the chart's own set (templates/pod-template.tpl falco.securityContext).
        values["containerSecurityContext"] = {"capabilities": {"add": list(held)}}
    return values


def only_what_falco_uses(daemonset: str) -> pulumi.ResourceTransform:
    """A transform for the falco Chart: on its DaemonSet ``daemonset``, drops the chart's
    socket-file mounts, makes every host path read-only but those Falco writes, and drops
    host volumes no container mounts."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = args.props
        metadata = props.get("metadata")
        if args.type_ != "kubernetes:apps/v1:DaemonSet" or not isinstance(metadata, dict):
            return None
        if metadata.get("name") != daemonset:
            return None
        return pulumi.ResourceTransformResult(props=restricted(dict(props)), opts=args.opts)

    return transform


def restricted(daemonset: dict[str, Any]) -> dict[str, Any]:
    """``daemonset`` (as the falco chart renders it) mounting only what Falco uses."""
    spec = daemonset["spec"]
    template = spec["template"]
    pod = dict(template["spec"])
    volumes = [v for v in pod.get("volumes") or [] if not v["name"].startswith(CHART_SOCKET_VOLUMES)]
    host = {v["name"] for v in volumes if "hostPath" in v}

    def mounts(container: dict[str, Any]) -> list[dict[str, Any]]:
        kept = []
        for mount in container.get("volumeMounts") or []:
            if mount["name"].startswith(CHART_SOCKET_VOLUMES):
                continue
            if mount["name"] in host and (container["name"], mount["mountPath"]) not in WRITABLE_HOST_PATHS:
                mount = {**mount, **READ_ONLY}
            kept.append(mount)
        return kept

    for group in ("initContainers", "containers"):
        if pod.get(group):
            pod[group] = [{**c, "volumeMounts": mounts(c)} if c.get("volumeMounts") else c for c in pod[group]]
    containers = [*(pod.get("initContainers") or []), *pod["containers"]]
    mounted = {m["name"] for c in containers for m in c.get("volumeMounts") or []}
    pod["volumes"] = [v for v in volumes if v["name"] not in host or v["name"] in mounted]
    return {**daemonset, "spec": {**spec, "template": {**template, "spec": pod}}}
