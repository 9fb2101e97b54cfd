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

# Pulumi configures Grafana through its API at the NodePort on the minikube node. Where the
# node's IP is not reachable from this machine (docker driver on macOS or Windows), start
# minikube with `--ports=30300:30300` and run with GRAFANA_URL=http://localhost:30300.
node_port=$(pulumi config get --path monitoring.grafanaNodePort 2>/dev/null || echo 30300)
pulumi config set --path grafana.url "${GRAFANA_URL:-http://$(minikube ip):${node_port}}"

pulumi up "$@"
