"""Falco's preflight, the init container that stops the pod with one line saying why where Falco
could not start (perf events refused on Debian and Ubuntu kernels) or could not reach the
container runtime. Its script is taken from the rendered DaemonSet and run here, by the shell
of Falco's image (busybox) and by a POSIX sh, against a fake /proc and a fake node with real
unix sockets."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from falco_pod import container, falco_pod, least_capabilities, sys_admin_several_runtimes
from harness import ROOT
from pod_security import BASELINE, workload_violations
from rendering import Workload, render_stack
from tools import require_busybox

from components.charts import FALCO, FALCO_WITH_GRPC
from components.falco_host import PREFLIGHT

SCRIPT = ROOT / "components" / "falco-preflight.sh"


def env_of(preflight: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in preflight["env"] if "value" in e}


@pytest.fixture(scope="module")
def sys_admin():
    return sys_admin_several_runtimes()


# -- what the cluster receives ------------------------------------------------------------------


def test_the_preflight_runs_first_from_falcos_image_with_nothing(stack):
    pod = falco_pod(stack)
    first = pod.pod["initContainers"][0]
    assert first["name"] == PREFLIGHT
    chart = FALCO_WITH_GRPC if stack.profile == "tutorial" else FALCO
    assert first["image"] == chart.image("docker.io/falcosecurity/falco")  # already on the node for Falco
    assert first["command"] == ["/bin/sh", "-c", SCRIPT.read_text()]
    assert first["securityContext"] == {
        "runAsUser": 0,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # Its last lines become the pod's message in `kubectl describe pod` when it fails.
    assert first["terminationMessagePolicy"] == "FallbackToLogsOnError"
    node = next(e for e in first["env"] if e["name"] == "NODE_NAME")
    assert node["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_the_preflight_checks_the_capabilities_falco_really_holds(stack, sys_admin):
    for rendered in (stack, sys_admin):
        pod = falco_pod(rendered)
        falco = container(pod, "falco")["securityContext"]
        held = env_of(container(pod, PREFLIGHT))["FALCO_CAPABILITIES"]
        if falco.get("privileged"):
            assert held == "privileged"
        else:
            assert held.split() == falco["capabilities"]["add"]


def test_the_preflight_adds_nothing_to_what_the_falco_namespace_must_admit(stack):
    """Falco's namespace is privileged for Falco's sake; the preflight asks for nothing more
    than the pod without it does."""
    pod = falco_pod(stack)
    namespace = stack.get("Namespace", pod.owner.namespace)
    assert namespace.labels["pod-security.kubernetes.io/enforce"] == "privileged"
    without = {**pod.pod, "initContainers": [c for c in pod.pod["initContainers"] if c["name"] != PREFLIGHT]}
    alone = Workload(pod.owner, without, pod.labels, pod.replicas, pod.annotations)
    assert workload_violations(pod, BASELINE) == workload_violations(alone, BASELINE)


# -- the script, run -------------------------------------------------------------------------------


def shells() -> Iterator[object]:
    yield pytest.param(["sh"], id="sh")
    yield pytest.param(["busybox", "sh"], id="busybox")  # found when run (tests/support/tools.py)


@pytest.fixture
def node():
    """A fake node: its /proc and, under the host root, the runtime's socket directory."""
    # Short: a unix socket's path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="pf", dir="/tmp"))
    listening: list[socket.socket] = []

    def make(paranoid: str | None, sockets: tuple[str, ...]) -> dict[str, str]:
        sysctl = root / "proc" / "sys" / "kernel" / "perf_event_paranoid"
        sysctl.parent.mkdir(parents=True, exist_ok=True)
        if paranoid is not None:
            sysctl.write_text(paranoid + "\n")
        for path in sockets:
            where = root / "host" / path.lstrip("/")
            where.parent.mkdir(parents=True, exist_ok=True)
            server = socket.socket(socket.AF_UNIX)
            server.bind(str(where))
            listening.append(server)
        return {"PROC_ROOT": str(root / "proc"), "HOST_ROOT": str(root / "host"), "NODE_NAME": "minikube"}

    yield make
    for server in listening:
        server.close()
    shutil.rmtree(root)


