"""While a hub admits spokes, `pulumi destroy` stops on its guard: the `fleet-spokes` ConfigMap
is protected. The program protects it through a transform on the ConfigGroup that applies it,
which the engine runs on the ConfigMap the group registers; the mocks do not run transforms,
so the tests apply the registered ones as the engine would (``ProgramRun.apply_transforms``)."""

from __future__ import annotations

import pytest
from fleet import hub_config
from harness import CONFIG_GROUP, ProgramRun, kubernetes_type, run_program

from components.fleet_hub import GUARD


def protected(run: ProgramRun, body: dict) -> bool:
    """Whether the object is protected once the engine has run, on what the ConfigGroup
    applying it registers, the transforms of that group and of its ancestors."""
    (group,) = [r for r in run.of_type(CONFIG_GROUP) if body in r.plain("objs")]
    metadata = body["metadata"]
    name = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
    _, opts = run.apply_transforms(group, kubernetes_type(body["apiVersion"], body["kind"]), name, body)
    return bool(opts.protect)


@pytest.fixture(scope="module")
def without_spokes() -> ProgramRun:
    return run_program(hub_config([]), stack="hub")


def test_the_guard_is_protected_while_the_hub_admits_spokes(hub_stack):
    run = hub_stack.run
    assert run.exports["fleet"].value["spokes"]
    assert protected(run, run.manifest("ConfigMap", GUARD))
    assert run.manifest("ConfigMap", GUARD)["data"]["spokes"].splitlines() == run.exports["fleet"].value["spokes"]


def test_nothing_else_of_the_hub_is_protected(hub_stack):
    run = hub_stack.run
    others = [o for o in run.manifests() if o["metadata"]["name"] != GUARD]
    assert others
    assert [f"{o['kind']} {o['metadata']['name']}" for o in others if protected(run, o)] == []


def test_a_hub_without_spokes_leaves_the_guard_unprotected(without_spokes):
    assert without_spokes.exports["fleet"].value["spokes"] == []
    assert without_spokes.manifest("ConfigMap", GUARD)["data"]["spokes"] == ""
    assert not protected(without_spokes, without_spokes.manifest("ConfigMap", GUARD))
