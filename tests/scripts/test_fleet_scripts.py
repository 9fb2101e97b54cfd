"""scripts/fleet_destroy_guard.py and scripts/fleet_hub_outputs.py, run for real against a
stand-in `pulumi` that answers `pulumi stack output --json` as the CLI does (every secret output
"[secret]" unless --show-secrets) with what the program really exports for the committed fleet
(Pulumi.hub.yaml, its spokes), evaluated under mocks. The guard must stop before `pulumi destroy`
of a hub that still admits spokes, naming them and the steps that retire them, and let a spoke,
an empty hub or a standalone stack go; the spoke's view of its hub must show what it reads and
never a secret."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, ProgramRun, environment_config, run_program, stack_reference

from components.alerts import SPOKE_SILENT
from components.fleet_hub import GUARD
from components.fleet_spoke import CREDENTIALS_OUTPUT, FLEET_OUTPUT

HUB_STACK = "organization/runtime-defense/hub"  # the committed spokes' fleet.hubStack
SPOKES = ("spoke-a", "spoke-b")
SCRIPTS = ("fleet_stacks.py", "fleet_destroy_guard.py", "fleet_hub_outputs.py")

# `pulumi stack output --json --stack <stack>`, from $FAKE_STACKS: {stack: {"outputs": {...},
# "secret": [names]}} or {stack: {"error": "..."}}; every call logged to $FAKE_LOG.
FAKE_PULUMI = """
import json, os, shlex, sys

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(shlex.join(args) + "\\n")
stacks = json.load(open(os.environ["FAKE_STACKS"]))
if args[:2] != ["stack", "output"] or "--json" not in args:
    sys.exit(f"the stand-in pulumi knows no {shlex.join(args)!r}")
name = args[args.index("--stack") + 1]
stack = stacks.get(name)
if stack is None:
    sys.exit(f"error: no stack named '{name}' found")
if "error" in stack:
    sys.exit(stack["error"])
show = "--show-secrets" in args
print(json.dumps({k: v if show or k not in stack["secret"] else "[secret]" for k, v in stack["outputs"].items()}))
"""


def hub_config(spokes: list[str] | None = None) -> dict[str, Any]:
    config = environment_config("hub")
    if spokes is not None:
        config["fleet"] = {**config["fleet"], "spokes": spokes}
    return config


@pytest.fixture(scope="module")
def hub() -> ProgramRun:
    """The committed hub, as the program exports it."""
    return run_program(hub_config(), stack="hub")


@pytest.fixture(scope="module")
def hub_without_spoke_a() -> ProgramRun:
    """The committed hub, deployed before it admitted spoke-a."""
    return run_program(hub_config(spokes=["spoke-b"]), stack="hub")


def as_backend(run: ProgramRun) -> dict[str, Any]:
    """A stack as the stand-in's backend holds it: its exports, the secret ones named."""
    return {
        "outputs": {key: export.value for key, export in run.exports.items()},
        "secret": [key for key, export in run.exports.items() if export.secret],
    }


