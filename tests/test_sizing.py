"""Every container the stack runs has CPU and memory requests, and together they fit a
default minikube (2 CPU, 4 GiB) beside its own control plane."""

import pytest
from harness import ROOT, run_program

from components import sizing

# Where each chart takes the resources of each long-running container it renders with
# the program's values, and how many such containers run on a one-node cluster (a number,
# or the values key holding it).
CONTAINER_RESOURCES = {
    "kube-prometheus-stack": [
        ("prometheus.prometheusSpec.resources", 1),
        ("prometheusOperator.prometheusConfigReloader.resources", 1),  # sidecar in the Prometheus pod
        ("prometheusOperator.resources", 1),
        ("kube-state-metrics.resources", 1),
        ("prometheus-node-exporter.resources", 1),  # DaemonSet
        ("grafana.resources", 1),
        ("grafana.sidecar.resources", 2),  # the dashboards and the data sources sidecars
    ],
    "loki-stack": [("loki.resources", 1), ("promtail.resources", 1)],
    "loki": [("singleBinary.resources", 1), ("memcachedExporter.resources", 2)],
    "alloy": [("alloy.resources", 1), ("configReloader.resources", 1)],
    "falco": [("resources", 1)],  # DaemonSet; the falcoctl follow sidecar is off
    "falcosidekick": [("resources", "replicaCount")],
    "falco-exporter": [("resources", 1)],  # DaemonSet
}


def lookup(values: dict, path: str):
    node = values
    for key in path.split("."):
        node = node[key]
    return node


def millicores(cpu: str) -> int:
    return int(cpu.removesuffix("m")) if cpu.endswith("m") else int(float(cpu) * 1000)


def mebibytes(memory: str) -> int:
    assert memory.endswith("Mi"), memory
    return int(memory.removesuffix("Mi"))


def requested(run) -> tuple[int, int]:
    cpu = memory = 0
    for chart in run.charts().values():
        values = chart.plain("values")
        for path, count in CONTAINER_RESOURCES[chart.plain("chart")]:
            if isinstance(count, str):
                count = int(lookup(values, count))
            requests = lookup(values, path)["requests"]
            cpu += count * millicores(requests["cpu"])
            memory += count * mebibytes(requests["memory"])
        if chart.plain("chart") == "loki":
            for cache in ("chunksCache", "resultsCache"):
                cpu += millicores(values[cache]["allocatedCPU"])
                memory += sizing.memcached_request_mib(int(values[cache]["allocatedMemory"]))
    return cpu, memory


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_every_container_has_requests_and_a_memory_limit(profile):
    run = run_program({"profile": profile})
    for chart in run.charts().values():
        for path, _ in CONTAINER_RESOURCES[chart.plain("chart")]:
            resources = lookup(chart.plain("values"), path)
            assert set(resources["requests"]) == {"cpu", "memory"}, path
            assert "memory" in resources["limits"], path


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_the_stack_fits_a_default_minikube(profile):
    cpu, memory = requested(run_program({"profile": profile}))
    assert cpu <= sizing.MINIKUBE_BUDGET_CPU_MILLIS, f"{profile} requests {cpu}m CPU"
    assert memory <= sizing.MINIKUBE_BUDGET_MEMORY_MIB, f"{profile} requests {memory}Mi"


def test_loki_caches_are_sized_down_from_their_11_gib_default():
    values = run_program({"profile": "current"}).chart_values("loki")
    assert sizing.memcached_request_mib(int(values["chunksCache"]["allocatedMemory"])) == 77
    assert sizing.memcached_request_mib(int(values["resultsCache"]["allocatedMemory"])) == 38


def test_the_readme_sizing_table_is_the_programs():
    readme = (ROOT / "README.md").read_text()
    for name, size in sizing.CONTAINERS.items():
        row = f"| {name} | {size.cpu} | {size.memory} | {size.memory_limit} |"
        assert row in readme, f"README lacks the row {row}"
    for profile in ("current", "tutorial"):
        cpu, memory = requested(run_program({"profile": profile}))
        assert f"| **{profile} total** | **{cpu}m** | **{memory}Mi** |" in readme, profile
