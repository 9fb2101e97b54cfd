"""The fleet's stacks as the repository commits them (Pulumi.<stack>.yaml) and as a backend holds
them (their outputs), for the fleet's CI scripts: scripts/fleet_hub_outputs.py and
scripts/fleet_destroy_guard.py.

Outputs are read with `pulumi stack output --json`, never with --show-secrets: the CLI prints
every secret output (a spoke's credentials) as "[secret]".
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "runtime-defense"
FLEET_OUTPUT = "fleet"  # components/fleet_spoke.py FLEET_OUTPUT
CREDENTIALS_OUTPUT = "fleetSpokeCredentials"  # components/fleet_spoke.py CREDENTIALS_OUTPUT
SECRET = "[secret]"  # what `pulumi stack output` prints for a secret output


class StackUnreadable(Exception):
    """`pulumi stack output` failed: why, as the CLI said it."""


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


def committed_config(stack: str) -> dict[str, Any] | None:
    """The program's keys of a committed stack file, without the project prefix; None without one."""
    path = stack_file(stack)
    if not path.exists():
        return None
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)}


def committed_fleet(stack: str) -> dict[str, Any]:
    """A committed stack's ``fleet`` section ({} for a standalone stack or no file)."""
    section = (committed_config(stack) or {}).get("fleet")
    return section if isinstance(section, dict) else {}


def short_name(stack_reference: str) -> str:
    """The stack's own name in a reference: ``hub`` in ``organization/runtime-defense/hub``."""
    return stack_reference.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class CommittedSpoke:
    stack: str
    cluster: str
    hub_stack: str


def committed_spokes() -> list[CommittedSpoke]:
    """Every committed spoke stack, by its file."""
    spokes = []
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        fleet = committed_fleet(stack)
        if fleet.get("role") == "spoke":
            spokes.append(CommittedSpoke(stack, str(fleet.get("clusterName")), str(fleet.get("hubStack"))))
    return spokes


def outputs(stack: str) -> dict[str, Any]:
    """A stack's outputs as its backend holds them, secrets shown as "[secret]"."""
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StackUnreadable(done.stderr.strip() or f"`pulumi stack output` exited with {done.returncode}")
    try:
        found = json.loads(done.stdout or "{}")
    except json.JSONDecodeError as error:
        raise StackUnreadable(f"`pulumi stack output --json` printed no JSON ({error})") from error
    if not isinstance(found, dict):
        raise StackUnreadable(f"`pulumi stack output --json` printed {type(found).__name__}, not a map of outputs")
    return found
