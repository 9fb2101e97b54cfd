#!/usr/bin/env bash
# Do the tests depend on each other? Runs the whole suite in the venv scripts/test.sh makes:
# once in file order on one process, then with 1, 2, 4 and 6 workers, each in a random order
# (pytest-randomly, its own seed). A test that passes only after, or only without, another
# one fails in some of these runs. Prints one line per run and the failures; exits 1 if any
# run failed. Repeat a run with the command it prints. SEED=<n> picks the seeds (n, n+1, ...);
# arguments go to pytest (e.g. a directory, to check part of the suite).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x venv/bin/python ]; then
  echo "check_independence.sh: no venv/; run scripts/test.sh first" >&2
  exit 1
fi
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
seed=${SEED:-$RANDOM}
failed=0

suite() {  # $1: a label; the rest: pytest's arguments
  local label=$1 started=$SECONDS
  shift
  if venv/bin/python -m pytest -p no:cacheprovider "$@" >"$logs/run" 2>&1; then
    echo "passed  $label ($((SECONDS - started)) s): $(tail -n 1 "$logs/run")"
  else
    failed=1
    echo "FAILED  $label ($((SECONDS - started)) s): $(tail -n 1 "$logs/run")"
    echo "        repeat: venv/bin/python -m pytest $*"
    grep -E '^(FAILED|ERROR) ' "$logs/run" | sed 's/^/        /' || true
  fi
}

suite "file order, one process" -n 0 -p no:randomly "$@"
for workers in 1 2 4 6; do
  suite "$workers worker(s), random order, seed $seed" -n "$workers" -p randomly --randomly-seed="$seed" "$@"
  seed=$((seed + 1))
done
exit "$failed"
