"""The GitHub workflows: valid against GitHub's schema, clean under zizmor, and doing what
delivery needs. Every workflow's target is reachable from where it runs (a kind cluster made in
the job, or a stack from a runner inside its cluster's network), no secret reaches code nobody
approved or a log, each stack has environments of its own, a fleet's hub is updated before its
spokes and never destroyed while it admits any, and the mTLS certificates are renewed on a
schedule."""

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import ENVIRONMENTS, ROOT, environment_config, run_program

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def committed_fleet() -> tuple[str, list[str]]:
    """The committed fleet: its hub's stack and its spokes' stacks (Pulumi.<stack>.yaml by fleet.role)."""
    roles: dict[str, list[str]] = {"hub": [], "spoke": []}
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        role = (environment_config(stack).get("fleet") or {}).get("role")
        if role in roles:
            roles[role].append(stack)
    (hub,) = roles["hub"]
    assert roles["spoke"], "the committed fleet has spokes"
    return hub, roles["spoke"]


HUB, SPOKES = committed_fleet()
# The stacks CI deploys, each from a self-hosted runner inside its cluster's network labelled
# runtime-defense-<stack>, through an environment of its own (docs/delivery.md, GitHub Actions):
# <stack> (deployment branches main only, no reviewers) and <stack>-preview (required reviewers:
# may run a pull request's code). dev is deployed from a workstation, its configuration on kind.
CI_STACKS = ("prod", HUB, *SPOKES)
REVIEWED = {f"{stack}-preview" for stack in CI_STACKS}
MAIN_ONLY = set(CI_STACKS)
SECRETS = {"PULUMI_BACKEND_URL", "PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG"}


def runner(stack: str) -> list[str]:
    return ["self-hosted", "linux", f"runtime-defense-{stack}"]


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


def stack_options(workflow: dict) -> list[str] | None:
    """A by-hand workflow's choice of stack (its `stack` input), if it has one."""
    dispatch = triggers(workflow).get("workflow_dispatch") or {}
    stack = (dispatch.get("inputs") or {}).get("stack")
    return stack["options"] if stack else None


def concrete_jobs(workflow: dict) -> Iterator[tuple[str, dict]]:
    """Each job as it runs: once per stack of its matrix (``matrix.stack``) or of the workflow's
    stack input (``inputs.stack``), that stack's name written in."""
    for name, job in workflow["jobs"].items():
        text = yaml.safe_dump(job)
        stacks = (job.get("strategy") or {}).get("matrix", {}).get("stack")
        if stacks is not None:
            placeholder = "${{ matrix.stack }}"
        elif "${{ inputs.stack }}" in text:
            stacks, placeholder = stack_options(workflow), "${{ inputs.stack }}"
            assert stacks, f"{name}: inputs.stack without a choice of stacks"
        else:
            yield name, job
            continue
        assert stacks, f"{name}: an empty matrix of stacks"
        for stack in stacks:
            yield f"{name}[{stack}]", yaml.safe_load(text.replace(placeholder, stack))


def stack_of(job: dict) -> str:
    """The one stack a concrete job previews, updates or destroys."""
    (stack,) = {s["with"]["stack-name"] for s in pulumi_steps(job)}
    return stack


