"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and doing what
delivery needs. Every workflow's target is reachable from where it runs (a kind cluster made in
the job, or prod from a runner inside its network), no secret reaches code nobody approved,
and the mTLS certificates are renewed on a schedule."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from harness import ENVIRONMENTS, ROOT, environment_config

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
PROD_RUNNER = "runtime-defense-prod"  # the label of the self-hosted runners inside prod's network
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
# Environments, as configured in the repository settings (README, "GitHub Actions").
REVIEWED = {"prod-preview"}  # required reviewers: may run a pull request's code
MAIN_ONLY = {"prod"}  # deployment branches: main only


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / f"{name}.yml").read_text())


def all_workflows() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in WORKFLOWS}


def triggers(workflow: dict) -> dict:
    return workflow[True]  # YAML 1.1 reads the key `on` as true


def steps(job: dict) -> list[dict]:
    return job["steps"]


def pulumi_steps(job: dict) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@") and "command" in s["with"]]


def jobs_running_pulumi() -> list[tuple[str, str, dict]]:
    return [
        (name, job_name, job)
        for name, workflow in all_workflows().items()
        for job_name, job in workflow["jobs"].items()
        if pulumi_steps(job) or any("pytest tests/e2e" in s.get("run", "") for s in steps(job))
    ]


def uses_secrets(job: dict) -> bool:
    return "secrets." in yaml.safe_dump(job)


# -- GitHub's schema, zizmor ------------------------------------------------------------------


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


# -- no secret reaches unapproved code --------------------------------------------------------


def test_no_workflow_runs_a_pull_requests_code_with_the_base_repositorys_privileges():
    for name, workflow in all_workflows().items():
        assert not {"pull_request_target", "workflow_run"} & set(triggers(workflow)), name


def test_pull_request_jobs_get_secrets_only_after_review_and_never_for_forks():
    for name, workflow in all_workflows().items():
        if "pull_request" not in triggers(workflow):
            continue
        for job_name, job in workflow["jobs"].items():
            if not uses_secrets(job):
                continue
            assert job.get("environment") in REVIEWED, f"{name}/{job_name}: secrets without required reviewers"
            assert job.get("if") == SAME_REPOSITORY, f"{name}/{job_name}: secrets for a fork's code"


def test_main_only_environments_never_run_a_pull_request():
    for name, workflow in all_workflows().items():
        for job_name, job in workflow["jobs"].items():
            if job.get("environment") in MAIN_ONLY:
                assert "pull_request" not in triggers(workflow), f"{name}/{job_name}"
                if "push" in triggers(workflow):
                    assert triggers(workflow)["push"] == {"branches": ["main"]}, f"{name}/{job_name}"


def test_every_pull_request_runs_the_readmes_test_command_without_secrets():
    workflow = load("test")
    assert "pull_request" in triggers(workflow) and triggers(workflow)["pull_request"] is None  # every PR, forks too
    job = workflow["jobs"]["test"]
    assert not uses_secrets(workflow) and not any("environment" in j for j in workflow["jobs"].values())
    assert [s["run"] for s in steps(job) if "run" in s] == ["scripts/test.sh"]
    assert "\nscripts/test.sh\n" in (ROOT / "README.md").read_text()


# -- every target reachable from its runner ---------------------------------------------------


def kind_cluster(job: dict) -> str | None:
    kind = [s for s in steps(job) if s.get("uses", "").startswith("helm/kind-action@")]
    return f"kind-{kind[0]['with']['cluster_name']}" if kind else None


def kind_node_port() -> int:
    kind = yaml.safe_load((ROOT / "tests" / "e2e" / "kind.yaml").read_text())
    return kind["nodes"][0]["extraPortMappings"][0]["hostPort"]


