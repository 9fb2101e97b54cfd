"""The Pod Security Standards, as the PodSecurity admission controller checks them at
version 1.33 (https://kubernetes.io/docs/concepts/security/pod-security-standards/; the
checks of kubernetes/pod-security-admission policy/check_*.go). ``violations`` lists, in
words, what keeps a pod out of a level; ``strictest_level`` is the most restrictive level
a set of pods passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rendering import Workload

RESTRICTED, BASELINE, PRIVILEGED = "restricted", "baseline", "privileged"
LEVELS = (RESTRICTED, BASELINE, PRIVILEGED)  # from the most restrictive

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {  # as of 1.32
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
GOOD_SECCOMP = {"RuntimeDefault", "Localhost"}


def _containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(pod.get("initContainers") or []), *pod["containers"], *(pod.get("ephemeralContainers") or [])]


def _context(container: Mapping[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def baseline_violations(pod: Mapping[str, Any], annotations: Mapping[str, str]) -> list[str]:
    found = []
    context = pod.get("securityContext") or {}
    containers = _containers(pod)
    if (context.get("windowsOptions") or {}).get("hostProcess") or any(
        (_context(c).get("windowsOptions") or {}).get("hostProcess") for c in containers
    ):
        found.append("HostProcess: windowsOptions.hostProcess=true")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"host namespaces: {field}=true")
    for c in containers:
        if _context(c).get("privileged"):
            found.append(f"privileged: container {c['name']} sets privileged=true")
        added = set((_context(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            found.append(f"capabilities: container {c['name']} adds {sorted(added)}")
        for port in c.get("ports") or []:
            # The API server defaults hostPort to containerPort on the host network.
            host_port = port.get("hostPort") or (port["containerPort"] if pod.get("hostNetwork") else 0)
            if host_port:
                found.append(f"host ports: container {c['name']} uses host port {host_port}")
        if _context(c).get("procMount") not in (None, "Default"):
            found.append(f"/proc mount: container {c['name']} sets procMount={_context(c)['procMount']}")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"hostPath volume {volume['name']} ({volume['hostPath']['path']})")
    for where, ctx in [("pod", context), *((f"container {c['name']}", _context(c)) for c in containers)]:
        profile = (ctx.get("appArmorProfile") or {}).get("type")
        if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
            found.append(f"AppArmor: {where} sets appArmorProfile.type={profile}")
        selinux = ctx.get("seLinuxOptions") or {}
        if selinux and (selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role")):
            found.append(f"SELinux: {where} sets seLinuxOptions {selinux}")
        seccomp = (ctx.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in GOOD_SECCOMP:
            found.append(f"seccomp: {where} sets seccompProfile.type={seccomp}")
    for key, value in annotations.items():
        apparmor = key.startswith("container.apparmor.security.beta.kubernetes.io/")
        if apparmor and value and value != "runtime/default" and not value.startswith("localhost/"):
            found.append(f"AppArmor: annotation {key}={value}")
        seccomp = key == "seccomp.security.alpha.kubernetes.io/pod" or key.startswith(
            "container.seccomp.security.alpha.kubernetes.io/"
        )
        if seccomp and value not in ("runtime/default", "docker/default") and not value.startswith("localhost/"):
            found.append(f"seccomp: annotation {key}={value}")
    for sysctl in context.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"sysctls: {sysctl['name']}")
    return found


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    found = []
    context = pod.get("securityContext") or {}
    containers = _containers(pod)
    for volume in pod.get("volumes") or []:
        kinds = [k for k in volume if k != "name"]
        if not set(kinds) <= RESTRICTED_VOLUMES:
            found.append(f"volume types: {volume['name']} is {kinds}")
    pod_non_root = context.get("runAsNonRoot")
    if pod_non_root is False:
        found.append("runAsNonRoot: pod sets runAsNonRoot=false")
    if context.get("runAsUser") == 0:
        found.append("runAsUser: pod sets runAsUser=0")
    pod_seccomp = (context.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in GOOD_SECCOMP:
        found.append(f"seccomp: pod sets seccompProfile.type={pod_seccomp}")
    for c in containers:
        ctx, name = _context(c), c["name"]
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"privilege escalation: container {name} must set allowPrivilegeEscalation=false")
        non_root = ctx.get("runAsNonRoot")
        if non_root is False or (non_root is None and pod_non_root is not True):
            found.append(f"runAsNonRoot: container {name} runs as root unless runAsNonRoot=true")
        if ctx.get("runAsUser") == 0:
            found.append(f"runAsUser: container {name} sets runAsUser=0")
        seccomp = (ctx.get("seccompProfile") or {}).get("type")
        if (seccomp is None and pod_seccomp not in GOOD_SECCOMP) or (
            seccomp is not None and seccomp not in GOOD_SECCOMP
        ):
            found.append(f"seccomp: container {name} has no RuntimeDefault or Localhost profile")
        capabilities = ctx.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"capabilities: container {name} must drop ALL")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"capabilities: container {name} adds {sorted(capabilities['add'])}")
    return found


def violations(pod: Mapping[str, Any], annotations: Mapping[str, str], level: str) -> list[str]:
    """What keeps a pod (spec and annotations) out of ``level``; [] when it passes."""
    if level == PRIVILEGED:
        return []
    found = baseline_violations(pod, annotations)
    if level == RESTRICTED:
        found += restricted_violations(pod)  # everything baseline forbids, and more
    return list(dict.fromkeys(found))


def workload_violations(workload: Workload, level: str) -> list[str]:
    return violations(workload.pod, workload.annotations, level)


def strictest_level(workloads: Iterable[Workload]) -> str:
    """The most restrictive level every one of ``workloads`` passes."""
    workloads = list(workloads)
    for level in LEVELS:
        if all(not workload_violations(w, level) for w in workloads):
            return level
    return PRIVILEGED
