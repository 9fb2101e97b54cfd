"""scripts/minikube-up.sh, run for real against stand-in `pulumi`, `minikube`, `kubectl` and
`docker` commands that record what they are asked (the stand-in `pulumi` keeps the stack's
settings in a copy of the tracked Pulumi.dev.yaml): it must name every missing prerequisite
at once, pick the route to Grafana this machine really has, stop before `pulumi up` when
there is none, change the stack's settings only where this machine differs from them, and
keep the passphrase out of the repository."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from harness import ROOT

SCRIPT = ROOT / "scripts" / "minikube-up.sh"
UNROUTABLE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): nothing answers there
PULUMI_VERSION = (ROOT / ".pulumi.version").read_text().strip()
PYTHON = os.path.realpath(sys.executable)

# The stand-in `pulumi`: config get/set/rm on the stack's settings (Pulumi.<stack>.yaml, kept as
# JSON in $FAKE_STACKS), as the CLI does: keys in the project's namespace unless they name
# another, --path into maps and lists.
FAKE_PULUMI = """
import json, os, re, shlex, sys

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(f"pulumi {shlex.join(args)} | passphrase_file={os.environ.get('PULUMI_CONFIG_PASSPHRASE_FILE', '')}\\n")
state = os.path.join(os.environ["FAKE_STACKS"], "selected")
if args[:1] == ["version"]:
    print(os.environ.get("FAKE_PULUMI_VERSION", "v@VERSION@"))
    sys.exit(0)
if args[:2] == ["stack", "select"]:
    open(state, "w").write(args[-1])
    sys.exit(0)
if args[:1] != ["config"]:
    sys.exit(0)
path_file = os.path.join(os.environ["FAKE_STACKS"], f"Pulumi.{open(state).read()}.json")
settings = json.load(open(path_file)) if os.path.exists(path_file) else {}
config = settings.setdefault("config", {}) or {}
settings["config"] = config
verb, rest = args[1], [a for a in args[2:] if a not in ("--path", "--secret")]
key = rest[0]
def full(name):
    return name if ":" in name else "runtime-defense:" + name
if "--path" in args:
    parts = []
    for segment in key.split("."):
        name, indices = re.fullmatch(r"([^\\[]+)((?:\\[\\d+\\])*)", segment).groups()
        parts += [name, *(int(i) for i in re.findall(r"\\d+", indices))]
    parts[0] = full(parts[0])
else:
    parts = [full(key)]
node = config
for part in parts[:-1]:
    if verb == "set":
        if isinstance(node, list):
            while len(node) <= part:
                node.append({})
        elif part not in node:
            node[part] = [] if isinstance(parts[parts.index(part) + 1], int) else {}
    try:
        node = node[part]
    except (KeyError, IndexError, TypeError):
        sys.exit(1)
last = parts[-1]
if verb == "get":
    try:
        print(node[last])
    except (KeyError, IndexError, TypeError):
        sys.exit(1)
elif verb == "set":
    if isinstance(node, list):
        while len(node) <= last:
            node.append(None)
    node[last] = rest[1]
    json.dump(settings, open(path_file, "w"))
elif verb == "rm":
    node.pop(last, None)
    json.dump(settings, open(path_file, "w"))
""".replace("@VERSION@", PULUMI_VERSION)

FAKES = {
    "minikube": """#!/bin/sh
case "$1" in
  profile) if [ "${2:-}" = list ]; then echo "$FAKE_PROFILES"; else echo "${FAKE_CLUSTER:-minikube}"; fi ;;
  status) [ -z "${FAKE_STOPPED:-}" ] ;;
  ip) echo "$FAKE_NODE_IP" ;;
esac
""",
    "kubectl": """#!/bin/sh
echo "kubectl $*" >> "$FAKE_LOG"
[ "$1 $2" = "config view" ] && printf '%s' "$FAKE_SERVER"
exit 0
""",
    "docker": """#!/bin/sh
