"""Shows what a spoke reads from its hub's stack, before its preview or update (preview.yml,
fleet.yml), and says whether the deployed hub admits it.

    venv/bin/python scripts/fleet_hub_outputs.py [--preview] <spoke stack>

The spoke's fleet.hubStack and fleet.clusterName come from its committed Pulumi.<stack>.yaml;
the hub's outputs from the backend (`pulumi stack output --json`, never --show-secrets): its
`fleet` output in full, and that `fleetSpokeCredentials` exists, shown as "[secret]" as the
CLI prints it. Exit 0 when the deployed hub admits the spoke (ready=true), 1 when it does not
or cannot be read, 2 for a stack that is no spoke.

--preview: a pull request that admits a new spoke (or brings a new hub) changes the hub's
fleet.spokes in the same change, but a spoke's preview reads the hub as deployed, which does not
admit it yet. When the committed hub file admits the spoke, that is said (a warning), and the
exit is 0 with ready=false: the workflow skips that spoke's preview, since on merge fleet.yml
updates the hub before its spokes.

Under GitHub Actions, `ready` goes to $GITHUB_OUTPUT and what was read to the job summary.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from fleet_stacks import (
    CREDENTIALS_OUTPUT,
    FLEET_OUTPUT,
    StackUnreadable,
    committed_fleet,
    outputs,
    short_name,
)


def unreadable(spoke: str, hub: str, error: StackUnreadable) -> str:
    return (
        f"{spoke} cannot read its hub's stack {hub} (fleet.hubStack in Pulumi.{spoke}.yaml): "
        f"`pulumi stack output --json --stack {hub}` said: {error}\n"
        f"A spoke reads its hub's stack with its own environment's settings: give the environment of {spoke} the "
        "hub's backend (PULUMI_BACKEND_URL, with PULUMI_ACCESS_TOKEN for Pulumi Cloud) and, with passphrase "
        f"secrets, the hub's PULUMI_CONFIG_PASSPHRASE (its credentials are a secret output of the hub's). If the hub "
        "was never deployed, deploy it first: fleet.yml updates the hub before its spokes."
    )


def why_not_ready(spoke: str, hub: str, cluster: str, deployed: dict[str, Any]) -> tuple[str, str] | None:
    """Why the deployed hub cannot serve this spoke yet, and what to do; None when it can."""
    hub_file = f"Pulumi.{short_name(hub)}.yaml"
    deploy_hub = "deploy the hub first: fleet.yml updates it before its spokes"
    fleet = deployed.get(FLEET_OUTPUT)
    if fleet is None:
        return f"the hub's stack {hub} holds no `{FLEET_OUTPUT}` output: the hub is not deployed", deploy_hub
    if not isinstance(fleet, dict) or fleet.get("role") != "hub":
        role = fleet.get("role") if isinstance(fleet, dict) else fleet
        return (
            f"the stack {hub} is no hub (its `{FLEET_OUTPUT}` output's role is {role!r})",
            f"point fleet.hubStack in Pulumi.{spoke}.yaml at the hub's stack",
        )
    spokes = fleet.get("spokes") or []
    if cluster not in spokes:
        return (
            f"the hub {hub} does not admit {cluster} (its fleet.spokes: {', '.join(spokes) or 'none'})",
            f"add {cluster} to fleet.spokes in {hub_file} and `pulumi up` the hub first",
        )
    if CREDENTIALS_OUTPUT not in deployed:
        return f"the hub {hub} exports no `{CREDENTIALS_OUTPUT}` output", deploy_hub
    return None


def shown(hub: str, deployed: dict[str, Any], cluster: str) -> str:
    """What the spoke reads, as the CLI shows it (secrets as "[secret]")."""
    fleet = deployed.get(FLEET_OUTPUT)
    lines = [f"`pulumi stack output {FLEET_OUTPUT} --stack {hub}`:"]
    lines += [json.dumps(fleet, indent=2, sort_keys=True)] if fleet is not None else ["(none)"]
    if CREDENTIALS_OUTPUT in deployed:
        lines.append(
            f"`{CREDENTIALS_OUTPUT}`: {deployed[CREDENTIALS_OUTPUT]} (the program takes {cluster}'s password "
            "from it; never shown)"
        )
    return "\n".join(lines)


def report(name: str, value: str) -> None:
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a") as out:
            out.write(f"{name}={value}\n")


def summarize(text: str) -> None:
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as out:
            out.write(text + "\n\n")


def main(argv: list[str]) -> int:
    args = argv[1:]
    preview = "--preview" in args
    args = [arg for arg in args if arg != "--preview"]
    if len(args) != 1 or not args[0]:
        print("usage: fleet_hub_outputs.py [--preview] <spoke stack>", file=sys.stderr)
        return 2
    spoke = args[0]
    fleet = committed_fleet(spoke)
    hub, cluster = fleet.get("hubStack"), fleet.get("clusterName")
    if fleet.get("role") != "spoke" or not isinstance(hub, str) or not isinstance(cluster, str):
        print(
            f"fleet_hub_outputs.py: {spoke} is no spoke: Pulumi.{spoke}.yaml sets no fleet.role spoke with "
            "fleet.hubStack and fleet.clusterName",
            file=sys.stderr,
        )
        return 2
    report("ready", "false")
    try:
        deployed = outputs(hub)
    except StackUnreadable as error:
        print(unreadable(spoke, hub, error), file=sys.stderr)
        return 1
    heading = f"{spoke} (cluster {cluster}) reads from its hub's stack {hub}"
    print(f"{heading}\n{shown(hub, deployed, cluster)}")
    summarize(f"### {heading}\n\n```\n{shown(hub, deployed, cluster)}\n```")
    not_ready = why_not_ready(spoke, hub, cluster, deployed)
    if not_ready is None:
        report("ready", "true")
        return 0
    problem, fix = not_ready
    committed_hub = committed_fleet(short_name(hub))
    if preview and committed_hub.get("role") == "hub" and cluster in (committed_hub.get("spokes") or []):
        pending = (
            f"{spoke} is not previewed: {problem}, while this change's Pulumi.{short_name(hub)}.yaml admits it. "
            "A spoke's preview reads its hub as deployed; on merge, fleet.yml updates the hub before its spokes."
        )
        print(f"::warning::{pending}" if os.environ.get("GITHUB_ACTIONS") == "true" else pending)
        summarize(pending)
        return 0
    print(f"fleet_hub_outputs.py: {spoke} cannot be updated against its hub: {problem}; {fix}", file=sys.stderr)
    summarize(f"{spoke} cannot be updated against its hub: {problem}; {fix}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