def test_every_job_that_deploys_or_previews_reaches_its_cluster():
    """A kind cluster made in the job (dev's configuration, a local backend), or prod from a
    runner inside its network. Nothing targets dev's minikube, which only its workstation reaches."""
    found = jobs_running_pulumi()
    assert len(found) >= 6
    for name, job_name, job in found:
        where = f"{name}/{job_name}"
        if kind_cluster(job):
            assert job["runs-on"].startswith("ubuntu-"), where
            assert not uses_secrets(job), f"{where}: a kind job needs no secret"
            configure = [s for s in steps(job) if "ci-configure-stack.sh" in s.get("run", "")]
            if configure:  # previews through the CLI: the stack points at the job's cluster and Grafana
                (step,) = configure
                assert step["env"]["KUBE_CONTEXT"] == kind_cluster(job), where
                assert step["env"]["GRAFANA_URL"] == f"http://localhost:{kind_node_port()}", where
                backend = next(s for s in steps(job) if "PULUMI_BACKEND_URL=file://" in s.get("run", ""))
                assert "openssl rand" in backend["run"], f"{where}: a throwaway passphrase"
            else:
                e2e = next(s for s in steps(job) if "pytest tests/e2e" in s.get("run", ""))
                assert e2e["env"]["RUNTIME_DEFENSE_E2E_CONTEXT"] == kind_cluster(job), where
                assert e2e["env"]["RUNTIME_DEFENSE_E2E_GRAFANA_URL"] == f"http://localhost:{kind_node_port()}"
        else:
            assert job["runs-on"] == ["self-hosted", "linux", PROD_RUNNER], where
            assert job["environment"] in REVIEWED | MAIN_ONLY, where
            assert {s["with"]["stack-name"] for s in pulumi_steps(job)} == {"prod"}, where


