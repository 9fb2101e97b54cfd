"""Falco's pod as the cluster receives it, and the Falco-only renders the node tests share
(each rendered once per session)."""

from __future__ import annotations

from typing import Any

from harness import environment_config
from rendering import RenderedStack, Workload, render_config

# Falco with CAP_SYS_ADMIN on a cluster whose nodes run containerd, CRI-O or k3s.
DEV = environment_config("dev")
SYS_ADMIN_SEVERAL_RUNTIMES = {
    **DEV,
    "falco": {"capabilities": "sysAdmin", "containerRuntime": ["containerd", "cri-o", "k3s"]},
}
KMOD = {**DEV, "falco": {"driver": "kmod"}}
# The dev stack on the least capabilities (Pulumi.dev.yaml asks for SYS_ADMIN, for Ubuntu laptops).
LEAST = {**DEV, "falco": {**DEV.get("falco", {}), "capabilities": "least"}}


def sys_admin_several_runtimes() -> RenderedStack:
    return render_config("falco-sysadmin-several-runtimes", "dev", SYS_ADMIN_SEVERAL_RUNTIMES, only=("falco",))


def least_capabilities() -> RenderedStack:
    return render_config("falco-least", "dev", LEAST, only=("falco",))


def kmod() -> RenderedStack:
    return render_config("falco-kmod", "dev", KMOD, only=("falco",))


def falco_pod(stack: RenderedStack) -> Workload:
    (daemonset,) = [o for o in stack.from_release("falco") if o.kind == "DaemonSet" and o.name == "falco"]
    workload = Workload.of(daemonset)
    assert workload is not None
    return workload


def container(workload: Workload, name: str) -> dict[str, Any]:
    (found,) = [c for c in workload.containers() if c["name"] == name]
    return found
