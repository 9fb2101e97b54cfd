"""CPU and memory for every container the stack runs, sized for a default minikube.

The README's minikube (`minikube start --cpus=2 --memory=4096`) has 2 CPU and 4 GiB,
and its own control plane requests about 0.75 CPU. Most charts here declare no resources
at all (and Loki's caches default to 11 GiB), so the program sets every one: requests are
what the scheduler reserves, memory limits stop one runaway pod from taking the node. No
CPU limits: throttling a security sensor hides events, and requests already share CPU fairly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContainerSize:
    cpu: str  # request, millicores
    memory: str  # request, MiB
    memory_limit: str

    def values(self) -> dict[str, Any]:
        """The ``resources`` block charts take."""
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"memory": self.memory_limit},
        }


# Long-running containers, by workload. Init containers are listed separately: they run
# before the others and do not add to a pod's steady-state reservation.
CONTAINERS: Mapping[str, ContainerSize] = {
    "prometheus": ContainerSize("100m", "320Mi", "1024Mi"),
    "prometheus-config-reloader": ContainerSize("10m", "16Mi", "48Mi"),
    # A spoke's Prometheus in agent mode: scrapes and forwards, keeps no blocks and runs no rules.
    "prometheus-agent": ContainerSize("50m", "128Mi", "512Mi"),
    "prometheus-operator": ContainerSize("20m", "48Mi", "128Mi"),
    "kube-state-metrics": ContainerSize("10m", "32Mi", "96Mi"),
    "node-exporter": ContainerSize("10m", "24Mi", "64Mi"),
    "kube-rbac-proxy": ContainerSize("5m", "16Mi", "48Mi"),  # in front of node-exporter
    "grafana": ContainerSize("50m", "160Mi", "384Mi"),
    "grafana-sidecar": ContainerSize("10m", "48Mi", "96Mi"),
    "loki": ContainerSize("100m", "256Mi", "768Mi"),
    "memcached-exporter": ContainerSize("5m", "16Mi", "32Mi"),
    "alloy": ContainerSize("50m", "96Mi", "256Mi"),
    "alloy-config-reloader": ContainerSize("5m", "16Mi", "48Mi"),
    "loki-2": ContainerSize("100m", "192Mi", "512Mi"),
    "promtail": ContainerSize("50m", "64Mi", "192Mi"),
    "falco": ContainerSize("100m", "256Mi", "1024Mi"),
    "falcosidekick": ContainerSize("10m", "32Mi", "128Mi"),
    "falco-exporter": ContainerSize("10m", "24Mi", "96Mi"),
}
INIT_CONTAINERS: Mapping[str, ContainerSize] = {
    # A shell script checking the node before Falco starts (components/falco-preflight.sh).
    "falco-preflight": ContainerSize("10m", "16Mi", "32Mi"),
    "falcoctl-artifact-install": ContainerSize("10m", "32Mi", "128Mi"),
    # Downloads, or builds, the kmod/eBPF probe (not run for modern_ebpf).
    "falco-driver-loader": ContainerSize("50m", "128Mi", "1024Mi"),
}

# Scalable Loki (logging.mode = scalable) is for a cluster one node no longer fits: its
# read, write and backend targets run several replicas each, with room to work.
SCALE_OUT: Mapping[str, ContainerSize] = {
    "loki-read": ContainerSize("200m", "512Mi", "2048Mi"),
    "loki-write": ContainerSize("200m", "1024Mi", "2048Mi"),
    "loki-backend": ContainerSize("100m", "512Mi", "1024Mi"),
    # A hub's gateway (nginx): the fleet's pushes pass through it.
    "loki-gateway": ContainerSize("50m", "64Mi", "256Mi"),
}
SCALE_OUT_CHUNKS_CACHE_MB = 2048
SCALE_OUT_RESULTS_CACHE_MB = 512
SCALE_OUT_CACHE_CPU = "200m"

# Loki's memcached caches take their size in MB and derive requests from it
# (memory request = 1.2 x allocatedMemory): 64 MB chunks, 32 MB results.
LOKI_CHUNKS_CACHE_MB = 64
LOKI_RESULTS_CACHE_MB = 32
LOKI_CACHE_CPU = "20m"
