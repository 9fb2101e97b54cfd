#!/usr/bin/env bash
# Points a stack at its environment in CI, from the GitHub environment's secrets and
# variables (never from files in the repository). Runs after the Pulumi CLI is installed;
# the backend (PULUMI_BACKEND_URL or PULUMI_ACCESS_TOKEN) and PULUMI_CONFIG_PASSPHRASE come
# from the environment.
#   KUBECONFIG_CONTENT  secret    the cluster's kubeconfig, stored as a stack secret
#   KUBE_CONTEXT        variable  its context (default: the kubeconfig's current context)
#   GRAFANA_URL         variable  where the runner reaches Grafana's API
set -euo pipefail
stack="${1:?usage: ci-configure-stack.sh <stack>}"
cd "$(dirname "$0")/.."

pulumi stack select --create "$stack"
if [ -n "${KUBECONFIG_CONTENT:-}" ]; then
  printf '%s\n' "$KUBECONFIG_CONTENT" | pulumi config set --secret runtime-defense:kubeconfig
fi
if [ -n "${KUBE_CONTEXT:-}" ]; then
  pulumi config set runtime-defense:kubeContext "$KUBE_CONTEXT"
else
  pulumi config rm runtime-defense:kubeContext
fi
if [ -n "${GRAFANA_URL:-}" ]; then
  pulumi config set --path 'runtime-defense:grafana.url' "$GRAFANA_URL"
fi
