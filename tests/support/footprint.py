"""What a stack asks the scheduler for, summed from its rendered pods on a one-node cluster."""

from __future__ import annotations

from dataclasses import dataclass

from rendering import RenderedStack, Workload, mebibytes, millicores


@dataclass(frozen=True)
class Footprint:
    cpu_millis: int  # requested
    memory_mib: int  # requested
    memory_limit_mib: int

    def __str__(self) -> str:
        return f"{self.cpu_millis}m CPU, {self.memory_mib} MiB requested (memory limits {self.memory_limit_mib} MiB)"


def _amount(container: dict, kind: str, resource: str) -> float:
    value = ((container.get("resources") or {}).get(kind) or {}).get(resource)
    if value is None:
        return 0
    return millicores(value) if resource == "cpu" else mebibytes(value)


def pod_request(workload: Workload, kind: str, resource: str) -> float:
    """A pod's effective request or limit: its containers' sum, or its largest init
    container's if that is more (init containers run one at a time, before the others)."""
    running = sum(_amount(c, kind, resource) for c in workload.containers(init=False))
    init = max((_amount(c, kind, resource) for c in workload.pod.get("initContainers") or []), default=0)
    return max(running, init)


def footprint(stack: RenderedStack) -> Footprint:
    workloads = list(stack.workloads())
    total = {
        key: sum(w.replicas * pod_request(w, *key) for w in workloads)
        for key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))
    }
    return Footprint(
        cpu_millis=round(total[("requests", "cpu")]),
        memory_mib=round(total[("requests", "memory")]),
        memory_limit_mib=round(total[("limits", "memory")]),
    )
