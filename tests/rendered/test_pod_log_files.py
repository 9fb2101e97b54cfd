"""Alloy reading the node's log files (logging.podLogs = files), as the cluster receives it:
in the node agents' namespace, whose Pod Security level admits its host paths; only the log
directories mounted, read-only; an identity that reads the runtimes' files and holds nothing
more (root's group, root only for CRI-O's files, no capability, a read-only root
filesystem); its metrics port fenced; every object valid and every reference resolved; each
runtime's lines decoded once, and found where the kubelet files them. The labels and Falco's
second copy are checked on the same stack by test_log_labels.py."""

import json
from dataclasses import replace

import pytest
from alloy_syntax import parse
from collector_files import crio_files, dev_files, spoke_files
from log_sources import alloy_config, alloy_ship, alloy_ship_file_line, node_log_file, parse_selector, pod_targets
from netpol import OUTSIDE, NetworkPolicies, Source, url_targets
from pod_security import BASELINE, PRIVILEGED, RESTRICTED, strictest_level, workload_violations
from queries import logql_errors
from references import dangling
from rendering import render_stack
from schemas import schema_errors
from test_logging import COMPACTION, CRI_LINE, DOCKER_LINE, ETCD

from components.logging_stack import ALLOY_PORT
from components.metrics_agent import AGENT_PODS

LABEL = "pod-security.kubernetes.io/enforce"
INTRUDER = Source("a pod in namespace default", "default", {"app": "intruder"})
FALCO_NEIGHBOUR = Source("another pod in namespace falco", "falco", {"app": "neighbour"})
# What containerd and docker grant a container that drops nothing (containerd pkg/oci/spec.go).
RUNTIME_DEFAULT_CAPABILITIES = {
    *("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP"),
    *("SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"),
}

# How each runtime leaves a container's log on the node, from /var/log/pods down to the file,
# every part owned by root:root: (what, mode). The kubelet makes the pod's directory 0755
# (kuberuntime_sandbox.go createPodSandbox) and the container's (kuberuntime_container.go);
# containerd creates the file 0640 (internal/cri/server/helpers_linux.go openLogFile), CRI-O's
# conmon 0600 (src/ctr_logging.c); the docker runtime links the file to its own, 0640 in 0710
# directories (moby daemon/logger/jsonfilelog, daemon/create.go, daemon/daemon.go).
KUBELET_DIRECTORIES = (("/var/log/pods", 0o755), ("<namespace>_<pod>_<uid>", 0o755), ("<container>", 0o755))
NODE_FILES = {
    "containerd": (*KUBELET_DIRECTORIES, ("0.log", 0o640)),
    "k3s": (*KUBELET_DIRECTORIES, ("0.log", 0o640)),
    "cri-o": (*KUBELET_DIRECTORIES, ("0.log", 0o600)),
    "docker": (
        *KUBELET_DIRECTORIES,
        ("0.log -> /var/lib/docker/containers", 0o710),
        ("<container id>", 0o710),
        ("<container id>-json.log", 0o640),
    ),
}
READ, SEARCH = 0o4, 0o1


def alloy(stack):
    (found,) = [w for w in stack.workloads() if w.owner.kind == "DaemonSet" and w.owner.source == "alloy"]
    return found


def alloy_container(workload):
    (container,) = [c for c in workload.containers() if c["name"] == "alloy"]
    return container


def identity(workload):
    """(uid, groups, effective capabilities) of Alloy's process. fsGroup joins the groups; a
    non-root process holds no capability the runtime grants (Kubernetes sets no ambient ones)."""
    pod_context = workload.pod.get("securityContext") or {}
    context = {**pod_context, **(alloy_container(workload).get("securityContext") or {})}
    uid = context["runAsUser"]
    groups = {context["runAsGroup"], *pod_context.get("supplementalGroups", ()), pod_context.get("fsGroup")} - {None}
    capabilities = context.get("capabilities") or {}
    held = set() if uid != 0 else set(capabilities.get("add") or [])
    if uid == 0 and "ALL" not in (capabilities.get("drop") or []):
        held |= RUNTIME_DEFAULT_CAPABILITIES
    return uid, groups, held


