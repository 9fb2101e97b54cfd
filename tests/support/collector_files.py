"""Stacks whose Alloy reads the node's log files (``logging.podLogs: files``), as the cluster
receives them, each rendered once per session: dev on minikube's docker runtime, and Alloy's
release of the committed fleet's spoke-a on containerd (its StackReference answered with the
hub's real exports) and of dev on CRI-O."""

from __future__ import annotations

from functools import cache
from typing import Any

from fleet import HUB_STACK, hub_config
from harness import ProgramRun, environment_config, run_program, stack_reference
from rendering import STACKS, RenderedStack, render_config, render_stack

FILES = {"podLogs": "files"}
# The stacks the collector tests run on: the committed ones and dev reading the node's files.
COLLECTOR_STACKS = (*sorted(STACKS), "dev-files")


def with_files(environment: str, **falco: Any) -> dict[str, Any]:
    """The committed stack file's configuration, with Alloy reading the node's files."""
    config = environment_config(environment)
    config["logging"] = {**(config.get("logging") or {}), **FILES}
    if falco:
        config["falco"] = {**(config.get("falco") or {}), **falco}
    return config


def dev_files() -> RenderedStack:
    return render_config("dev-files", "dev", with_files("dev"))


def crio_files() -> RenderedStack:
    """dev on CRI-O nodes, whose log files only root reads: Alloy's release alone."""
    return render_config("dev-files-cri-o", "dev", with_files("dev", containerRuntime="cri-o"), only=("alloy",))


@cache
def _hub_run() -> ProgramRun:
    return run_program(hub_config(), stack="hub")


def spoke_files() -> RenderedStack:
    """spoke-a (containerd) reading its nodes' files, sending to the committed hub: Alloy's
    release and the program's own objects (its Secrets, namespaces and NetworkPolicies)."""
    reads = stack_reference(_hub_run(), HUB_STACK)
    return render_config("spoke-a-files", "spoke-a", with_files("spoke-a"), only=("alloy",), reads=reads)


def collector_stack(name: str) -> RenderedStack:
    return dev_files() if name == "dev-files" else render_stack(name)
