"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and doing what
delivery needs (previews on pull requests, up on merge, destroy by hand, e2e on kind)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / f"{name}.yml").read_text())


def triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as true


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def pulumi_steps(workflow: dict) -> list[dict]:
    return [s for s in steps(workflow) if s.get("uses", "").startswith("pulumi/actions@") and "command" in s["with"]]


def test_workflows_match_githubs_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_above_low():
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--min-severity", "medium", "--format", "plain", str(ROOT / ".github")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_catch_a_template_injection(tmp_path):
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    (bad / "bad.yml").write_text(
        "on: pull_request\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", str(tmp_path / ".github")], capture_output=True, text=True
    )
    assert result.returncode != 0 and "template-injection" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commits_and_permissions_are_least(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {}, "no default token permissions"
    for job in workflow["jobs"].values():
        assert set(job.get("permissions", {})) <= {"contents", "pull-requests"}
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_is_written_in_a_workflow(path):
    text = path.read_text()
    assert not re.search(r"(passphrase|token|password|kubeconfig)\s*:\s*['\"]?[A-Za-z0-9+/=_-]{12,}", text, re.I)
    for value in re.findall(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", text):
        assert value in {"PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG"}


def test_pull_requests_get_a_diff_of_every_environment_as_one_edited_comment():
    workflow = load("preview")
    assert triggers(workflow) == {"pull_request": {"branches": ["main"]}}
    job = workflow["jobs"]["preview"]
    environments = {p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")}
    assert set(job["strategy"]["matrix"]["stack"]) == environments
    (preview,) = pulumi_steps(workflow)
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["diff"] is True
    assert preview["with"]["comment-on-pr"] is True and preview["with"]["edit-pr-comment"] is True
    assert preview["with"]["policyPacks"] == "policy"
    assert job["permissions"]["pull-requests"] == "write"


def test_a_merge_to_main_updates_dev():
    workflow = load("deploy")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    (up,) = pulumi_steps(workflow)
    assert (up["with"]["command"], up["with"]["stack-name"]) == ("up", "dev")
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_destroy_is_manual_and_confirmed():
    workflow = load("destroy")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    assert workflow["jobs"]["destroy"]["if"] == "inputs.stack == inputs.confirm"
    (destroy,) = pulumi_steps(workflow)
    assert destroy["with"]["command"] == "destroy"


def test_the_e2e_workflow_runs_the_e2e_tests_on_kind():
    workflow = load("e2e")
    job_steps = steps(workflow)
    assert any(s.get("uses", "").startswith("helm/kind-action@") for s in job_steps)
    run = next(s for s in job_steps if "pytest tests/e2e" in s.get("run", ""))
    assert run["env"]["RUNTIME_DEFENSE_E2E"] == "1"
    kind = yaml.safe_load((ROOT / "tests" / "e2e" / "kind.yaml").read_text())
    assert kind["nodes"][0]["extraPortMappings"][0]["hostPort"] == 30300


def test_the_cli_version_matches_the_sdk():
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert (ROOT / ".pulumi.version").read_text().strip() == pinned
