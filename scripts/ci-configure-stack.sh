#!/usr/bin/env bash
# Points a stack at its environment in CI, from the GitHub environment's secrets and
# variables (never from files in the repository), and fails early when this runner cannot
# reach the cluster. Runs after the Pulumi CLI is installed; the backend (PULUMI_BACKEND_URL,
# with PULUMI_ACCESS_TOKEN for Pulumi Cloud) and PULUMI_CONFIG_PASSPHRASE come from the environment.
#   KUBECONFIG_CONTENT  secret    the cluster's kubeconfig, stored as a stack secret
#                                 (unset: the runner's own kubeconfig, e.g. kind's)
#   KUBE_CONTEXT        variable  its context (default: the kubeconfig's current context)
#   GRAFANA_URL         variable  where the runner reaches Grafana's API; unset, the stack's
#                                 grafana.url, else what the program derives: the NodePort on
#                                 the host of the context's API server (kind: 127.0.0.1, where
#                                 tests/e2e/kind.yaml publishes it), or the Ingress's host
# Every kind of stack, by its fleet.role (docs/fleet.md):
#   standalone (dev, prod)  as above.
#   hub                     as above; its Grafana is behind monitoring.grafanaIngress, so
#                           without GRAFANA_URL the program reaches it at that Ingress's host.
#   spoke                   runs no Grafana: GRAFANA_URL is not needed, and ignored if set (a
#                           repository-wide variable reaches every environment). A spoke reads
#                           its hub's stack (fleet.hubStack) on its own backend: its environment
#                           needs the hub's PULUMI_BACKEND_URL and, with passphrase secrets, the
#                           hub's PULUMI_CONFIG_PASSPHRASE (its credentials are a secret output
#                           of the hub's).
set -euo pipefail
stack="${1:?usage: ci-configure-stack.sh <stack>}"
cd "$(dirname "$0")/.."

# The project's own backend is a directory beside the program (Pulumi.yaml): in CI the state
# must go elsewhere, named explicitly.
if [ -z "${PULUMI_BACKEND_URL:-}" ]; then
  echo "ci-configure-stack.sh: PULUMI_BACKEND_URL is not set; set it to the state's bucket (s3://...)" \
    "or to https://api.pulumi.com (with PULUMI_ACCESS_TOKEN) in the GitHub environment" >&2
  exit 1
fi
pulumi stack select --create "$stack"
if [ -n "${KUBECONFIG_CONTENT:-}" ]; then
  # On stdin, never on a command line.
  printf '%s\n' "$KUBECONFIG_CONTENT" | pulumi config set --secret runtime-defense:kubeconfig
fi
if [ -n "${KUBE_CONTEXT:-}" ]; then
  pulumi config set runtime-defense:kubeContext "$KUBE_CONTEXT"
else
  pulumi config rm runtime-defense:kubeContext
fi
# The stack's role in a fleet: none (standalone) unless its Pulumi.<stack>.yaml sets one.
role="$(pulumi config get --path 'runtime-defense:fleet.role' 2>/dev/null || true)"
if [ "$role" = spoke ]; then
  if [ -n "${GRAFANA_URL:-}" ]; then
    echo "ci-configure-stack.sh: stack $stack is a fleet spoke, which runs no Grafana: GRAFANA_URL not used" >&2
  fi
elif [ -n "${GRAFANA_URL:-}" ]; then
  pulumi config set --path 'runtime-defense:grafana.url' "$GRAFANA_URL"
elif [ "$role" = hub ]; then
  echo "ci-configure-stack.sh: GRAFANA_URL is not set: the program reaches the hub's Grafana at its Ingress" \
    "(monitoring.grafanaIngress.host), unless the stack sets grafana.url" >&2
fi

# The cluster must answer from here: a runner outside its network fails now, with a reason,
# rather than half way through an update.
if command -v kubectl >/dev/null; then
  kubectl_args=()
  if [ -n "${KUBECONFIG_CONTENT:-}" ]; then
    kubeconfig="$(mktemp)"
    trap 'rm -f "$kubeconfig"' EXIT
    printf '%s\n' "$KUBECONFIG_CONTENT" >"$kubeconfig"
    kubectl_args+=(--kubeconfig "$kubeconfig")
  fi
  if [ -n "${KUBE_CONTEXT:-}" ]; then
    kubectl_args+=(--context "$KUBE_CONTEXT")
  fi
  if ! kubectl "${kubectl_args[@]}" get --raw /readyz --request-timeout=20s >/dev/null; then
    echo "ci-configure-stack.sh: this runner cannot reach the Kubernetes API of stack $stack" \
      "(context ${KUBE_CONTEXT:-current}); run the job where the cluster is reachable" >&2
    exit 1
  fi
else
  echo "ci-configure-stack.sh: kubectl not found; not checking that the cluster is reachable" >&2
fi
