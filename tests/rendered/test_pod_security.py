"""Every namespace the stack creates carries the strictest Pod Security level its pods pass,
enforced, and every pod the cluster will run (the operator's Prometheus included) passes
its namespace's level, checked with the Pod Security Standards of tests/support/pod_security.py."""

import pytest
from pod_security import BASELINE, PRIVILEGED, RESTRICTED, strictest_level, violations, workload_violations
from rendering import KUBERNETES_VERSION

LABEL = "pod-security.kubernetes.io"


def levels(stack):
    return {
        o.name: o.labels.get(f"{LABEL}/enforce")
        for o in stack.objects
        if o.kind == "Namespace" and o.source == "program"
    }


def test_every_pod_passes_its_namespaces_level(stack, capsys):
    enforced = levels(stack)
    workloads = list(stack.workloads())
    assert enforced and workloads
    failing = []
    for workload in workloads:
        level = enforced.get(workload.owner.namespace)
        assert level is not None, f"{workload.owner} runs in a namespace the stack does not label"
        failing += [f"{workload.owner}: {v}" for v in workload_violations(workload, level)]
    with capsys.disabled():
        print(f"\n{stack.name}: Pod Security enforced per namespace: {enforced}")
    assert failing == []


def test_each_namespace_is_labelled_with_the_strictest_level_its_pods_pass(stack):
    by_namespace = {}
    for workload in stack.workloads():
        by_namespace.setdefault(workload.owner.namespace, []).append(workload)
    assert levels(stack) == {ns: strictest_level(pods) for ns, pods in by_namespace.items()}


def test_only_falcos_namespace_is_privileged_and_says_why(stack):
    """Falco's namespace holds every pod that needs the host; the others run restricted."""
    assert levels(stack) == {"monitoring": RESTRICTED, "logging": RESTRICTED, "falco": PRIVILEGED}
    host_pods = {
        w.owner.name for w in stack.workloads() if w.owner.namespace == "falco" and workload_violations(w, BASELINE)
    }
    expected = {"falco", "kube-prometheus-stack-prometheus-node-exporter"}
    assert host_pods == (expected | {"loki-promtail"} if stack.profile == "tutorial" else expected)


def test_the_labels_enforce_audit_and_warn_at_the_version_checked_here(stack):
    namespaces = [o for o in stack.objects if o.kind == "Namespace" and o.source == "program"]
    assert namespaces
    for namespace in namespaces:
        labels = namespace.labels
        level = labels[f"{LABEL}/enforce"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"{LABEL}/{mode}"] == level
            assert labels[f"{LABEL}/{mode}-version"] == f"v{KUBERNETES_VERSION}"


# -- the checks, on pods written here -----------------------------------------------------------

RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
}


def _with(pod=None, container=None, volumes=None):
    spec = {**RESTRICTED_POD, **(pod or {})}
    spec["containers"] = [{**RESTRICTED_POD["containers"][0], **(container or {})}]
    if volumes is not None:
        spec["volumes"] = volumes
    return spec


@pytest.mark.parametrize(
    ("pod", "annotations", "strictest"),
    [
        (_with(), {}, RESTRICTED),
        # restricted only
        (_with(pod={"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}), {}, BASELINE),
        (_with(container={"securityContext": {"capabilities": {"drop": ["ALL"]}}}), {}, BASELINE),
        (
            _with(
                container={"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"add": ["CHOWN"]}}}
            ),
            {},
            BASELINE,
        ),
        (_with(pod={"securityContext": {"runAsNonRoot": True}}), {}, BASELINE),
        (_with(pod={"securityContext": {**RESTRICTED_POD["securityContext"], "runAsUser": 0}}), {}, BASELINE),
        (_with(volumes=[{"name": "nfs", "nfs": {"server": "x", "path": "/"}}]), {}, BASELINE),
        # beyond baseline
        (_with(pod={"hostNetwork": True}), {}, PRIVILEGED),
        (_with(pod={"hostPID": True}), {}, PRIVILEGED),
        (_with(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), {}, PRIVILEGED),
        (_with(container={"securityContext": {"privileged": True}}), {}, PRIVILEGED),
        (
            _with(
                container={
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["BPF", "PERFMON"]},
                    }
                }
            ),
            {},
            PRIVILEGED,
        ),
        (_with(container={"ports": [{"containerPort": 80, "hostPort": 80}]}), {}, PRIVILEGED),
        (_with(), {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}, PRIVILEGED),
        (_with(pod={"securityContext": {"seccompProfile": {"type": "Unconfined"}}}), {}, PRIVILEGED),
        (_with(pod={"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}), {}, PRIVILEGED),
    ],
    ids=[
        "restricted",
        "no-runAsNonRoot",
        "no-allowPrivilegeEscalation-false",
        "adds-a-default-capability",
        "no-seccomp-profile",
        "runs-as-uid-0",
        "nfs-volume",
        "host-network",
        "host-pid",
        "host-path",
        "privileged",
        "bpf-capabilities",
        "host-port",
        "apparmor-unconfined",
        "seccomp-unconfined",
        "unsafe-sysctl",
    ],
)
def test_the_checks_follow_the_pod_security_standards(pod, annotations, strictest):
    passed = [level for level in (RESTRICTED, BASELINE, PRIVILEGED) if not violations(pod, annotations, level)]
    assert passed[0] == strictest, violations(pod, annotations, RESTRICTED)


def test_falcosidekick_passes_the_restricted_level_inside_the_privileged_namespace(stack):
    """It takes events from the network: of all pods it least needs privileges."""
    sidekicks = [w for w in stack.workloads() if w.owner.source == "falcosidekick" and w.owner.kind == "Deployment"]
    if stack.profile == "tutorial":
        assert sidekicks == []
        return
    (sidekick,) = sidekicks
    assert workload_violations(sidekick, RESTRICTED) == []
