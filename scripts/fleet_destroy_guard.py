"""Runs before `pulumi destroy` of a stack (destroy.yml): refuses to destroy a fleet's hub
while it still admits spokes, naming them and the steps that retire them first.

    venv/bin/python scripts/fleet_destroy_guard.py <stack>

It reads only the deployed `fleet` output of <stack> itself (`pulumi stack output --json`,
secrets never shown), with the backend and passphrase of that stack's environment:

- a hub whose fleet.spokes lists spokes: exit 1, before anything is destroyed. Its spokes
  read its stack and send it everything they collect; the program protects the ConfigMap
  <logging namespace>/fleet-spokes while they are admitted, so `pulumi destroy` would stop
  there too, but only after its plan, and without saying what to do.
- a hub that admits no spoke, a spoke, or a stack with no `fleet` output (standalone, or
  nothing deployed): exit 0, saying what the destroy leaves untouched. A spoke's destroy
  reads nothing of its hub (`pulumi destroy` does not run the program), so it needs no
  access to the hub's stack.
- outputs that cannot be read: exit 1 (whether spokes depend on the stack is unknown).

Under GitHub Actions the verdict is added to the job summary too.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from fleet_stacks import (
    FLEET_OUTPUT,
    SECRET,
    StackUnreadable,
    committed_config,
    committed_spokes,
    outputs,
    short_name,
)

GUARD_CONFIG_MAP = "fleet-spokes"  # components/fleet_hub.py GUARD
SPOKE_SILENT_ALERT = "Spoke stopped sending"  # components/alerts.py SPOKE_SILENT


def logging_namespace(stack: str) -> str:
    namespaces = (committed_config(stack) or {}).get("namespaces") or {}
    return str(namespaces.get("logging", "logging"))


def spoke_stacks(hub: str, spokes: list[str]) -> dict[str, str | None]:
    """Each admitted spoke's committed stack, found by its fleet.clusterName and fleet.hubStack."""
    found: dict[str, str | None] = dict.fromkeys(spokes)
    for spoke in committed_spokes():
        if spoke.cluster in found and short_name(spoke.hub_stack) == hub:
            found[spoke.cluster] = spoke.stack
    return found


def refusal(stack: str, fleet: dict[str, Any]) -> str:
    spokes = [str(name) for name in fleet["spokes"]]
    stacks = spoke_stacks(stack, spokes)
    endpoints = fleet.get("endpoints") or {}
    guard = f"{logging_namespace(stack)}/{GUARD_CONFIG_MAP}"
    lines = [
        f"Not destroying stack {stack}: it is the hub of a fleet (cluster {fleet.get('clusterName')}) and still "
        f"admits {len(spokes)} spoke{'s' if len(spokes) != 1 else ''}, which read its stack and send it everything "
        "they collect:",
    ]
    for spoke in spokes:
        spoke_stack = stacks[spoke]
        lines.append(
            f"  - {spoke}: stack {spoke_stack} (Pulumi.{spoke_stack}.yaml)"
            if spoke_stack
            else f"  - {spoke}: no stack file here names it (fleet.clusterName); its stack is deployed elsewhere"
        )
    sent_to = " and ".join(str(endpoints[key]) for key in ("logs", "metrics") if key in endpoints)
    known = [stacks[spoke] for spoke in spokes if stacks[spoke]]
    elsewhere = [spoke for spoke in spokes if not stacks[spoke]]
    where = [f"destroy.yml with stack {', then '.join(str(s) for s in known)}"] if known else []
    where += [f"{', '.join(elsewhere)} where deployed"] if elsewhere else []
    lines += [
        "Destroying the hub now would break each of them: the logs, Falco events and metrics they push"
        + (f" to {sent_to}" if sent_to else "")
        + " would find no hub and be dropped; their next preview or `pulumi up` would fail, the hub's stack holding "
        "no outputs to read; and the fleet's Grafana, with every cluster's dashboards and alerts, would go with the "
        f"hub. `pulumi destroy` would also stop on the protected ConfigMap {guard}.",
        "To destroy the hub:",
        f"  1. Retire each spoke first: destroy its stack ({'; '.join(where)}), or point its fleet.hubStack at "
        "another hub. Then delete its Pulumi.<stack>.yaml and its entry in the spoke matrices of fleet.yml and "
        "preview.yml, so that no later run updates it.",
        f"  2. Remove {', '.join(spokes)} from fleet.spokes in Pulumi.{stack}.yaml and `pulumi up` the hub (merging "
        f"to main runs fleet.yml): that revokes their credentials and lifts the protection of {guard}.",
        f"  3. Destroy the hub again (destroy.yml with stack {stack}).",
    ]
    return "\n".join(lines)


def verdict(stack: str, fleet: Any) -> tuple[bool, str]:
    """(go ahead, what to say) for the stack's deployed `fleet` output."""
    if fleet is None:
        return True, (
            f"Stack {stack} exports no `{FLEET_OUTPUT}` output (a standalone stack, or nothing deployed): no spoke "
            "reads it, and destroying it touches no other stack."
        )
    if fleet == SECRET or not isinstance(fleet, dict):
        return False, f"Not destroying stack {stack}: its `{FLEET_OUTPUT}` output is unreadable ({fleet!r})."
    role, cluster = fleet.get("role"), fleet.get("clusterName")
    if role == "spoke":
        return True, (
            f"Stack {stack} is a spoke (cluster {cluster}) of the hub {fleet.get('hubStack')}: `pulumi destroy` "
            "removes only what this stack deployed on its own cluster and reads nothing of the hub; the hub and the "
            f"other spokes are untouched. The hub still admits {cluster} (its credentials stay valid) and its "
            f"Grafana raises '{SPOKE_SILENT_ALERT}' for it until you remove {cluster} from the hub's fleet.spokes "
            "and `pulumi up` the hub."
        )
    if role == "hub":
        spokes = fleet.get("spokes")
        if spokes == []:
            return True, f"Stack {stack} is a hub (cluster {cluster}) that admits no spoke: its destroy cuts none off."
        if isinstance(spokes, list):
            return False, refusal(stack, fleet)
        return False, f"Not destroying stack {stack}: its `{FLEET_OUTPUT}` output names no list of spokes ({spokes!r})."
    return False, f"Not destroying stack {stack}: its `{FLEET_OUTPUT}` output has an unknown role ({role!r})."


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1]:
        print("usage: fleet_destroy_guard.py <stack>", file=sys.stderr)
        return 2
    stack = argv[1]
    try:
        deployed = outputs(stack)
    except StackUnreadable as error:
        go = False
        message = (
            f"Not destroying stack {stack}: its outputs cannot be read, so whether spokes depend on it is unknown. "
            f"`pulumi stack output --json --stack {stack}` said: {error}"
        )
    else:
        go, message = verdict(stack, deployed.get(FLEET_OUTPUT))
    print(message, file=sys.stdout if go else sys.stderr)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as out:
            out.write(f"### {'Destroying' if go else 'Not destroying'} stack {stack}\n\n{message}\n\n")
    return 0 if go else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