def jobs_running_pulumi() -> list[tuple[str, str, dict]]:
    return [
        (name, job_name, job)
        for name, workflow in all_workflows().items()
        for job_name, job in concrete_jobs(workflow)
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
def test_no_secret_is_written_in_a_workflow_nor_shown_in_its_logs(path):
    text = path.read_text()
    assert not re.search(r"(passphrase|token|password|kubeconfig)\s*:\s*['\"]?[A-Za-z0-9+/=_-]{12,}", text, re.I)
    for value in re.findall(r"\$\{\{\s*secrets\.(\w+)\s*\}\}", text):
        assert value in SECRETS
    # Stack outputs hold secrets (the hub's spoke credentials, Grafana's admin password): no step
    # asks the CLI for them in plain text, and every update keeps its outputs out of the log.
    assert "show-secrets" not in text
    for job_name, job in yaml.safe_load(text)["jobs"].items():
        for step in pulumi_steps(job):
            if step["with"]["command"] in ("up", "destroy"):
                assert step["with"].get("suppress-outputs") is True, f"{path.name}/{job_name}"


# -- no secret reaches unapproved code --------------------------------------------------------


def test_no_workflow_runs_a_pull_requests_code_with_the_base_repositorys_privileges():
    for name, workflow in all_workflows().items():
        assert not {"pull_request_target", "workflow_run"} & set(triggers(workflow)), name


def test_pull_request_jobs_get_secrets_only_after_review_and_never_for_forks():
    for name, workflow in all_workflows().items():
        if "pull_request" not in triggers(workflow):
            continue
        for job_name, job in concrete_jobs(workflow):
            if not uses_secrets(job):
                continue
            assert job.get("environment") in REVIEWED, f"{name}/{job_name}: secrets without required reviewers"
            assert job.get("if") == SAME_REPOSITORY, f"{name}/{job_name}: secrets for a fork's code"


def test_main_only_environments_never_run_a_pull_request():
    for name, workflow in all_workflows().items():
        for job_name, job in concrete_jobs(workflow):
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
    """A kind cluster made in the job (dev's configuration, a local backend), or a stack from a
    runner inside its cluster's network, through that stack's own environment. Nothing targets
    dev's minikube, which only its workstation reaches."""
    found = jobs_running_pulumi()
    assert len(found) >= 6 + 2 * 2 * len(SPOKES)
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
            stack = stack_of(job)
            assert stack in CI_STACKS, where
            assert job["runs-on"] == runner(stack), where
            assert job["environment"] in (stack, f"{stack}-preview"), where
            (configure,) = [s for s in steps(job) if "ci-configure-stack.sh" in s.get("run", "")]
            named = configure["run"].split("ci-configure-stack.sh ", 1)[1].strip()
            assert stack in (named, configure.get("env", {}).get("STACK")), f"{where}: configures {named}"


def configure_script(tmp_path, reachable: bool, role: str | None = None) -> tuple[Path, dict]:
    """scripts/ci-configure-stack.sh's environment, with stand-ins for `pulumi` (recording its
    arguments and stdin, and answering the stack's fleet.role with ``role``, or as for a key that
    is not set) and `kubectl` (the API server answering or not)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    role_answer = f"echo {role}; exit 0" if role else "echo 'error: configuration key not found' >&2; exit 255"
    (bin_dir / "pulumi").write_text(
        f'#!/bin/sh\necho "pulumi $*" >>{log}\n[ -t 0 ] || sed "s/^/  stdin: /" >>{log}\n'
        f'if [ "$*" = "config get --path runtime-defense:fleet.role" ]; then {role_answer}; fi\n'
    )
    (bin_dir / "kubectl").write_text(f'#!/bin/sh\necho "kubectl $*" >>{log}\nexit {0 if reachable else 1}\n')
    for tool in ("pulumi", "kubectl"):
        (bin_dir / tool).chmod(stat.S_IRWXU)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PULUMI_BACKEND_URL": "s3://state-bucket"}
    return log, env


def configure(stack: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROOT / "scripts" / "ci-configure-stack.sh", stack],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


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
    for name in ("preview", "deploy", "renew", "fleet", "destroy"):
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


def test_a_spoke_is_configured_without_grafana(tmp_path):
    """A spoke runs no Grafana, and the program refuses grafana.url there: a GRAFANA_URL that
    reaches its environment (a repository-wide variable does) is not written into the stack."""
    spoke = SPOKES[0]
    log, env = configure_script(tmp_path, reachable=True, role="spoke")
    env.update(KUBECONFIG_CONTENT="apiVersion: v1\nkind: Config\n", KUBE_CONTEXT=spoke, GRAFANA_URL="https://g")
    result = configure(spoke, env)
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert f"pulumi config set runtime-defense:kubeContext {spoke}" in calls
    assert "runtime-defense:kubeconfig" in calls
    assert "grafana.url" not in calls
    assert f"stack {spoke} is a fleet spoke, which runs no Grafana: GRAFANA_URL not used" in result.stderr
    refused = run_program(
        {**environment_config(spoke), "grafana": {"url": "https://g"}}, stack=spoke, expect_error=True
    )
    assert "runtime-defense:grafana = " in str(refused.error) and "a spoke runs no Grafana" in str(refused.error)


def test_a_hub_without_grafana_url_reaches_its_grafana_at_its_ingress(tmp_path):
    log, env = configure_script(tmp_path, reachable=True, role="hub")
    env.update(KUBE_CONTEXT=HUB)
    env.pop("GRAFANA_URL", None)
    result = configure(HUB, env)
    assert result.returncode == 0, result.stderr
    assert "grafana.url" not in log.read_text()
    assert "the program reaches the hub's Grafana at its Ingress (monitoring.grafanaIngress.host)" in result.stderr
    # ... as the program does with the committed hub.
    hub = environment_config(HUB)
    assert "grafana" not in hub
    run = run_program(hub, stack=HUB)
    host = hub["monitoring"]["grafanaIngress"]["host"]
    assert run.exports["grafanaUrl"].value == f"https://{host}"
    assert run.exports["grafanaUrlSource"].value == "monitoring.grafanaIngress.host"
    # A GRAFANA_URL given to the hub's environment still wins, as for any stack with a Grafana.
    log.unlink()
    env["GRAFANA_URL"] = "https://grafana.internal:8443"
    assert configure(HUB, env).returncode == 0
    assert "pulumi config set --path runtime-defense:grafana.url https://grafana.internal:8443" in log.read_text()


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


def step_running(job: dict, script: str) -> tuple[int, dict]:
    """The one step of ``job`` that runs ``script``, and its place."""
    (found,) = [(i, s) for i, s in enumerate(steps(job)) if script in s.get("run", "")]
    return found


def step_index(job: dict, step: dict) -> int:
    return steps(job).index(step)


def waits_for_success(job: dict) -> bool:
    """A job with `needs` runs only when those succeeded, unless its `if` says otherwise."""
    return not re.search(r"\b(always|failure|cancelled)\(", str(job.get("if", "")))


def test_pull_requests_preview_the_fleets_hub_then_each_spoke_after_review():
    workflow = load("preview")
    hub, spokes = workflow["jobs"]["hub"], workflow["jobs"]["spokes"]
    assert hub["needs"] == "kind" and spokes["needs"] == "hub"  # kind, then the hub, then the spokes
    assert waits_for_success(spokes)
    assert hub["if"] == spokes["if"] == SAME_REPOSITORY
    assert stack_of(hub) == HUB
    assert spokes["strategy"]["matrix"]["stack"] == SPOKES  # every committed spoke, and only those
    assert spokes["strategy"]["fail-fast"] is False
    for job_name, job in concrete_jobs(workflow):
        if not job_name.startswith(("hub", "spokes")):
            continue
        stack = stack_of(job)
        assert job["environment"] == f"{stack}-preview", job_name  # its own, with required reviewers
        (preview,) = pulumi_steps(job)
        assert preview["with"]["command"] == "preview" and preview["with"]["diff"] is True
        assert preview["with"]["policyPacks"] == "policy"
        assert preview["with"]["comment-on-pr"] is True and preview["with"]["edit-pr-comment"] is True
        assert preview["with"]["comment-on-summary"] is True
        assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
        if stack == HUB:
            continue
        # A spoke shows what it reads from the hub (never a secret: tests/scripts/test_fleet_scripts.py)
        # once its backend is selected, and previews only when the deployed hub admits it.
        configure, _ = step_running(job, "ci-configure-stack.sh")
        index, reads = step_running(job, "scripts/fleet_hub_outputs.py")
        assert reads["run"] == 'venv/bin/python scripts/fleet_hub_outputs.py --preview "$STACK"'
        assert reads["env"] == {"STACK": stack}
        assert configure < index < step_index(job, preview)
        assert preview["if"] == f"steps.{reads['id']}.outputs.ready == 'true'"
        assert "GRAFANA_URL" not in steps(job)[configure].get("env", {})  # a spoke runs no Grafana


def test_a_merge_to_main_updates_prod_with_the_policy_pack():
    workflow = load("deploy")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}
    (up,) = pulumi_steps(workflow["jobs"]["up"])
    assert (up["with"]["command"], up["with"]["stack-name"], up["with"]["policyPacks"]) == ("up", "prod", "policy")


def test_updates_of_a_stack_never_run_at_once_nor_stop_half_way():
    """Every update and destroy of a stack shares one concurrency group named after the stack,
    whichever workflow runs it, and none is cancelled half way."""
    groups: dict[str, set[str]] = {}
    for name, workflow in all_workflows().items():
        for job_name, job in concrete_jobs(workflow):
            changing = [s for s in pulumi_steps(job) if s["with"]["command"] in ("up", "destroy")]
            if not changing:
                continue
            stack = stack_of(job)
            concurrency = job.get("concurrency") or workflow["concurrency"]
            group = concurrency["group"].replace("${{ inputs.stack }}", stack)
            assert group == stack, f"{name}/{job_name}"
            assert concurrency["cancel-in-progress"] is False, f"{name}/{job_name}"
            groups.setdefault(stack, set()).add(name)
    assert groups == {
        "prod": {"deploy", "renew", "destroy"},
        **{stack: {"fleet", "destroy"} for stack in (HUB, *SPOKES)},
    }


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


def test_the_fleet_is_updated_hub_first_then_each_spoke_once_the_hubs_update_succeeded():
    workflow = load("fleet")
    assert triggers(workflow) == {
        "push": {"branches": ["main"]},
        "schedule": triggers(load("renew"))["schedule"],  # one renewal time for every stack
        "workflow_dispatch": None,
    }
    hub, spokes = workflow["jobs"]["hub"], workflow["jobs"]["spokes"]
    assert "needs" not in hub and spokes["needs"] == "hub" and waits_for_success(spokes)
    assert stack_of(hub) == HUB
    assert spokes["strategy"]["matrix"]["stack"] == SPOKES  # every committed spoke, and only those
    assert spokes["strategy"]["fail-fast"] is False
    # ... each a spoke of that hub, which admits it: otherwise the merge that deploys the hub
    # would fail on the spoke (a retired spoke leaves the matrices and its file goes).
    admitted = environment_config(HUB)["fleet"]["spokes"]
    for spoke in SPOKES:
        fleet = environment_config(spoke)["fleet"]
        assert fleet["hubStack"].rsplit("/", 1)[-1] == HUB and fleet["clusterName"] in admitted, spoke
    for job_name, job in concrete_jobs(workflow):
        stack = stack_of(job)
        assert job["environment"] == stack, job_name  # its own, deployments from main only
        (up,) = pulumi_steps(job)
        assert (up["with"]["command"], up["with"]["policyPacks"]) == ("up", "policy")
        assert up["if"] == "steps.state.outputs.update == 'true'"
        if stack == HUB:
            continue
        # A spoke shows what it reads from the hub, and stops unless the deployed hub admits it.
        index, reads = step_running(job, "scripts/fleet_hub_outputs.py")
        assert reads["run"] == 'venv/bin/python scripts/fleet_hub_outputs.py "$STACK"'
        assert reads["env"] == {"STACK": stack} and reads["if"] == up["if"]
        assert step_running(job, "ci-configure-stack.sh")[0] < index < step_index(job, up)


def test_the_fleets_certificates_are_renewed_on_a_schedule_without_a_person():
    (cron,) = (entry["cron"] for entry in triggers(load("fleet"))["schedule"])
    minute, hour, day, month, weekday = cron.split()
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*"), "once a day"
    windows = [environment_config(s).get("pki", {}).get("earlyRenewalHours", 720) for s in (HUB, *SPOKES)]
    assert min(windows) >= 7 * 24


def update_decision(tmp_path: Path, step: dict, event: str, resources: int) -> tuple[str, str]:
    """Runs a fleet job's "update?" step with a stand-in `pulumi stack export`: (what it wrote to
    $GITHUB_OUTPUT, the stack it exported)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    asked = tmp_path / "asked"
    state = {"version": 3, "deployment": {"manifest": {}, "resources": [{"urn": f"r{i}"} for i in range(resources)]}}
    (bin_dir / "pulumi").write_text(f"#!/bin/sh\necho \"$*\" >{asked}\necho '{json.dumps(state)}'\n")
    (bin_dir / "pulumi").chmod(stat.S_IRWXU)
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output)}
    env.update({key: value.replace("${{ github.event_name }}", event) for key, value in step["env"].items()})
    result = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return output.read_text(), asked.read_text().strip()


