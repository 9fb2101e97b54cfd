#!/usr/bin/env bash
# Runs the checks and the test suite in the project's virtualenv (the one `pulumi up` uses).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# Grafana's LogQL grammar, for the tests that parse the dashboards' LogQL (skipped without Node.js).
if command -v npm >/dev/null; then
  npm ci --prefix tests/logql --no-audit --no-fund --loglevel=error ||
    echo "test.sh: npm ci failed; the LogQL tests will be skipped" >&2
fi
venv/bin/ruff check .
venv/bin/ruff format --check .
venv/bin/python -m pytest "$@"
