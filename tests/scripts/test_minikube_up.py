"""scripts/minikube-up.sh, run for real against stand-in `pulumi`, `minikube`, `kubectl` and
`docker` commands that record what they are asked: it must pick the route to Grafana this
machine really has, stop before `pulumi up` when there is none, and keep the passphrase out
of the repository."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from harness import MINIKUBE_DEV, ROOT

SCRIPT = ROOT / "scripts" / "minikube-up.sh"
UNROUTABLE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): nothing answers there

FAKES = {
    "minikube": """
case "$1" in
  profile) if [ "${2:-}" = list ]; then echo "$FAKE_PROFILES"; else echo minikube; fi ;;
  status) [ -z "${FAKE_STOPPED:-}" ] ;;
  ip) echo "$FAKE_NODE_IP" ;;
esac
""",
    "pulumi": """
echo "pulumi $* | passphrase_file=${PULUMI_CONFIG_PASSPHRASE_FILE:-}" >> "$FAKE_LOG"
case "$*" in
  "config get"*) exit 1 ;;
esac
""",
    "kubectl": "exit 0",
    "docker": """
[ "$1" = port ] && [ -n "${FAKE_PUBLISHED:-}" ] && echo "$FAKE_PUBLISHED"
""",
}


def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    return bin_dir


def run_script(tmp_path: Path, node_ip: str, driver: str = "docker", **env: str) -> tuple[int, str, list[str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "calls.log"
    log.touch()
    profiles = {"valid": [{"Name": "minikube", "Config": {"Driver": driver}}], "invalid": []}
    environment = {
        "PATH": f"{fake_bin(tmp_path)}:{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "FAKE_LOG": str(log),
        "FAKE_NODE_IP": node_ip,
        "FAKE_PROFILES": json.dumps(profiles),
        **env,
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr, log.read_text().splitlines()


@pytest.fixture
def api_server_on_localhost():
    """Something listening where the script probes the node (port 8443), as on a reachable node."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", 8443))
    except OSError:
        pytest.skip("port 8443 is taken on this machine")
    server.listen()
    threading.Thread(target=lambda: [server.accept() for _ in range(4)], daemon=True).start()
    yield
    server.close()


def grafana_url(calls: list[str]) -> str | None:
    for call in calls:
        if call.startswith("pulumi config set --path grafana.url "):
            return call.split(" | ")[0].rsplit(" ", 1)[1]
    return None


def test_a_reachable_node_is_used_directly(tmp_path, api_server_on_localhost):
    code, out, calls = run_script(tmp_path, "127.0.0.1", driver="kvm2")
    assert code == 0, out
    assert grafana_url(calls) == "http://127.0.0.1:30300"
    assert calls[-1].startswith("pulumi up")


def test_docker_driver_on_macos_uses_the_port_published_on_localhost(tmp_path):
    code, out, calls = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="127.0.0.1:30300")
    assert code == 0, out
    assert grafana_url(calls) == "http://127.0.0.1:30300"
    assert calls[-1].startswith("pulumi up")


def test_no_route_to_grafana_stops_before_pulumi_up_and_says_what_to_do(tmp_path):
    code, out, calls = run_script(tmp_path, UNROUTABLE)
    assert code == 1
    assert "minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:30300:30300" in out
    assert not any(call.startswith("pulumi up") for call in calls)


def test_a_stopped_minikube_stops_before_any_pulumi_command(tmp_path):
    code, out, calls = run_script(tmp_path, UNROUTABLE, FAKE_STOPPED="1")
    assert code == 1 and "minikube start" in out
    assert calls == []


def test_the_passphrase_is_generated_once_outside_the_repository_and_private(tmp_path):
    code, out, calls = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300")
    assert code == 0, out
    passphrase = tmp_path / "home" / ".config" / "runtime-defense" / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text().strip()) >= 32
    assert all(call.endswith(f"passphrase_file={passphrase}") for call in calls)
    first = passphrase.read_text()
    run_script(tmp_path / "again", UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300", HOME=str(tmp_path / "home"))
    assert passphrase.read_text() == first


def test_a_passphrase_given_in_the_environment_is_used_as_is(tmp_path):
    code, out, calls = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="0.0.0.0:30300", PULUMI_CONFIG_PASSPHRASE="x")
    assert code == 0, out
    assert not (tmp_path / "home" / ".config").exists()
    assert all(call.endswith("passphrase_file=") for call in calls)


def test_it_makes_the_dev_stack_the_tests_render(tmp_path):
    """The tests render `dev` as this script makes it (harness.MINIKUBE_DEV): the same keys,
    set in the user's own, untracked stack file."""
    code, out, calls = run_script(tmp_path, UNROUTABLE, FAKE_PUBLISHED="127.0.0.1:30300")
    assert code == 0, out
    settings = [call.split(" | ")[0].removeprefix("pulumi config set ") for call in calls if "config set" in call]
    keys = {setting.removeprefix("--path ").split(" ", 1)[0] for setting in settings}
    assert keys == {"kubeContext", "grafana.url", "pulumi:disable-default-providers[0]"}
    assert {"kubeContext", "grafana"} == set(MINIKUBE_DEV)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "Pulumi.*.yaml" in ignored and "!Pulumi.prod.yaml" in ignored