[ "$1" = port ] && [ -n "${FAKE_PUBLISHED:-}" ] && echo "$FAKE_PUBLISHED"
exit 0
""",
}


def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {**FAKES, "pulumi": f"#!{sys.executable} -S\n{FAKE_PULUMI}"}.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(0o755)
    # The Python running the tests (3.11 or newer), itself rather than through a version
    # manager's shim.
    (bin_dir / "python3").symlink_to(PYTHON)
    return bin_dir


def run_script(
    tmp_path: Path,
    node_ip: str,
    driver: str = "docker",
    server: str = "https://192.168.49.2:8443",
    args: tuple[str, ...] = (),
    path: str | None = None,
    stack_file: str | None = (ROOT / "Pulumi.dev.yaml").read_text(),
    **env: str,
) -> tuple[int, str, list[str], dict]:
    """(exit code, output, the stand-ins' calls, the stack's settings afterwards)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "calls.log"
    log.touch()
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    stack = env.get("PULUMI_STACK", "dev")
    if stack_file is not None:
        (stacks / f"Pulumi.{stack}.json").write_text(json.dumps(yaml.safe_load(stack_file)))
    cluster = env.get("FAKE_CLUSTER", "minikube")
    profiles = {"valid": [{"Name": cluster, "Config": {"Driver": driver}}], "invalid": []}
    environment = {
        "PATH": path or f"{fake_bin(tmp_path)}:{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "FAKE_LOG": str(log),
        "FAKE_STACKS": str(stacks),
        "FAKE_NODE_IP": node_ip,
        "FAKE_SERVER": server,
        "FAKE_PROFILES": json.dumps(profiles),
        # UNROUTABLE drops what is sent to it: a probe of it waits this long, not the 3 s default.
        "MINIKUBE_UP_PROBE_SECONDS": "0.3",
        **env,
    }
    done = subprocess.run(
        [shutil.which("bash"), str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=60
    )
    stack_path = stacks / f"Pulumi.{stack}.json"
    settings = json.loads(stack_path.read_text()) if stack_path.exists() else {}
    return done.returncode, done.stdout + done.stderr, log.read_text().splitlines(), settings


def pulumi_calls(calls: list[str]) -> list[list[str]]:
    return [shlex.split(call.split(" | ")[0])[1:] for call in calls if call.startswith("pulumi ")]


def changes(calls: list[str]) -> list[list[str]]:
    """The settings the script changed: every `pulumi config set` or `rm`."""
    return [call[1:] for call in pulumi_calls(calls) if call[:2] in (["config", "set"], ["config", "rm"])]


def ran_up(calls: list[str]) -> list[str] | None:
    ups = [call for call in pulumi_calls(calls) if call[:1] == ["up"]]
    assert len(ups) <= 1
    return ups[0] if ups else None


@pytest.fixture
def api_server_on_localhost():
    """Something listening on 127.0.0.1 where the kubeconfig names the node's API server, as on
    a node this machine reaches: its address, as `https://127.0.0.1:<port>`."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


# -- prerequisites ----------------------------------------------------------------------------


def bare_path(tmp_path: Path, *extra: Path) -> str:
    """A PATH with only the basic tools the script uses, and ``extra`` directories first."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "tr", "head", "sed"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    return ":".join(str(p) for p in (*extra, tools))


def test_every_missing_prerequisite_is_named_at_once_with_where_to_get_it(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, path=bare_path(tmp_path))
    assert code == 1
    lines = [line for line in out.splitlines() if line.startswith("  - ")]
    assert lines == [
        f"  - the Pulumi CLI, {PULUMI_VERSION} or newer (.pulumi.version): "
        "https://www.pulumi.com/docs/iac/download-install/",
        "  - minikube: https://minikube.sigs.k8s.io/docs/start/",
        "  - kubectl: https://kubernetes.io/docs/tasks/tools/",
        "  - python3, 3.11 or newer, with venv: https://www.python.org/downloads/",
    ]
    assert calls == []


def version_stand_ins(tmp_path: Path, python: str = "3.9.18", venv: bool = True) -> Path:
    """`pulumi` and `python3` stand-ins, put before the others on PATH."""
    first = tmp_path / "first"
    first.mkdir()
    real = PYTHON
    too_old = tuple(int(part) for part in python.split(".")[:2]) < (3, 11)
    (first / "python3").write_text(
        "#!/bin/sh\n"
        f'case "$*" in *version_info*) exit {int(too_old)} ;;\n'
        f"  --version) echo 'Python {python}'; exit 0 ;;\n"
        f"  *ensurepip*) exit {0 if venv else 1} ;;\n"
        f'esac\nexec {real} "$@"\n'
    )
    (first / "python3").chmod(0o755)
    return first


def test_too_old_pulumi_and_python_are_reported_together_with_the_versions_found(tmp_path):
    path = f"{version_stand_ins(tmp_path)}:{fake_bin(tmp_path)}:{os.environ['PATH']}"
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, path=path, FAKE_PULUMI_VERSION="v3.100.0")
    assert code == 1
    assert f"the Pulumi CLI {PULUMI_VERSION} or newer (.pulumi.version); found 3.100.0" in out
    assert "python3 3.11 or newer (pulumi up makes venv/ with the python3 on PATH); found Python 3.9.18" in out
    assert "minikube:" not in out and "kubectl:" not in out
    assert pulumi_calls(calls) == [["version"]]


