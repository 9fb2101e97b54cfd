#!/usr/bin/env bash
# Brings the stack up on a running minikube, without a Pulumi Cloud account:
#   scripts/minikube-up.sh [--profile current|tutorial] [pulumi up's arguments, e.g. --yes]
#  - checks every prerequisite first and names all that are missing at once;
#  - state goes to .pulumi-state/, the project's own backend (Pulumi.yaml `backend.url`);
#  - the stack (PULUMI_STACK, default dev) is created if missing, with the settings of its
#    tracked Pulumi.<stack>.yaml; the script changes them only where this machine differs:
#    the profile asked for (--profile or RUNTIME_DEFENSE_PROFILE), minikube's active profile's
#    kube context, Grafana's URL when the route differs from the one the program derives;
#  - secrets are encrypted with a passphrase read from PULUMI_CONFIG_PASSPHRASE or
#    PULUMI_CONFIG_PASSPHRASE_FILE; without either, one is generated into
#    ~/.config/runtime-defense/passphrase (mode 600) and used from there;
#  - the route to Grafana's NodePort is checked before `pulumi up`, so a stack never
#    half-deploys for want of one.
set -euo pipefail
cd "$(dirname "$0")/.."

stack="${PULUMI_STACK:-dev}"
profile="${RUNTIME_DEFENSE_PROFILE:-}"
fail() {
  echo "minikube-up: $*" >&2
  exit 1
}

up_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile)
      [ $# -ge 2 ] || fail "--profile needs a value: current or tutorial"
      profile="$2"
      shift 2
      ;;
    --profile=*)
      profile="${1#--profile=}"
      shift
      ;;
    *)
      up_args+=("$1")
      shift
      ;;
  esac
done
case "$profile" in
  "" | current | tutorial) ;;
  *) fail "profile \"$profile\": the profiles are current and tutorial" ;;
esac

# Whether the version $1 (major.minor.patch) is at least $2.
at_least() {
  local IFS=.
  local have=($1) want=($2) i
  for i in 0 1 2; do
    [ "${have[i]:-0}" -gt "${want[i]:-0}" ] 2>/dev/null && return 0
    [ "${have[i]:-0}" -lt "${want[i]:-0}" ] 2>/dev/null && return 1
    [[ "${have[i]:-0}" =~ ^[0-9]+$ ]] || return 1
  done
  return 0
}

# Every prerequisite, all reported at once, each with where to get it.
pulumi_wanted=$(tr -d '[:space:]' <.pulumi.version)
pulumi_site="https://www.pulumi.com/docs/iac/download-install/"
missing=()
if ! command -v pulumi >/dev/null; then
  missing+=("the Pulumi CLI, $pulumi_wanted or newer (.pulumi.version): $pulumi_site")
else
  pulumi_found=$(pulumi version 2>/dev/null | head -n1 | sed 's/^v//; s/[-+].*//')
  at_least "$pulumi_found" "$pulumi_wanted" ||
    missing+=("the Pulumi CLI $pulumi_wanted or newer (.pulumi.version); found ${pulumi_found:-an unknown version}: $pulumi_site")
fi
command -v minikube >/dev/null ||
  missing+=("minikube: https://minikube.sigs.k8s.io/docs/start/")
command -v kubectl >/dev/null ||
  missing+=("kubectl: https://kubernetes.io/docs/tasks/tools/")
python_site="https://www.python.org/downloads/"
if ! command -v python3 >/dev/null; then
  missing+=("python3, 3.11 or newer, with venv: $python_site")
elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  missing+=("python3 3.11 or newer (pulumi up makes venv/ with the python3 on PATH); found $(python3 --version 2>&1): $python_site")
elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=("python3's venv module, which pulumi up uses to make venv/ (Debian and Ubuntu: sudo apt install python3-venv): $python_site")
fi
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "minikube-up: missing prerequisites (README, Deploy on minikube):"
    printf '  - %s\n' "${missing[@]}"
  } >&2
  exit 1
fi

cluster=$(minikube profile 2>/dev/null || echo minikube)
minikube status -p "$cluster" >/dev/null 2>&1 ||
  fail "minikube ($cluster) is not running; start it with: minikube start --cpus=2 --memory=4096 (README, Deploy on minikube)"

if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="${XDG_CONFIG_HOME:-$HOME/.config}/runtime-defense/passphrase"
  if [ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]; then
    mkdir -p "$(dirname "$PULUMI_CONFIG_PASSPHRASE_FILE")"
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$PULUMI_CONFIG_PASSPHRASE_FILE")
    echo "minikube-up: generated the passphrase that encrypts this stack's secrets: $PULUMI_CONFIG_PASSPHRASE_FILE"
  fi
  echo "minikube-up: for later pulumi commands: export PULUMI_CONFIG_PASSPHRASE_FILE=$PULUMI_CONFIG_PASSPHRASE_FILE"
