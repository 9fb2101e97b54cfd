"""What each stack asks the scheduler for, summed from the rendered pods: every container is
sized (a CPU and a memory request, a memory limit, no CPU limit: throttling a security
sensor hides events), and a profile on minikube fits a default node beside its control
plane. The figures the documents state (docs/architecture.md, Sizing; docs/delivery.md, the
scale-out environment) are these, computed here."""

import re

import pytest
from documents import documents, name, text
from footprint import footprint
from harness import ROOT
from rendering import render_stack

MINIKUBE_STACKS = {"current": "dev", "tutorial": "dev-tutorial"}
# What a profile may request on `minikube start --cpus=2 --memory=4096`: its control plane
# requests about 0.75 CPU and a few hundred MiB, which leaves the stack 1.2 CPU and 3 GiB.
BUDGET_CPU_MILLIS = 1200
BUDGET_MEMORY_MIB = 3072


def test_every_container_requests_cpu_and_memory_and_has_a_memory_limit(stack):
    unsized = []
    for workload in stack.workloads():
        for container in workload.containers():
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            if not (requests.get("cpu") and requests.get("memory") and limits.get("memory")):
                unsized.append(f"{workload.owner} {container['name']}: {resources}")
    assert unsized == []


def test_no_container_has_a_cpu_limit(stack):
    limited = [
        f"{workload.owner} {container['name']}: {container['resources']['limits']['cpu']}"
        for workload in stack.workloads()
        for container in workload.containers()
        if ((container.get("resources") or {}).get("limits") or {}).get("cpu")
    ]
    assert limited == []


@pytest.mark.parametrize("profile", sorted(MINIKUBE_STACKS))
def test_a_profile_fits_a_default_minikube(profile):
    used = footprint(render_stack(MINIKUBE_STACKS[profile]))
    assert used.cpu_millis <= BUDGET_CPU_MILLIS, f"{profile}: {used}"
    assert used.memory_mib <= BUDGET_MEMORY_MIB, f"{profile}: {used}"


def test_loki_caches_are_sized_down_from_their_11_gib_default():
    caches = {
        o.name: o.body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
        for o in render_stack("dev").of_kind("StatefulSet")
        if o.name.endswith("-cache")
    }
    assert caches == {"loki-chunks-cache": "77Mi", "loki-results-cache": "38Mi"}


def test_the_docs_give_each_profiles_rendered_footprint():
    sizing = text("docs/architecture.md").split("\n## Sizing\n", 1)[1]
    for profile, stack in MINIKUBE_STACKS.items():
        used = footprint(render_stack(stack))
        row = f"| `{profile}` | {used.cpu_millis}m | {used.memory_mib} MiB | {used.memory_limit_mib} MiB |"
        assert row in sizing, f"docs/architecture.md lacks the row {row}"
    prod = footprint(render_stack("prod"))
    stated = re.findall(r"the whole stack requests (\d+)m CPU and (\d+) MiB", text("docs/delivery.md"))
    assert stated == [(str(prod.cpu_millis), str(prod.memory_mib))], str(prod)


def test_the_docs_state_the_budget_the_tests_hold():
    stated = re.findall(r"within (\d+\.\d+) CPU and (\d+) GiB", text("docs/architecture.md"))
    assert stated == [(f"{BUDGET_CPU_MILLIS / 1000:g}", f"{BUDGET_MEMORY_MIB / 1024:g}")]


def test_the_docs_start_minikube_as_the_budget_assumes():
    """Every `minikube start` the documents show makes the node the budget is made for, the
    one scripts/minikube-up.sh asks for, with room beside the stack for the control plane."""
    stated = {
        (name(path), cpus, memory)
        for path in documents()
        for cpus, memory in re.findall(r"minikube start [^\n]*?--cpus=(\d+) --memory=(\d+)", text(name(path)))
    }
    assert {doc for doc, *_ in stated} >= {"README.md", "docs/architecture.md"}, stated
    node = {(cpus, memory) for _, cpus, memory in stated}
    script = set(
        re.findall(r"minikube start --cpus=(\d+) --memory=(\d+)", (ROOT / "scripts" / "minikube-up.sh").read_text())
    )
    assert len(node) == 1 and node == script, (stated, script)
    ((cpus, memory),) = node
    assert int(cpus) * 1000 > BUDGET_CPU_MILLIS and int(memory) > BUDGET_MEMORY_MIB