def test_python_without_its_venv_module_is_reported(tmp_path):
    path = f"{version_stand_ins(tmp_path, python='3.12.3', venv=False)}:{fake_bin(tmp_path)}:{os.environ['PATH']}"
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, path=path)
    assert code == 1
    assert "python3's venv module, which pulumi up uses to make venv/ (Debian and Ubuntu: sudo apt install " in out
    assert ran_up(calls) is None


def next_versions(version: str) -> tuple[str, str]:
    major, minor, _ = (int(p) for p in version.split("."))
    older = f"{major}.{minor - 1}.9" if minor else f"{major - 1}.99.99"
    return older, f"{major}.{minor + 1}.0"


@pytest.mark.parametrize(
    ("found", "enough"),
    [
        (f"v{PULUMI_VERSION}", True),
        (f"v{next_versions(PULUMI_VERSION)[1]}", True),
        (f"v{int(PULUMI_VERSION.split('.')[0]) + 1}.0.0", True),
        (f"v{next_versions(PULUMI_VERSION)[0]}", False),
        (f"v{PULUMI_VERSION}-alpha.1+dirty", True),
        ("", False),
    ],
)
def test_the_pulumi_cli_must_be_at_least_the_version_in_dot_pulumi_version(tmp_path, found, enough):
    """The minimum lives in .pulumi.version alone (the workflows install exactly that one)."""
    code, out, _, _ = run_script(tmp_path, UNROUTABLE, FAKE_PULUMI_VERSION=found, FAKE_STOPPED="1")
    assert code == 1
    assert ("minikube (minikube) is not running" in out) is enough, out
    assert PULUMI_VERSION not in SCRIPT.read_text()


# -- the route to Grafana and the stack's settings --------------------------------------------


def test_on_a_reachable_node_the_committed_settings_are_used_as_they_are(tmp_path, api_server_on_localhost):
    code, out, calls, settings = run_script(tmp_path, "127.0.0.1", driver="kvm2", server=api_server_on_localhost)
    assert code == 0, out
    port = api_server_on_localhost.rsplit(":", 1)[1]
    assert f"the minikube node 127.0.0.1 answers on its API port {port} from here, so its NodePorts, on the same" in out
    assert "Pulumi will reach Grafana at http://127.0.0.1:30300 once pulumi up deploys it" in out
    assert changes(calls) == []
    assert settings == yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    assert ran_up(calls) == ["up"]
    assert "kubectl config view --minify --context minikube -o jsonpath={.clusters[0].cluster.server}" in calls


def test_docker_driver_on_macos_publishing_the_quick_starts_port_needs_no_grafana_url(tmp_path):
    """The API server is on 127.0.0.1 there: the program derives http://127.0.0.1:30300."""
    code, out, calls, _ = run_script(
        tmp_path, UNROUTABLE, server="https://127.0.0.1:52431", FAKE_PUBLISHED="127.0.0.1:30300"
    )
    assert code == 0, out
    assert "the docker driver publishes the node's port 30300 on 127.0.0.1:30300" in out
    assert changes(calls) == []
    assert ran_up(calls) == ["up"]


def test_a_route_the_program_cannot_derive_is_written_as_grafana_url(tmp_path):
    code, out, calls, settings = run_script(
        tmp_path, UNROUTABLE, server="https://127.0.0.1:52431", FAKE_PUBLISHED="0.0.0.0:55001"
    )
    assert code == 0, out
    assert changes(calls) == [["set", "--path", "grafana.url", "http://127.0.0.1:55001"]]
    assert settings["config"]["runtime-defense:grafana"] == {"url": "http://127.0.0.1:55001"}
    assert "the program would derive http://127.0.0.1:30300 from the API server of kube context minikube" in out
    ordered = pulumi_calls(calls)
    assert ordered.index(["config", "set", "--path", "grafana.url", "http://127.0.0.1:55001"]) < ordered.index(["up"])


@pytest.mark.parametrize(
    ("server", "derived"),
    [
        ("https://192.168.49.2:8443", "http://192.168.49.2:30300"),
        ("https://[::1]:6443", "http://[::1]:30300"),
        ("https://kubernetes.docker.internal:6443", "http://kubernetes.docker.internal:30300"),
    ],
)
def test_the_script_derives_grafanas_url_as_the_program_does(tmp_path, server, derived):
    """Where the route (here the port docker publishes) is not the derived URL, the script says
    what the program would derive, from the same API server (tests/mocks/test_config.py)."""
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, server=server, FAKE_PUBLISHED="127.0.0.1:30300")
    assert code == 0, out
    assert f"the program would derive {derived} from the API server of kube context minikube ({server})" in out
    assert changes(calls) == [["set", "--path", "grafana.url", "http://127.0.0.1:30300"]]