fi

pulumi stack select --create "$stack"
settings="Pulumi.$stack.yaml"
setting() { pulumi config get "$@" 2>/dev/null || true; }

if [ -n "$profile" ] && [ "$(setting profile)" != "$profile" ]; then
  pulumi config set profile "$profile"
  echo "minikube-up: profile set to $profile in $settings (on a stack already deployed, read docs/operations.md," \
    "Switching profile on a live stack, first)"
fi
# The kube context minikube made for its active profile (named after it).
if [ "$(setting kubeContext)" != "$cluster" ]; then
  pulumi config set kubeContext "$cluster"
  echo "minikube-up: kubeContext set to $cluster, minikube's active profile, in $settings"
fi
if [ "$(setting --path 'pulumi:disable-default-providers[0]')" != kubernetes ]; then
  pulumi config set --path 'pulumi:disable-default-providers[0]' kubernetes
fi

# What the program derives without grafana.url: Grafana's NodePort on the host of the kube
# context's API server.
node_port=$(setting --path monitoring.grafanaNodePort)
node_port=${node_port:-30300}
server=$(kubectl config view --minify --context "$cluster" -o 'jsonpath={.clusters[0].cluster.server}' 2>/dev/null || true)
authority=${server#*://}
authority=${authority%%/*}
case "$authority" in
  \[*) host="${authority%%]*}]" ;;
  *) host=${authority%%:*} ;;
esac
server_port=${authority#"$host"}
server_port=${server_port#:}
derived="http://$host:$node_port"

# The route from this machine to Grafana's NodePort, checked now (Grafana itself answers only
# once `pulumi up` has deployed it), and written to the stack only where it is not the one the
# program derives.
node_ip=$(minikube ip -p "$cluster")
api_port=8443 # minikube's, unless the kubeconfig names the node with another
if [ "$host" = "$node_ip" ] && [ -n "$server_port" ]; then
  api_port=$server_port
fi
driver=$(minikube profile list -o json 2>/dev/null |
  python3 -c 'import json, sys; p = [v for v in json.load(sys.stdin).get("valid", []) if v["Name"] == sys.argv[1]]; print(p[0]["Config"]["Driver"] if p else "")' \
    "$cluster" || true)
# How long a probe waits for an answer (an address nothing answers at may drop it silently).
probe_seconds="${MINIKUBE_UP_PROBE_SECONDS:-3}"
reachable() {
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))' \
    "$1" "$2" "$probe_seconds" 2>/dev/null
}

if reachable "$node_ip" "$api_port"; then
  # A Service's NodePort listens on the node's address, where its API server answers.
  route="http://$node_ip:$node_port"
  echo "minikube-up: the minikube node $node_ip answers on its API port $api_port from here, so its NodePorts," \
    "on the same address, are reachable too: Pulumi will reach Grafana at $route once pulumi up deploys it"
elif [ "$driver" = docker ] || [ "$driver" = podman ]; then
  published=$("$driver" port "$cluster" "$node_port/tcp" 2>/dev/null | head -n1 || true)
  [ -n "$published" ] || fail "this machine cannot reach the minikube node ($node_ip), and minikube's $driver driver
  does not publish Grafana's NodePort $node_port. Recreate it publishing the port (this deletes the cluster):
    minikube delete && minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:$node_port:$node_port"
  route="http://127.0.0.1:${published##*:}"
  echo "minikube-up: the $driver driver publishes the node's port $node_port on $published: Pulumi will reach" \
    "Grafana at $route once pulumi up deploys it"
else
  fail "this machine cannot reach the minikube node at $node_ip (driver ${driver:-unknown}); check that its network is up"
fi

explicit=$(setting --path grafana.url)
if [ "$route" = "$derived" ]; then
  if [ -n "$explicit" ] && [ "$explicit" != "$route" ]; then
    pulumi config rm --path grafana.url
    echo "minikube-up: removed grafana.url from $settings: the program derives $route itself"
  fi
elif [ "$explicit" != "$route" ]; then
  pulumi config set --path grafana.url "$route"
  echo "minikube-up: the program would derive $derived from the API server of kube context $cluster" \
    "(${server:-not found}), which is not the route found; grafana.url set to $route in $settings"
fi

pulumi up ${up_args[@]+"${up_args[@]}"}