def run(shell: list[str], script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shell[0] == "busybox":
        shell = [require_busybox(), *shell[1:]]
    return subprocess.run(
        [*shell, "-c", script], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=10
    )


def preflight_of(stack) -> tuple[str, dict[str, str]]:
    preflight = container(falco_pod(stack), PREFLIGHT)
    return preflight["command"][2], env_of(preflight)


@pytest.fixture(scope="module")
def rendered(sys_admin):
    return {"least": least_capabilities(), "sysAdmin": sys_admin, "privileged": render_stack("dev-tutorial")}


@pytest.mark.parametrize("shell", list(shells()))
@pytest.mark.parametrize("paranoid", [-1, 0, 1, 2, 3, 4])
@pytest.mark.parametrize("falco", ["least", "sysAdmin", "privileged"])
def test_falco_starts_unless_the_kernel_refuses_it_perf_events(shell, paranoid, falco, rendered, node):
    script, env = preflight_of(rendered[falco])
    runtime = env["RUNTIME_SOCKETS"].split()[-1]
    result = run(shell, script, {**env, **node(str(paranoid), sockets=(runtime,))})
    refused = paranoid > 2 and falco == "least"  # Debian (3) and Ubuntu (4) kernels
    if not refused:
        assert (result.returncode, result.stderr) == (0, "")
        assert f"kernel.perf_event_paranoid={paranoid}, Falco holds {env['FALCO_CAPABILITIES']}" in result.stdout
        return
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()  # one line: the cause and the fix
    assert line.startswith("falco-preflight: Falco cannot start on node minikube: ")
    assert f"kernel.perf_event_paranoid is {paranoid} on this node's kernel" in line
    assert "runtime-defense:falco.capabilities = least" in line
    assert "pulumi config set --path falco.capabilities sysAdmin" in line
    assert "sysctl -w kernel.perf_event_paranoid=2" in line


@pytest.mark.parametrize("shell", list(shells()))
@pytest.mark.parametrize("content", [None, "", "four"])
def test_an_unreadable_sysctl_lets_falco_try(shell, content, rendered, node):
    script, env = preflight_of(rendered["least"])
    result = run(shell, script, {**env, **node(content, sockets=("/var/run/docker.sock",))})
    assert result.returncode == 0, result.stderr
    assert "kernel.perf_event_paranoid cannot be read; Falco will try to start" in result.stdout


@pytest.mark.parametrize("shell", list(shells()))
def test_a_node_without_the_configured_runtime_stops_falco_saying_which_to_set(shell, rendered, node):
    script, env = preflight_of(rendered["least"])
    assert (env["FALCO_CONTAINER_RUNTIME"], env["RUNTIME_SOCKETS"]) == ("docker", "/var/run/docker.sock")
    result = run(shell, script, {**env, **node("2", sockets=("/run/containerd/containerd.sock",))})
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("falco-preflight: Falco cannot start on node minikube: ")
    assert "runtime-defense:falco.containerRuntime is docker, but this node has no /var/run/docker.sock" in line
    assert "container and k8s fields would read <NA>" in line
    assert "(docker, containerd, cri-o, k3s; kubectl get node minikube -o jsonpath=" in line


@pytest.mark.parametrize("shell", list(shells()))
def test_a_file_where_the_socket_should_be_is_no_runtime(shell, rendered, node):
    script, env = preflight_of(rendered["least"])
    fake = node("2", sockets=())
    (Path(fake["HOST_ROOT"]) / "var" / "run").mkdir(parents=True)
    (Path(fake["HOST_ROOT"]) / "var" / "run" / "docker.sock").write_text("")
    result = run(shell, script, {**env, **fake})
    assert result.returncode == 1
    assert "this node has no /var/run/docker.sock" in result.stderr


@pytest.mark.parametrize("shell", list(shells()))
def test_any_listed_runtime_will_do_on_a_mixed_cluster(shell, rendered, node):
    script, env = preflight_of(rendered["sysAdmin"])  # containerd, cri-o, k3s
    assert env["RUNTIME_SOCKETS"] == (
        "/run/containerd/containerd.sock /run/crio/crio.sock /run/k3s/containerd/containerd.sock"
    )
    result = run(shell, script, {**env, **node("2", sockets=("/run/crio/crio.sock",))})
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.rstrip().endswith("runtime socket: /run/crio/crio.sock")
