"""Admission and revocation across the fleet's stacks.

Removing spoke-b from the hub's fleet.spokes revokes spoke-b and nothing else: spoke-a's
password is the same resource with the same inputs (so the engine keeps it, and spoke-a keeps
sending), and spoke-b is nowhere in what the hub then applies or exports. spoke-b's program,
run against that hub, stops with the admission error before it registers anything on its
cluster; spoke-a's runs as before. A spoke stops the same way when its Falco namespace is not
the hub's, or when the stack it names as its hub is no hub.
"""

from __future__ import annotations

import json

import pytest
from fleet import (
    HUB_STACK,
    gateway_conf,
    hub_config,
    labelled_by_port,
    receiver_ports,
    secret_data,
)
from harness import CONFIG_GROUP, ProgramRun, environment_config, run_program, stack_reference
from rendering import RenderedStack, render_config

from components.fleet_hub import GUARD, HTPASSWD_SECRET
from components.fleet_spoke import CREDENTIALS_OUTPUT, FLEET_OUTPUT, SECRET

PASSWORD = "random:index/randomPassword:RandomPassword"
REVOKED = "spoke-b"


@pytest.fixture(scope="module")
def hub_without_b(hub_stack) -> RenderedStack:
    """The committed hub once spoke-b is removed from fleet.spokes (its gateway and receivers
    rendered: what changes on the cluster)."""
    del hub_stack  # rendered first, so that the Helm check runs
    return render_config("hub-without-spoke-b", "hub", hub_config(["spoke-a"]), only=("loki", "fleet-receiver"))


def spoke_run(name: str, hub: ProgramRun, expect_error: bool = True, **changes) -> ProgramRun:
    """The spoke ``name`` (its config updated with ``changes``) against ``hub``'s exports."""
    return run_program(
        {**environment_config(name), **changes},
        stack=name,
        reads=stack_reference(hub, HUB_STACK),
        expect_error=expect_error,
    )


def on_cluster(run: ProgramRun) -> list[str]:
    """What the run registered that the Kubernetes provider would create."""
    return [f"{r.type} {r.name}" for r in run.resources if r.type.startswith("kubernetes:")]


def test_spoke_a_keeps_the_same_password_resource_with_the_same_inputs(hub_stack, hub_without_b):
    def password(run: ProgramRun, spoke: str):
        (found,) = [r for r in run.of_type(PASSWORD) if r.name == f"fleet-{spoke}"]
        return found

    before, after = password(hub_stack.run, "spoke-a"), password(hub_without_b.run, "spoke-a")
    assert (after.name, after.urn, after.parent, after.plain_inputs()) == (
        before.name,
        before.urn,
        before.parent,
        before.plain_inputs(),
    )
    assert [r.name for r in hub_without_b.run.of_type(PASSWORD) if r.name.startswith("fleet-")] == ["fleet-spoke-a"]
    issued = hub_without_b.run.exports[CREDENTIALS_OUTPUT]
    assert issued.secret and issued.value == {"spoke-a": hub_stack.run.exports[CREDENTIALS_OUTPUT].value["spoke-a"]}


def test_the_revoked_spoke_appears_nowhere(hub_stack, hub_without_b):
    htpasswd = secret_data(hub_without_b.get("Secret", HTPASSWD_SECRET))[".htpasswd"]
    assert [line.split(":")[0] for line in htpasswd.splitlines()] == ["spoke-a"]
    conf = gateway_conf(hub_without_b)
    port_a = receiver_ports(gateway_conf(hub_stack))["spoke-a"]
    assert receiver_ports(conf) == {"spoke-a": port_a}  # spoke-a's port has not moved
    assert labelled_by_port(hub_without_b) == {port_a: "spoke-a"}
    assert hub_without_b.get("ConfigMap", GUARD).body["data"]["spokes"] == "spoke-a"
    assert hub_without_b.run.exports[FLEET_OUTPUT].value["spokes"] == ["spoke-a"]
    # ... nor anywhere else: no object, registration or export names it or its port.
    port_b = str(receiver_ports(gateway_conf(hub_stack))[REVOKED])
    everything = json.dumps(
        [
            [o.body for o in hub_without_b.objects],
            [[r.name, r.urn, r.plain_inputs()] for r in hub_without_b.run.resources],
            {k: e.value for k, e in hub_without_b.run.exports.items()},
        ],
        default=str,
    )
    assert REVOKED not in everything and port_b not in everything


def test_the_revoked_spoke_stops_with_the_admission_error_before_anything_reaches_its_cluster(hub_without_b):
    run = spoke_run(REVOKED, hub_without_b.run)
    assert run.error is not None
    message = str(run.error)
    assert f"does not admit a spoke named '{REVOKED}'" in message
    assert "add it to the hub's fleet.spokes" in message and "it admits spoke-a" in message
    assert on_cluster(run) == []


def test_the_spoke_still_admitted_runs_as_before(hub_stack, hub_without_b):
    run = spoke_run("spoke-a", hub_without_b.run, expect_error=False)
    secrets = [m for m in run.manifests() if m["kind"] == "Secret" and m["metadata"]["name"] == SECRET]
    assert secrets
    for secret in secrets:
        assert secret["stringData"]["password"] == hub_stack.run.exports[CREDENTIALS_OUTPUT].value["spoke-a"]
    (group,) = [r for r in run.of_type(CONFIG_GROUP) if any(o in secrets for o in r.plain("objs"))]
    assert group.secret("objs")  # the password stays a Pulumi secret on the spoke


def test_a_spoke_whose_falco_namespace_is_not_the_hubs_stops_naming_the_key(hub_stack):
    run = spoke_run("spoke-a", hub_stack.run, namespaces={"falco": "falco-system"})
    message = str(run.error)
    assert "runtime-defense:namespaces.falco" in message and "'falco-system'" in message
    assert "watches Falco in namespace 'falco'" in message
    assert "pulumi config set --path namespaces.falco falco" in message
    assert on_cluster(run) == []


@pytest.mark.parametrize("stack", ["dev", "spoke-a"])
def test_a_spoke_naming_a_stack_that_is_no_hub_stops_saying_so(hub_stack, stack):
    """A standalone stack (dev) exports no `fleet`; a spoke exports one that is not a hub's."""
    if stack == "dev":
        other = run_program(environment_config("dev"), stack="dev")
    else:
        other = spoke_run("spoke-a", hub_stack.run, expect_error=False)
    run = spoke_run("spoke-b", other)
    message = str(run.error)
    assert message.startswith(f"runtime-defense:fleet.hubStack = '{HUB_STACK}' is no hub"), message
    assert on_cluster(run) == []