def test_a_grafana_url_left_by_an_older_run_is_removed_when_the_program_derives_the_route(
    tmp_path, api_server_on_localhost
):
    stale = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    stale["config"]["runtime-defense:grafana"] = {"url": "http://192.168.49.9:30300"}
    code, out, calls, settings = run_script(
        tmp_path, "127.0.0.1", driver="kvm2", server=api_server_on_localhost, stack_file=yaml.safe_dump(stale)
    )
    assert code == 0, out
    assert changes(calls) == [["rm", "--path", "grafana.url"]]
    assert settings["config"]["runtime-defense:grafana"] == {}


def test_no_route_to_grafana_stops_before_pulumi_up_and_says_what_to_do(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE)
    assert code == 1
    assert "minikube delete && minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:30300:30300" in out
    assert ran_up(calls) is None


def test_a_stopped_minikube_stops_before_the_stack_is_touched(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, FAKE_STOPPED="1")
    assert code == 1 and "minikube start" in out
    assert pulumi_calls(calls) == [["version"]]


def test_another_minikube_profile_gets_its_own_kube_context(tmp_path):
    code, out, calls, settings = run_script(
        tmp_path, UNROUTABLE, server="https://127.0.0.1:52431", FAKE_PUBLISHED="127.0.0.1:30300", FAKE_CLUSTER="lab"
    )
    assert code == 0, out
    assert changes(calls) == [["set", "kubeContext", "lab"]]
    assert settings["config"]["runtime-defense:kubeContext"] == "lab"
    assert any(call.startswith("kubectl config view --minify --context lab ") for call in calls)


def test_a_new_stack_gets_the_settings_dev_has_from_its_file(tmp_path):
    code, out, calls, settings = run_script(
        tmp_path,
        UNROUTABLE,
        server="https://127.0.0.1:52431",
        FAKE_PUBLISHED="127.0.0.1:30300",
        PULUMI_STACK="mine",
        stack_file=None,
    )
    assert code == 0, out
    assert pulumi_calls(calls)[1] == ["stack", "select", "--create", "mine"]
    assert settings["config"] == {
        "runtime-defense:kubeContext": "minikube",
        "pulumi:disable-default-providers": ["kubernetes"],
    }


# -- the profile ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--profile", "tutorial", "--yes"), {}),
        (("--profile=tutorial", "--yes"), {}),
        (("--yes",), {"RUNTIME_DEFENSE_PROFILE": "tutorial"}),
    ],
    ids=["flag", "flag=", "variable"],
)
def test_the_profile_is_chosen_before_pulumi_up(tmp_path, args, env):
    code, out, calls, settings = run_script(
        tmp_path, UNROUTABLE, server="https://127.0.0.1:52431", FAKE_PUBLISHED="127.0.0.1:30300", args=args, **env
    )
    assert code == 0, out
    assert changes(calls) == [["set", "profile", "tutorial"]]
    assert settings["config"]["runtime-defense:profile"] == "tutorial"
    assert ran_up(calls) == ["up", "--yes"]
    assert pulumi_calls(calls).index(["config", "set", "profile", "tutorial"]) < pulumi_calls(calls).index(
        ["up", "--yes"]
    )


def test_the_profile_the_stack_has_is_not_written_again(tmp_path):
    code, out, calls, _ = run_script(
        tmp_path,
        UNROUTABLE,
        server="https://127.0.0.1:52431",
        FAKE_PUBLISHED="127.0.0.1:30300",
        args=("--profile", "current"),
    )
    assert code == 0, out
    assert changes(calls) == []


def test_an_unknown_profile_stops_before_anything_runs(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, args=("--profile", "latest"))
    assert code == 1
    assert 'profile "latest": the profiles are current and tutorial' in out
    assert calls == []


# -- the passphrase ---------------------------------------------------------------------------


def test_the_passphrase_is_generated_once_outside_the_repository_and_private(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300")
    assert code == 0, out
    passphrase = tmp_path / "home" / ".config" / "runtime-defense" / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text().strip()) >= 32
    after_version = [call for call in calls if call.startswith("pulumi ") and not call.startswith("pulumi version")]
    assert after_version and all(call.endswith(f"passphrase_file={passphrase}") for call in after_version)
    first = passphrase.read_text()
    run_script(tmp_path / "again", UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300", HOME=str(tmp_path / "home"))
    assert passphrase.read_text() == first


def test_a_passphrase_given_in_the_environment_is_used_as_is(tmp_path):
    code, out, calls, _ = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300", PULUMI_CONFIG_PASSPHRASE="x")
    assert code == 0, out
    assert not (tmp_path / "home" / ".config").exists()
    assert all(call.endswith("passphrase_file=") for call in calls if call.startswith("pulumi "))