def secrets_of(stacks: Mapping[str, Any]) -> list[str]:
    """Every string inside a secret output of the stand-in's backend."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for stack in stacks.values():
        for name in stack.get("secret", []):
            walk(stack["outputs"][name])
    return found


def run_script(
    tmp_path: Path, script: str, args: list[str], stacks: Mapping[str, Any], repo: Path = ROOT, **env: str
) -> tuple[int, str, str, list[list[str]], dict[str, str]]:
    """(exit code, stdout, stderr, the stand-in's calls, what went to $GITHUB_OUTPUT and the summary)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!{sys.executable} -S\n{FAKE_PULUMI}")
    fake.chmod(0o755)
    (tmp_path / "stacks.json").write_text(json.dumps(stacks))
    log, github_output, summary = tmp_path / "calls.log", tmp_path / "github_output", tmp_path / "summary.md"
    for path in (log, github_output, summary):
        path.write_text("")
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_STACKS": str(tmp_path / "stacks.json"),
        "FAKE_LOG": str(log),
        "GITHUB_OUTPUT": str(github_output),
        "GITHUB_STEP_SUMMARY": str(summary),
        **env,
    }
    done = subprocess.run(
        [sys.executable, str(repo / "scripts" / script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    written = {"output": github_output.read_text(), "summary": summary.read_text()}
    return done.returncode, done.stdout, done.stderr, calls, written


def a_repository(tmp_path: Path) -> Path:
    """A copy of the scripts and the committed stack files, to change the files in."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for script in SCRIPTS:
        shutil.copy(ROOT / "scripts" / script, repo / "scripts" / script)
    for stack_file in ROOT.glob("Pulumi.*.yaml"):
        shutil.copy(stack_file, repo / stack_file.name)
    return repo


def test_the_scripts_name_what_the_program_names():
    """Outputs, the protected ConfigMap and the alert, as the program names them."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import fleet_destroy_guard
        import fleet_stacks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert (fleet_stacks.FLEET_OUTPUT, fleet_stacks.CREDENTIALS_OUTPUT) == (FLEET_OUTPUT, CREDENTIALS_OUTPUT)
    assert fleet_destroy_guard.GUARD_CONFIG_MAP == GUARD
    assert fleet_destroy_guard.SPOKE_SILENT_ALERT == SPOKE_SILENT


# -- the destroy guard ------------------------------------------------------------------------


def test_a_hub_that_admits_spokes_is_not_destroyed_and_says_what_would_break_and_what_to_do(tmp_path, hub):
    stacks = {"hub": as_backend(hub)}
    code, out, err, calls, written = run_script(tmp_path, "fleet_destroy_guard.py", ["hub"], stacks)
    assert code == 1 and out == ""
    fleet = hub.exports[FLEET_OUTPUT].value
    assert fleet["spokes"] == list(SPOKES)
    lines = err.splitlines()
    assert lines[0] == (
        "Not destroying stack hub: it is the hub of a fleet (cluster hub) and still admits 2 spokes, which read its "
        "stack and send it everything they collect:"
    )
    assert lines[1:3] == [f"  - {spoke}: stack {spoke} (Pulumi.{spoke}.yaml)" for spoke in SPOKES]
    # What it would break: where the spokes send, and the program's own protection.
    assert f"push to {fleet['endpoints']['logs']} and {fleet['endpoints']['metrics']} would find no hub" in lines[3]
    logging = hub_config().get("namespaces", {}).get("logging", "logging")
    assert f"`pulumi destroy` would also stop on the protected ConfigMap {logging}/{GUARD}." in lines[3]
    # The steps, in order: retire the spokes, drop them from fleet.spokes and update the hub, destroy.
    assert lines[4] == "To destroy the hub:"
    assert [line[:5] for line in lines[5:]] == ["  1. ", "  2. ", "  3. "]
    assert "destroy.yml with stack spoke-a, then spoke-b" in lines[5]
    assert lines[6].startswith("  2. Remove spoke-a, spoke-b from fleet.spokes in Pulumi.hub.yaml and `pulumi up`")
    assert "revokes their credentials" in lines[6] and f"{logging}/{GUARD}" in lines[6]
    assert lines[7] == "  3. Destroy the hub again (destroy.yml with stack hub)."
    assert written["summary"].startswith("### Not destroying stack hub\n")
    # It only read the hub's outputs, secrets hidden, and none reached its output.
    assert calls == [["stack", "output", "--json", "--stack", "hub"]]
    leaked = secrets_of(stacks)
    assert leaked and not [secret for secret in leaked if secret in err + written["summary"]]


def test_a_hub_that_admits_no_spoke_is_destroyed(tmp_path):
    empty = run_program(hub_config(spokes=[]), stack="hub")
    assert empty.exports[FLEET_OUTPUT].value["spokes"] == []
    code, out, err, _, _ = run_script(tmp_path, "fleet_destroy_guard.py", ["hub"], {"hub": as_backend(empty)})
    assert code == 0, err
    assert out == "Stack hub is a hub (cluster hub) that admits no spoke: its destroy cuts none off.\n"


def test_a_spokes_destroy_reads_nothing_of_its_hub_and_leaves_it_alone(tmp_path, hub):
    spoke = run_program(environment_config("spoke-a"), stack="spoke-a", reads=stack_reference(hub, HUB_STACK))
    # Only the spoke is on the stand-in's backend: reading the hub would fail.
    code, out, err, calls, _ = run_script(
        tmp_path, "fleet_destroy_guard.py", ["spoke-a"], {"spoke-a": as_backend(spoke)}
    )
    assert code == 0, err
    assert calls == [["stack", "output", "--json", "--stack", "spoke-a"]]
    assert out.startswith(
        f"Stack spoke-a is a spoke (cluster spoke-a) of the hub {HUB_STACK}: `pulumi destroy` removes only what this "
        "stack deployed on its own cluster and reads nothing of the hub; the hub and the other spokes are untouched."
    )
    assert f"raises '{SPOKE_SILENT}' for it until you remove spoke-a from the hub's fleet.spokes" in out


@pytest.mark.parametrize(
    "outputs",
    [{}, {"profile": "current", "grafanaAdminPassword": "s3cr3t-admin"}],
    ids=["nothing deployed", "standalone"],
)
def test_a_stack_outside_any_fleet_is_destroyed(tmp_path, outputs):
    stacks = {"prod": {"outputs": outputs, "secret": [k for k in outputs if k == "grafanaAdminPassword"]}}
    code, out, err, _, _ = run_script(tmp_path, "fleet_destroy_guard.py", ["prod"], stacks)
    assert code == 0, err
    assert "exports no `fleet` output" in out and "touches no other stack" in out
    assert "s3cr3t-admin" not in out


def test_a_stack_whose_outputs_cannot_be_read_is_not_destroyed(tmp_path):
    error = "error: failed to decrypt: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE"
    code, out, err, _, _ = run_script(tmp_path, "fleet_destroy_guard.py", ["hub"], {"hub": {"error": error}})
    assert code == 1 and out == ""
    assert err.startswith("Not destroying stack hub: its outputs cannot be read, so whether spokes depend on it is")
    assert error in err


def test_an_admitted_spoke_without_a_stack_file_here_is_still_named(tmp_path):
    run = run_program(hub_config(spokes=["spoke-a", "edge-7"]), stack="hub")
    code, _, err, _, _ = run_script(tmp_path, "fleet_destroy_guard.py", ["hub"], {"hub": as_backend(run)})
    assert code == 1
    assert "  - edge-7: no stack file here names it (fleet.clusterName); its stack is deployed elsewhere" in err
    assert "(destroy.yml with stack spoke-a; edge-7 where deployed)" in err


def test_the_guard_needs_a_stack(tmp_path):
    code, _, err, calls, _ = run_script(tmp_path, "fleet_destroy_guard.py", [], {})
    assert code == 2 and "usage: fleet_destroy_guard.py <stack>" in err and calls == []


# -- what a spoke reads from its hub ----------------------------------------------------------


@pytest.mark.parametrize("spoke", SPOKES)
def test_a_spoke_shows_what_it_reads_from_its_hub_and_never_a_secret(tmp_path, hub, spoke):
    stacks = {HUB_STACK: as_backend(hub)}
    code, out, err, calls, written = run_script(tmp_path, "fleet_hub_outputs.py", ["--preview", spoke], stacks)
    assert code == 0, err
    assert calls == [["stack", "output", "--json", "--stack", HUB_STACK]]
    fleet = hub.exports[FLEET_OUTPUT].value
    assert out.startswith(
        f"{spoke} (cluster {spoke}) reads from its hub's stack {HUB_STACK}\n"
        f"`pulumi stack output fleet --stack {HUB_STACK}`:\n{json.dumps(fleet, indent=2, sort_keys=True)}\n"
    )
    assert f"`{CREDENTIALS_OUTPUT}`: [secret] (the program takes {spoke}'s password from it; never shown)" in out
    assert hub.exports[CREDENTIALS_OUTPUT].secret
    leaked = secrets_of(stacks)
    assert leaked and not [secret for secret in leaked if secret in out + err + written["summary"]]
    assert written["output"].splitlines()[-1] == "ready=true"


def test_a_spoke_its_deployed_hub_does_not_admit_is_not_updated(tmp_path, hub_without_spoke_a):
    code, _, err, _, written = run_script(
        tmp_path, "fleet_hub_outputs.py", ["spoke-a"], {HUB_STACK: as_backend(hub_without_spoke_a)}
    )
    assert code == 1
    assert err == (
        f"fleet_hub_outputs.py: spoke-a cannot be updated against its hub: the hub {HUB_STACK} does not admit "
        "spoke-a (its fleet.spokes: spoke-b); add spoke-a to fleet.spokes in Pulumi.hub.yaml and `pulumi up` the "
        "hub first\n"
    )
    assert written["output"].splitlines() == ["ready=false"]


@pytest.mark.parametrize("deployed", ["not admitted yet", "hub not deployed yet"])
def test_the_preview_of_a_spoke_this_change_admits_is_skipped_and_says_why(tmp_path, hub_without_spoke_a, deployed):
    """The pull request admits spoke-a in Pulumi.hub.yaml; the deployed hub does not yet."""
    outputs = as_backend(hub_without_spoke_a) if deployed.startswith("not") else {}
    stacks = {HUB_STACK: outputs or {"outputs": {}, "secret": []}}
    code, out, err, _, written = run_script(
        tmp_path, "fleet_hub_outputs.py", ["--preview", "spoke-a"], stacks, GITHUB_ACTIONS="true"
    )
    assert code == 0, err
    (warning,) = [line for line in out.splitlines() if line.startswith("::warning::")]
    assert warning.startswith("::warning::spoke-a is not previewed: ")
    assert warning.endswith(
        "while this change's Pulumi.hub.yaml admits it. A spoke's preview reads its hub as deployed; on merge, "
        "fleet.yml updates the hub before its spokes."
    )
    assert written["output"].splitlines() == ["ready=false"]
    # Without --preview (an update after the hub's), the same is a failure.
    code, _, err, _, _ = run_script(tmp_path, "fleet_hub_outputs.py", ["spoke-a"], stacks)
    assert code == 1 and "spoke-a cannot be updated against its hub" in err


def test_the_preview_of_a_spoke_no_hub_admits_fails(tmp_path, hub_without_spoke_a):
    repo = a_repository(tmp_path)
    hub_file = repo / "Pulumi.hub.yaml"
    hub_file.write_text(hub_file.read_text().replace("      - spoke-a\n", ""))
    code, _, err, _, _ = run_script(
        tmp_path,
        "fleet_hub_outputs.py",
        ["--preview", "spoke-a"],
        {HUB_STACK: as_backend(hub_without_spoke_a)},
        repo=repo,
    )
    assert code == 1
    assert "does not admit spoke-a (its fleet.spokes: spoke-b); add spoke-a to fleet.spokes in Pulumi.hub.yaml" in err


def test_a_hub_the_spoke_cannot_read_is_explained(tmp_path):
    error = "error: failed to decrypt: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE"
    code, out, err, _, _ = run_script(tmp_path, "fleet_hub_outputs.py", ["spoke-a"], {HUB_STACK: {"error": error}})
    assert code == 1 and out == ""
    assert error in err
    assert "give the environment of spoke-a the hub's backend (PULUMI_BACKEND_URL" in err
    assert "the hub's PULUMI_CONFIG_PASSPHRASE" in err


def test_only_a_spoke_reads_a_hub(tmp_path):
    code, _, err, calls, _ = run_script(tmp_path, "fleet_hub_outputs.py", ["hub"], {})
    assert code == 2 and "hub is no spoke" in err and calls == []