@pytest.mark.parametrize(
    ("event", "resources", "update"),
    [
        ("push", 0, True),
        ("push", 40, True),
        ("workflow_dispatch", 0, True),
        ("schedule", 40, True),
        ("schedule", 0, False),
    ],
)
def test_a_scheduled_run_renews_only_deployed_fleet_stacks(tmp_path, event, resources, update):
    """A merge deploys every stack (a new one too); the daily run leaves an empty stack alone,
    so it never rebuilds one someone destroyed."""
    for job_name, job in concrete_jobs(load("fleet")):
        (check,) = [s for s in steps(job) if s.get("id") == "state"]
        written, asked = update_decision(tmp_path / job_name, check, event, resources)
        assert written == f"update={'true' if update else 'false'}\n", job_name
        assert asked == f"stack export --stack {stack_of(job)}", job_name


def test_destroy_is_manual_confirmed_and_of_one_stack_in_its_own_environment():
    workflow = load("destroy")
    assert set(triggers(workflow)) == {"workflow_dispatch"}
    inputs = triggers(workflow)["workflow_dispatch"]["inputs"]
    assert inputs["stack"]["type"] == "choice" and sorted(inputs["stack"]["options"]) == sorted(CI_STACKS)
    assert inputs["confirm"] == {**inputs["confirm"], "type": "string", "required": True}
    (job_name,) = workflow["jobs"]
    assert workflow["jobs"][job_name]["if"] == "inputs.confirm == inputs.stack"  # its name typed again
    for job_name, job in concrete_jobs(workflow):
        stack = stack_of(job)
        (destroy,) = pulumi_steps(job)
        assert destroy["with"]["command"] == "destroy", job_name
        assert job["environment"] == stack and job["runs-on"] == runner(stack), job_name