def may(who, mode: int, want: int) -> bool:
    """Linux's check on a root:root inode (generic_permission): the owner's bits, else the
    group's, else the others'; then CAP_DAC_OVERRIDE, or CAP_DAC_READ_SEARCH to read and search."""
    uid, groups, capabilities = who
    bits = mode >> 6 if uid == 0 else (mode >> 3) & 7 if 0 in groups else mode & 7
    return bits & want == want or "DAC_OVERRIDE" in capabilities or "DAC_READ_SEARCH" in capabilities


def reads(who, runtime: str) -> bool:
    *directories, (_, file_mode) = NODE_FILES[runtime]
    return all(may(who, mode, SEARCH) for _, mode in directories) and may(who, file_mode, READ)


FILE_READERS = [
    pytest.param(dev_files, ("docker",), id="dev-docker"),
    pytest.param(spoke_files, ("containerd",), id="spoke-containerd"),
    pytest.param(crio_files, ("cri-o",), id="cri-o"),
]


@pytest.mark.parametrize(("render", "runtimes"), FILE_READERS)
def test_alloy_reads_every_runtimes_files_as_root_only_where_they_demand_it(render, runtimes):
    workload = alloy(render())
    who = identity(workload)
    uid, groups, capabilities = who
    assert all(reads(who, runtime) for runtime in runtimes), (who, runtimes)
    # Root only for CRI-O's 0600 files; else a member of root's group, which containerd's and
    # docker's 0640 files let read. No capability either way.
    assert (uid == 0) == ("cri-o" in runtimes)
    assert capabilities == set()
    assert uid == 0 or not reads((uid, groups - {0}, capabilities), runtimes[0]), "root's group is what reads"
    context = alloy_container(workload)["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is (uid != 0)


def test_the_api_reader_could_not_read_the_files():
    """What reading the files takes is real: Alloy as it runs in the logging namespace
    (through the Kubernetes API) reads none of the runtimes' files."""
    who = identity(alloy(render_stack("dev")))
    assert not any(reads(who, runtime) for runtime in NODE_FILES)


@pytest.mark.parametrize(("render", "runtimes"), FILE_READERS)
def test_only_the_log_directories_are_mounted_and_read_only(render, runtimes):
    """/var/log/pods, and docker's containers directory where its links lead: not all of
    /var/log (the chart's mounts.varlog), nothing writable, nothing for the config reloader."""
    workload = alloy(render())
    host = {v["name"]: v["hostPath"] for v in workload.pod["volumes"] if "hostPath" in v}
    expected = {"/var/log/pods"} | ({"/var/lib/docker/containers"} if "docker" in runtimes else set())
    assert {path["path"] for path in host.values()} == expected
    assert all(path.get("type") == "Directory" for path in host.values())
    mounts = [(c["name"], m) for c in workload.containers() for m in c.get("volumeMounts") or [] if m["name"] in host]
    assert sorted(m["mountPath"] for _, m in mounts) == sorted(expected)
    assert all(name == "alloy" and m.get("readOnly") is True for name, m in mounts), mounts
    assert all(m.get("recursiveReadOnly") == "IfPossible" for _, m in mounts), mounts


def test_alloy_keeps_its_place_in_each_file_on_an_emptydir():
    """The root filesystem is read-only: the storage path, where loki.source.file keeps its
    positions, is an emptyDir (a restarted container carries on where it stopped)."""
    workload = alloy(dev_files())
    container = alloy_container(workload)
    (path,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--storage.path=")]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    (volume,) = [v for v in workload.pod["volumes"] if v["name"] == mount["name"]]
    assert volume == {"name": mount["name"], "emptyDir": {}}
    assert not mount.get("readOnly")


def levels(stack):
    return {o.name: o.labels[LABEL] for o in stack.objects if o.kind == "Namespace" and o.source == "program"}


def test_alloy_runs_with_the_node_agents_whose_level_admits_its_host_paths():
    stack = dev_files()
    workload = alloy(stack)
    assert workload.owner.namespace == "falco"
    assert levels(stack) == {"monitoring": RESTRICTED, "logging": RESTRICTED, "falco": PRIVILEGED}
    # Only its host paths keep it out of baseline (and so out of the logging namespace).
    refused = workload_violations(workload, BASELINE)
    assert refused and all(v.startswith("hostPath volume ") for v in refused), refused
    assert workload_violations(workload, PRIVILEGED) == []
    by_namespace = {}
    for w in stack.workloads():
        by_namespace.setdefault(w.owner.namespace, []).append(w)
    assert levels(stack) == {ns: strictest_level(pods) for ns, pods in by_namespace.items()}
    assert all(w.owner.source != "alloy" for w in by_namespace["logging"])


def test_every_object_is_valid_and_every_reference_resolves():
    stack = dev_files()
    assert schema_errors(stack.objects) == []
    assert dangling(stack) == []


@pytest.mark.parametrize("render", [dev_files, spoke_files], ids=["dev", "spoke-a"])
def test_alloys_metrics_port_admits_only_prometheus_where_alloy_runs(render):
    stack = render()
    policies = NetworkPolicies(stack.objects)
    workload = alloy(stack)
    found = [Source.of(w) for w in stack.workloads() if w.owner.kind == "Prometheus"]
    # The spoke's render holds Alloy's release alone: its Prometheus agent's pods, as the
    # operator labels them (tests/rendered/test_network_policies.py checks those on the fleet).
    (prometheus,) = found or [Source("the Prometheus agent", "monitoring", AGENT_PODS)]
    assert policies.admits(prometheus, workload, ALLOY_PORT)
    elsewhere = replace(Source.of(workload), what="Alloy's pods in namespace logging", namespace="logging")
    for stranger in (INTRUDER, FALCO_NEIGHBOUR, OUTSIDE, elsewhere):
        assert not policies.admits(stranger, workload, ALLOY_PORT), stranger.what
    namespaces = {o.name for o in stack.objects if o.kind == "Namespace" and o.source == "program"}
    open_ = [str(w.owner) for w in stack.workloads() if w.owner.namespace in namespaces and not policies.selecting(w)]
    assert open_ == []


def test_alloy_pushes_to_loki_from_the_node_agents_namespace_and_its_neighbours_do_not():
    stack = dev_files()
    policies = NetworkPolicies(stack.objects)
    targets = url_targets(stack, stack.run.exports["lokiPushUrl"].value)
    assert targets
    for target in targets:
        assert policies.admits(Source.of(alloy(stack)), target.workload, target.port), target
        for stranger in (FALCO_NEIGHBOUR, INTRUDER, OUTSIDE):
            assert not policies.admits(stranger, target.workload, target.port), f"{stranger.what} -> {target}"


def test_a_spoke_reading_files_sends_to_its_hub_with_its_credentials_from_the_node_agents_namespace():
    """loki_write_block as on any spoke (the hub's URL, basic auth, the hub's CA, the cluster
    label), with the spoke's Secret in Alloy's namespace; nothing listens in the logging
    namespace any more (no Loki on a spoke, no Alloy there now)."""
    stack = spoke_files()
    workload = alloy(stack)
    assert workload.owner.namespace == "falco"
    config = alloy_config(stack)
    assert 'password = sys.env("FLEET_PASSWORD")' in config and 'cluster = "spoke-a"' in config
    targets = pod_targets(stack)
    assert targets
    shipped = [s for _, meta in targets for s in alloy_ship(config, meta, "level=info msg=ready")]
    assert len(shipped) == 2 * len(targets)  # each line in both runtime formats, read from its file
    assert {s.url for s in shipped} == {stack.run.exports["fleet"].value["endpoints"]["logs"]}
    (secret,) = [v["secret"]["secretName"] for v in workload.pod["volumes"] if "secret" in v]
    holders = {o.namespace for o in stack.of_kind("Secret") if o.name == secret and o.source == "program"}
    assert workload.owner.namespace in holders
    assert {o.name for o in stack.of_kind("NetworkPolicy") if o.namespace == "logging"} == {"default-deny-ingress"}


# -- the lines, as the runtimes write them -------------------------------------------------------

# minikube's etcd (tests/rendered/test_logging.py) as its mirror pod is: a UID of its own in the
# API, while the kubelet files its logs under the static pod's, its config hash, which the
# mirror carries as kubernetes.io/config.mirror (pkg/kubelet/types).
STATIC_ETCD = {
    **ETCD,
    "__meta_kubernetes_pod_uid": "0b9d4a62-51e3-4b8e-9c57-2f8e61d0c7a4",
    "__meta_kubernetes_pod_annotationpresent_kubernetes_io_config_mirror": "true",
    "__meta_kubernetes_pod_annotation_kubernetes_io_config_mirror": ETCD[
        "__meta_kubernetes_pod_annotation_kubernetes_io_config_hash"
    ],
}
# Lines as the runtimes write them in the node's files: Alloy's documentation's examples for
# stage.cri and stage.docker (docs/sources/reference/components/loki/loki.process.md, v1.18.1),
# verbatim; CRI-O's conmon, which writes the time with its offset (src/ctr_logging.c); etcd's
# compaction line in minikube's Docker JSON and in containerd's CRI.
RUNTIME_LINES = {
    "alloy-docs-cri": ("2019-04-30T02:12:41.8443515Z stdout F message", "message", "stdout"),
    "alloy-docs-docker": (
        '{"log":"log message\\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}',
        "log message\n",
        "stderr",
    ),
    "cri-o": ("2026-11-27T18:00:00.100000000+01:00 stdout F level=info msg=ready", "level=info msg=ready", "stdout"),
    "etcd-docker": (DOCKER_LINE, json.loads(DOCKER_LINE)["log"], "stderr"),
    "etcd-containerd": (CRI_LINE, CRI_LINE.split(" ", 3)[3], "stderr"),
}


@pytest.mark.parametrize(("raw", "line", "stream"), RUNTIME_LINES.values(), ids=RUNTIME_LINES)
def test_alloy_decodes_each_runtimes_file_format(raw, line, stream):
    """Read from the node's files, each line reaches Loki as the container wrote it, with its
    stream as structured metadata (not a label: one stream per container, as through the API)
    and no label naming the file."""
    (shipped,) = alloy_ship_file_line(alloy_config(dev_files()), STATIC_ETCD, raw)
    assert (shipped.entry.line, shipped.entry.structured_metadata.get("stream")) == (line, stream)
    assert set(shipped.entry.labels) == {"namespace", "pod", "container", "node"}


def test_a_line_is_decoded_once_whatever_it_says():
    """A container whose own line is Docker JSON, on a CRI node: the CRI parser decodes the
    line, and the Docker parser leaves what the container wrote alone."""
    written = '{"log":"not from docker\\n","stream":"stdout","time":"2026-11-27T17:00:00Z"}'
    raw = f"2026-11-27T17:00:00.1Z stdout F {written}"
    (shipped,) = alloy_ship_file_line(alloy_config(dev_files()), STATIC_ETCD, raw)
    assert shipped.entry.line == written


def test_the_walkthrough_query_finds_etcds_compaction_line_in_its_static_pods_file():
    """`{container="etcd"} |= "compaction"` finds etcd's line, in both runtime formats, read
    from the file the kubelet files under the static pod's UID (not the API's)."""
    assert node_log_file(STATIC_ETCD) == (
        "/var/log/pods/kube-system_etcd-minikube_3f0c6e5b2c0a4f7e9d1b8a6c5e4d3c2b/etcd/0.log"
    )
    stack = dev_files()
    query = parse_selector(stack.run.exports["walkthroughLogQuery"].value)
    shipped = alloy_ship(alloy_config(stack), STATIC_ETCD, COMPACTION)
    assert len(shipped) == 2 and all(query.matches(s.entry) for s in shipped)
    assert not any(query.matches(s.entry) for s in alloy_ship(alloy_config(stack), STATIC_ETCD, "took too long"))


def test_the_runtime_parsers_match_selectors_are_valid_logql():
    config = alloy_config(dev_files())
    (formats,) = [b for b in parse(config) if (b.name, b.label) == ("loki.process", "runtime_formats")]
    selectors = [stage.attributes["selector"] for stage in formats.children("stage.match")]
    assert len(selectors) == 2
    assert logql_errors(selectors) == {s: [] for s in selectors}