def configure_script(tmp_path, reachable: bool) -> tuple[Path, dict]:
    """scripts/ci-configure-stack.sh's environment, with stand-ins for `pulumi` (recording its
    arguments and stdin) and `kubectl` (the API server answering or not)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    (bin_dir / "pulumi").write_text(f'#!/bin/sh\necho "pulumi $*" >>{log}\n[ -t 0 ] || sed "s/^/  stdin: /" >>{log}\n')
    (bin_dir / "kubectl").write_text(f'#!/bin/sh\necho "kubectl $*" >>{log}\nexit {0 if reachable else 1}\n')
    for tool in ("pulumi", "kubectl"):
        (bin_dir / tool).chmod(stat.S_IRWXU)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PULUMI_BACKEND_URL": "s3://state-bucket"}
    return log, env


def test_without_an_explicit_backend_nothing_is_configured(tmp_path):
    """The project's own backend is a directory beside the program (Pulumi.yaml): in CI the
    state would land on the runner's disk and vanish with it."""
    log, env = configure_script(tmp_path, reachable=True)
    del env["PULUMI_BACKEND_URL"]
    result = subprocess.run(
        [ROOT / "scripts" / "ci-configure-stack.sh", "prod"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "PULUMI_BACKEND_URL is not set" in result.stderr
    assert not log.exists()


def test_every_job_that_configures_a_stack_names_its_backend():
    for name in ("preview", "deploy", "renew", "destroy"):
        for job_name, job in load(name)["jobs"].items():
            if not any("ci-configure-stack.sh" in str(step.get("run", "")) for step in steps(job)):
                continue
            exported = any("PULUMI_BACKEND_URL=" in str(step.get("run", "")) for step in steps(job))
            assert exported or "PULUMI_BACKEND_URL" in (job.get("env") or {}), f"{name}.{job_name}"


def test_the_stack_is_pointed_at_its_cluster_and_the_kubeconfig_never_reaches_a_command_line(tmp_path):
    log, env = configure_script(tmp_path, reachable=True)
    env.update(KUBECONFIG_CONTENT="apiVersion: v1\nkind: Config\n", KUBE_CONTEXT="production", GRAFANA_URL="https://g")
    result = subprocess.run(
        [ROOT / "scripts" / "ci-configure-stack.sh", "prod"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert "pulumi config set --secret runtime-defense:kubeconfig\n  stdin: apiVersion: v1\n" in calls
    assert "pulumi config set runtime-defense:kubeContext production" in calls
    assert "pulumi config set --path runtime-defense:grafana.url https://g" in calls
    assert re.search(r"kubectl --kubeconfig \S+ --context production get --raw /readyz", calls)
    assert not [
        line for line in calls.splitlines() if line.startswith(("pulumi", "kubectl")) and "kind: Config" in line
    ]


def test_a_runner_that_cannot_reach_the_cluster_fails_before_any_update(tmp_path):
    log, env = configure_script(tmp_path, reachable=False)
    env.update(KUBE_CONTEXT="kind-runtime-defense")
    env.pop("KUBECONFIG_CONTENT", None)
    result = subprocess.run(
        [ROOT / "scripts" / "ci-configure-stack.sh", "dev"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "cannot reach the Kubernetes API of stack dev (context kind-runtime-defense)" in result.stderr
    assert "runtime-defense:kubeconfig" not in log.read_text()  # the runner's own kubeconfig (kind's)


# -- what each workflow does ------------------------------------------------------------------


def test_pull_requests_get_a_preview_of_dev_on_kind_and_of_prod_after_review():
    workflow = load("preview")
    assert triggers(workflow) == {"pull_request": {"branches": ["main"]}}
    kind, prod = workflow["jobs"]["kind"], workflow["jobs"]["prod"]
    assert prod["needs"] == "kind"  # reviewers are asked only once the code previews on kind
    for job, stack in ((kind, "dev"), (prod, "prod")):
        (preview,) = pulumi_steps(job)
        assert preview["with"]["command"] == "preview" and preview["with"]["stack-name"] == stack
        assert preview["with"]["diff"] is True and preview["with"]["policyPacks"] == "policy"
        assert preview["with"]["edit-pr-comment"] is True and preview["with"]["comment-on-summary"] is True
        assert job["permissions"]["pull-requests"] == "write"
    # A fork's token cannot comment; its preview is in the job summary.
    assert kind["steps"][-1]["with"]["comment-on-pr"] == f"${{{{ {SAME_REPOSITORY} }}}}"
    assert set(ENVIRONMENTS) == {"dev", "prod"}


def test_a_merge_to_main_updates_prod_with_the_policy_pack():
    workflow = load("deploy")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    (up,) = pulumi_steps(workflow["jobs"]["up"])
    assert (up["with"]["command"], up["with"]["stack-name"], up["with"]["policyPacks"]) == ("up", "prod", "policy")


def test_updates_of_prod_never_run_at_once_nor_stop_half_way():
    groups = {name: load(name)["concurrency"] for name in ("deploy", "renew", "destroy")}
    assert {g["group"] for g in groups.values()} == {"prod"}
    assert all(g["cancel-in-progress"] is False for g in groups.values())


def test_certificates_are_renewed_on_a_schedule_without_a_person():
    workflow = load("renew")
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    (cron,) = (entry["cron"] for entry in triggers(workflow)["schedule"])
    minute, hour, day, month, weekday = cron.split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"), "once a day"
    # Many runs fall inside the shortest renewal window of the committed stacks.
    windows = [environment_config(s).get("pki", {}).get("earlyRenewalHours", 720) for s in ("dev", "prod")]
    assert min(windows) >= 7 * 24
    job = workflow["jobs"]["up"]
    assert job["environment"] in MAIN_ONLY  # no reviewer to wait for
    (up,) = pulumi_steps(job)
    assert (up["with"]["command"], up["with"]["stack-name"], up["with"]["policyPacks"]) == ("up", "prod", "policy")
    # ... and it never rebuilds a stack someone destroyed on purpose.
    assert up["if"] == "steps.state.outputs.deployed == 'true'"
    check = next(s for s in steps(job) if s.get("id") == "state")
    assert "pulumi stack export --stack prod" in check["run"]


def test_destroy_is_manual_and_confirmed():
    workflow = load("destroy")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    job = workflow["jobs"]["destroy"]
    assert job["if"] == "inputs.confirm == 'prod'"
    (destroy,) = pulumi_steps(job)
    assert (destroy["with"]["command"], destroy["with"]["stack-name"]) == ("destroy", "prod")


def test_the_e2e_workflow_runs_the_e2e_tests_on_kind():
    workflow = load("e2e")
    job_steps = [s for job in workflow["jobs"].values() for s in steps(job)]
    assert any(s.get("uses", "").startswith("helm/kind-action@") for s in job_steps)
    run = next(s for s in job_steps if "pytest tests/e2e" in s.get("run", ""))
    assert run["env"]["RUNTIME_DEFENSE_E2E"] == "1"
    assert kind_node_port() == 30300


def test_the_cli_version_matches_the_sdk():
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert (ROOT / ".pulumi.version").read_text().strip() == pinned
