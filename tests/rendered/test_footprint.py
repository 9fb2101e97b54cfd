"""What each stack asks the scheduler for, summed from the rendered pods: every container is
sized (a CPU and a memory request, a memory limit, no CPU limit: throttling a security
sensor hides events), and a profile on minikube fits a default node beside its control
plane. The README's figures are these, computed here."""

import re

import pytest
from footprint import footprint
from harness import ROOT
from rendering import render_stack

MINIKUBE_STACKS = {"current": "dev", "tutorial": "dev-tutorial"}


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
    """`minikube start --cpus=2 --memory=4096`: its control plane requests about 0.75 CPU and
    a few hundred MiB, which leaves the stack 1.2 CPU and 3 GiB."""
    used = footprint(render_stack(MINIKUBE_STACKS[profile]))
    assert used.cpu_millis <= 1200, f"{profile}: {used}"
    assert used.memory_mib <= 3072, f"{profile}: {used}"


def test_loki_caches_are_sized_down_from_their_11_gib_default():
    caches = {
        o.name: o.body["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
        for o in render_stack("dev").of_kind("StatefulSet")
        if o.name.endswith("-cache")
    }
    assert caches == {"loki-chunks-cache": "77Mi", "loki-results-cache": "38Mi"}


def test_the_readme_gives_each_profiles_rendered_footprint():
    readme = (ROOT / "README.md").read_text()
    for profile, name in MINIKUBE_STACKS.items():
        used = footprint(render_stack(name))
        row = f"| `{profile}` | {used.cpu_millis}m | {used.memory_mib} MiB | {used.memory_limit_mib} MiB |"
        assert row in readme, f"README lacks the row {row}"
    prod = footprint(render_stack("prod"))
    assert re.search(rf"\b{prod.cpu_millis}m CPU and {prod.memory_mib} MiB\b", readme), str(prod)
