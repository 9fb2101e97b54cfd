#!/usr/bin/env bash
# Lints the program, its policy pack, scripts and tests: ruff (style, imports, likely bugs)
# and mypy (the type hints of the program, the policy pack and the scripts; pyproject.toml).
# Run by scripts/test.sh before the tests; needs the venv that script makes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv/bin/ruff check .
venv/bin/ruff format --check .
venv/bin/mypy
