#!/usr/bin/env bash
# Brings the stack up on a running minikube, without a Pulumi Cloud account:
#  - state goes to .pulumi-state/, the project's own backend (Pulumi.yaml `backend.url`), so
#    every later `pulumi` command run from this directory sees the same stacks;
#  - the stack (PULUMI_STACK, default dev) is created if missing; its settings file
#    (Pulumi.<stack>.yaml: your encryption salt and your Grafana URL) is yours, not tracked;
#  - secrets are encrypted with a passphrase read from PULUMI_CONFIG_PASSPHRASE or
#    PULUMI_CONFIG_PASSPHRASE_FILE; without either, one is generated into
#    ~/.config/runtime-defense/passphrase (mode 600) and used from there;
#  - Grafana's URL is chosen by where this machine reaches the NodePort, and checked before
#    `pulumi up`, so a stack never half-deploys for want of a route to Grafana.
# Extra arguments go to `pulumi up`, e.g. `scripts/minikube-up.sh --yes`.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${PULUMI_STACK:-dev}"
fail() {
  echo "minikube-up: $*" >&2
  exit 1
}

for tool in pulumi minikube kubectl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (README, Quick start)"
done
profile=$(minikube profile 2>/dev/null || echo minikube)
minikube status -p "$profile" >/dev/null 2>&1 ||
  fail "minikube ($profile) is not running; start it with: minikube start --cpus=2 --memory=4096 (README, Quick start)"

if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="${XDG_CONFIG_HOME:-$HOME/.config}/runtime-defense/passphrase"
  if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    mkdir -p "$(dirname "$PULUMI_CONFIG_PASSPHRASE_FILE")"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$PULUMI_CONFIG_PASSPHRASE_FILE")
    echo "minikube-up: generated the passphrase that encrypts this stack's secrets: $PULUMI_CONFIG_PASSPHRASE_FILE"
  fi
  echo "minikube-up: for later pulumi commands: export PULUMI_CONFIG_PASSPHRASE_FILE=$PULUMI_CONFIG_PASSPHRASE_FILE"
fi

mkdir -p .pulumi-state
pulumi stack select --create "$stack"
pulumi config set kubeContext "$profile"
pulumi config set --path 'pulumi:disable-default-providers[0]' kubernetes

# Where this machine reaches Grafana's NodePort: the node's address where it is routable (Linux,
# and VM drivers everywhere), else the port the docker or podman driver publishes on
# localhost (macOS and Windows, where the node's address is inside Docker's VM).
node_port=$(pulumi config get --path monitoring.grafanaNodePort 2>/dev/null || echo 30300)
node_ip=$(minikube ip -p "$profile")
driver=$(minikube profile list -o json 2>/dev/null |
  python3 -c 'import json, sys; p = [v for v in json.load(sys.stdin).get("valid", []) if v["Name"] == sys.argv[1]]; print(p[0]["Config"]["Driver"] if p else "")' \
    "$profile" || true)
reachable() { python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' "$1" "$2" 2>/dev/null; }

if reachable "$node_ip" 8443; then
  grafana_url="http://$node_ip:$node_port"
elif [ "$driver" = docker ] || [ "$driver" = podman ]; then
  published=$("$driver" port "$profile" "$node_port/tcp" 2>/dev/null | head -n1 || true)
  [ -n "$published" ] || fail "this machine cannot reach the minikube node ($node_ip), and minikube does not publish
  Grafana's NodePort $node_port on localhost. Recreate it publishing the port (this deletes the cluster):
    minikube delete && minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:$node_port:$node_port"
  grafana_url="http://127.0.0.1:${published##*:}"
else
  fail "this machine cannot reach the minikube node at $node_ip (driver ${driver:-unknown}); check that its network is up"
fi
pulumi config set --path grafana.url "$grafana_url"
echo "minikube-up: Pulumi reaches Grafana at $grafana_url"

pulumi up "$@"
