#!/usr/bin/env bash
# Runs the checks and the test suite in the project's virtualenv (the one `pulumi up` uses).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x venv/bin/python ] || python3 -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
venv/bin/ruff check .
venv/bin/ruff format --check .
venv/bin/python -m pytest "$@"
