#!/usr/bin/env bash
# Brings the stack up on a running minikube with no Pulumi Cloud account: state is kept in
# .pulumi-state/ (Pulumi's local backend) and the stack (default: dev) is created if missing.
# Extra arguments go to `pulumi up`, e.g. `scripts/minikube-up.sh --yes`.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${PULUMI_STACK:-dev}"
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-state}"
mkdir -p .pulumi-state

for tool in pulumi minikube kubectl python3; do
  command -v "$tool" >/dev/null || { echo "minikube-up: $tool is not installed (see README, Prerequisites)" >&2; exit 1; }
done
minikube status >/dev/null || { echo "minikube-up: minikube is not running; start it with: minikube start" >&2; exit 1; }

pulumi stack select --create "$stack"
pulumi up "$@"
