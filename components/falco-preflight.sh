# Falco's preflight: the first init container of the Falco DaemonSet, run from Falco's own
# image (busybox sh), with no capabilities. Where Falco would crash-loop with a libbpf error,
# or run with every event's container and k8s fields <NA>, it stops the pod with one line
# naming the cause and the setting that fixes it (`kubectl -n falco logs <pod> -c falco-preflight`,
# or the init container's message in `kubectl describe pod`).
#
# Set by components/falco_host.py:
#   FALCO_CAPABILITIES       what the Falco container holds: capabilities, space separated, or "privileged"
#   FALCO_CONTAINER_RUNTIME  runtime-defense:falco.containerRuntime as configured, e.g. "docker"
#   RUNTIME_SOCKETS          that runtime's sockets on the node, space separated
#   KNOWN_RUNTIMES           the values falco.containerRuntime takes
#   NODE_NAME                this node
#   HOST_ROOT                where the node's paths are mounted (/host)
#   PROC_ROOT                the proc filesystem to read (/proc; the tests point it at a fake one)
set -u
node=${NODE_NAME:-this node}

fail() {
  echo "falco-preflight: Falco cannot start on node $node: $*" >&2
  exit 1
}

# Perf events. Falco's modern_ebpf probe attaches its TOCTOU-mitigation tracepoints with
# perf_event_open (falcosecurity/libs#2581, libs 0.22+), and only a missing tracepoint is
# tolerated. A mainline kernel grants that to CAP_PERFMON whatever kernel.perf_event_paranoid
# says; Debian's (default 3) and Ubuntu's (default 4) kernels refuse it to any process without
# CAP_SYS_ADMIN when the value is above 2 (falcosecurity/charts#921). Containers share the
# host's value: the sysctl is not namespaced.
case " ${FALCO_CAPABILITIES:-} " in
*" privileged "* | *" SYS_ADMIN "*) sys_admin=yes ;;
*) sys_admin=no ;;
esac
paranoid=$(cat "${PROC_ROOT:-/proc}/sys/kernel/perf_event_paranoid" 2>/dev/null) || paranoid=
if [ "$paranoid" -eq "$paranoid" ] 2>/dev/null; then
  if [ "$paranoid" -gt 2 ] && [ "$sys_admin" = no ]; then
    fail "kernel.perf_event_paranoid is $paranoid on this node's kernel, and above 2 Debian and Ubuntu kernels refuse the perf events Falco's modern_ebpf probe opens to a process without CAP_SYS_ADMIN, which Falco does not hold (runtime-defense:falco.capabilities = least). Either set falco.capabilities to sysAdmin (pulumi config set --path falco.capabilities sysAdmin, then pulumi up: Falco also holds CAP_SYS_ADMIN, still not privileged), or lower the sysctl on the node's kernel (the host's, for minikube's docker driver and kind): sysctl -w kernel.perf_event_paranoid=2."
  fi
else
  echo "falco-preflight: node $node: kernel.perf_event_paranoid cannot be read; Falco will try to start"
  paranoid=unreadable
fi

# The container runtime. Falco's container plugin asks it for each container's name, image
# and pod; without its socket every event's container and k8s fields read <NA>.
found=
for socket in ${RUNTIME_SOCKETS:-}; do
  if [ -S "${HOST_ROOT:-/host}$socket" ]; then
    found="$found $socket"
  fi
done
if [ -z "$found" ]; then
  fail "runtime-defense:falco.containerRuntime is ${FALCO_CONTAINER_RUNTIME:-unset}, but this node has no ${RUNTIME_SOCKETS:-runtime socket}, so every event's container and k8s fields would read <NA>. Set falco.containerRuntime to the node's runtime (${KNOWN_RUNTIMES:-}; kubectl get node $node -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}' names it), then pulumi up."
fi

echo "falco-preflight: node $node: kernel.perf_event_paranoid=$paranoid, Falco holds ${FALCO_CAPABILITIES:-nothing}; runtime socket:$found"
