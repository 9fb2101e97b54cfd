"""Falco mounts only what it uses, as the cluster receives its DaemonSet: the directory of the
configured runtime's socket (a socket file mounted alone goes dead when the runtime restarts),
every host path read-only unless Falco writes there, and no host volume nothing mounts. The
mounts table of docs/architecture.md is this list."""

from __future__ import annotations

import posixpath
import re

import yaml
from falco_pod import falco_pod, kmod, sys_admin_several_runtimes
from harness import ROOT
from rendering import Workload, render_stack

from components.falco_host import PREFLIGHT

DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- falco-mounts:begin -->", "<!-- falco-mounts:end -->"


def host_mounts(workload: Workload) -> list[tuple[str, str, str, bool]]:
    """(container, host path, mount path, writable) of every host path a container mounts."""
    host = {v["name"]: v["hostPath"]["path"] for v in workload.pod["volumes"] if "hostPath" in v}
    found = [
        (c["name"], host[m["name"]], m["mountPath"], not m.get("readOnly", False))
        for c in workload.containers()
        for m in c.get("volumeMounts") or []
        if m["name"] in host
    ]
    assert found
    return found


def enabled_sockets(stack) -> list[str]:
    """The sockets Falco's container plugin is configured to ask, from the falco.yaml it reads."""
    falco_yaml = yaml.safe_load(stack.get("ConfigMap", "falco", "falco").body["data"]["falco.yaml"])
    (plugin,) = [p for p in falco_yaml["plugins"] if p["name"] == "container"]
    engines = plugin["init_config"]["engines"]
    sockets = [s for engine in engines.values() if engine["enabled"] for s in engine.get("sockets") or []]
    assert sockets
    return sockets


# The runtime each committed stack names: docker (minikube's, the default) in dev, containerd in prod.
RUNTIME_SOCKET = {
    "dev": "/var/run/docker.sock",
    "dev-tutorial": "/var/run/docker.sock",
    "prod": "/run/containerd/containerd.sock",
}


def test_falco_mounts_the_directory_of_one_runtime_socket(stack):
    pod = falco_pod(stack)
    sockets = enabled_sockets(stack)
    socket = RUNTIME_SOCKET[stack.name]
    assert sockets == [socket]
    host_paths = [v["hostPath"]["path"] for v in pod.pod["volumes"] if "hostPath" in v]
    assert not [p for p in host_paths if p.endswith(".sock")], "a socket mounted as a file goes dead on restart"
    (directory,) = [p for p in host_paths if p in {posixpath.dirname(s) for s in sockets}]
    assert directory == posixpath.dirname(socket)
    falco = next(c for c in pod.containers() if c["name"] == "falco")
    assert {"name": "HOST_ROOT", "value": "/host"} in falco["env"]
    # Falco looks for the socket under HOST_ROOT: inside the mounted directory.
    mounts = [m for m in host_mounts(pod) if m[1] == directory]
    inside = "/host" + directory
    assert mounts == [(PREFLIGHT, directory, inside, False), ("falco", directory, inside, False)]
    assert all(("/host" + s).startswith(mount + "/") for s in sockets for _, _, mount, _ in mounts)


def test_a_cluster_of_several_runtimes_mounts_each_directory_once():
    stack = sys_admin_several_runtimes()
    assert enabled_sockets(stack) == [
        "/run/containerd/containerd.sock",
        "/run/crio/crio.sock",
        "/run/k3s/containerd/containerd.sock",
    ]
    falco = [m for m in host_mounts(falco_pod(stack)) if m[0] == "falco" and m[1].startswith("/run/")]
    assert falco == [
        ("falco", "/run/containerd", "/host/run/containerd", False),
        ("falco", "/run/crio", "/host/run/crio", False),
        ("falco", "/run/k3s/containerd", "/host/run/k3s/containerd", False),
    ]


WRITABLE = {
    # modern_ebpf writes no host path; the legacy probe's loader keeps the chart's writable
    # /lib/modules, which kmod's `dkms remove` needs; kmod's Falco writes its ring buffer size.
    "dev": set(),
    "prod": set(),
    "dev-tutorial": {("falco-driver-loader", "/lib/modules")},
    "falco-kmod": {("falco-driver-loader", "/lib/modules"), ("falco", "/sys/module")},
}


def test_nothing_is_writable_that_falco_does_not_write(stack):
    assert_writable_only_where_falco_writes(stack)


def test_kmod_writes_its_module_parameters_and_its_loader_the_modules():
    assert_writable_only_where_falco_writes(kmod())


def assert_writable_only_where_falco_writes(stack) -> None:
    mounts = host_mounts(falco_pod(stack))
    assert {(c, path) for c, path, _, writable in mounts if writable} == WRITABLE[stack.name]
    assert ("falco", "/proc", "/host/proc", False) in mounts
    # Read-only all the way down where the runtime can (recursiveReadOnly, Kubernetes 1.33).
    pod = falco_pod(stack)
    host = {v["name"] for v in pod.pod["volumes"] if "hostPath" in v}
    read_only = [m for c in pod.containers() for m in c.get("volumeMounts") or [] if m["name"] in host]
    read_only = [m for m in read_only if m.get("readOnly")]
    assert read_only and all(m.get("recursiveReadOnly") == "IfPossible" for m in read_only)


def test_every_host_volume_is_mounted_by_a_container(stack):
    pod = falco_pod(stack)
    mounted = {m["name"] for c in pod.containers() for m in c.get("volumeMounts") or []}
    unused = [v["hostPath"]["path"] for v in pod.pod["volumes"] if "hostPath" in v and v["name"] not in mounted]
    assert unused == []


# -- the documented list -------------------------------------------------------------------------


def documented_mounts() -> list[tuple[str, str, str, bool]]:
    """The rows of the marker-delimited table in docs/architecture.md: container, host path,
    mounted at, read-only or read-write (further columns are prose)."""
    assert DOC.is_file(), f"{DOC.relative_to(ROOT)} is missing: it documents Falco's mounts"
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"{DOC.relative_to(ROOT)} has no table between {BEGIN} and {END}"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    assert len(rows) > 2, "the table has a header, a rule and at least one row"
    documented = []
    for row in rows[2:]:
        cells = [re.sub(r"`", "", cell).strip() for cell in row.strip().strip("|").split("|")]
        container, host_path, mounted_at, access = cells[:4]
        assert access in ("read-only", "read-write"), row
        documented.append((container, host_path, mounted_at, access == "read-write"))
    return documented


def test_the_documented_mounts_are_those_of_the_rendered_daemonset():
    assert documented_mounts() == host_mounts(falco_pod(render_stack("dev")))