def test_every_destroy_waits_for_the_fleet_guard():
    """scripts/fleet_destroy_guard.py (tests/scripts/test_fleet_scripts.py) runs before every
    `pulumi destroy`, on the stack being destroyed, once its backend is selected; a refusal stops
    the job: neither step may run regardless."""
    for job_name, job in concrete_jobs(load("destroy")):
        stack = stack_of(job)
        (destroy,) = pulumi_steps(job)
        installed, _ = step_running(job, "pip install -r requirements.txt")
        configured, _ = step_running(job, "ci-configure-stack.sh")
        index, guard = step_running(job, "scripts/fleet_destroy_guard.py")
        assert guard["run"] == 'venv/bin/python scripts/fleet_destroy_guard.py "$STACK"'
        assert guard["env"] == {"STACK": stack}, job_name
        assert installed < configured < index < step_index(job, destroy), job_name
        for step in (guard, destroy):
            assert "if" not in step and "continue-on-error" not in step, job_name


@pytest.mark.parametrize("spoke", SPOKES)
def test_a_spokes_destroy_uses_nothing_of_its_hub(spoke):
    """Separate stacks: destroying a spoke runs on the spoke's runner, in the spoke's environment,
    on the spoke's stack only; its guard reads only the spoke's outputs."""
    (job,) = [job for name, job in concrete_jobs(load("destroy")) if name.endswith(f"[{spoke}]")]
    values: list[str] = []

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            values.append(value)

    walk(job)
    assert stack_of(job) == spoke and job["environment"] == spoke and job["runs-on"] == runner(spoke)
    assert not [v for v in values if v == HUB or f"--stack {HUB}" in v or f"runtime-defense-{HUB}" in v]


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
