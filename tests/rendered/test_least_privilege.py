"""What the stack's pods hold, read from the rendered objects: Falco runs on capabilities
with modern_ebpf (CAP_SYS_ADMIN added only when asked, for Debian and Ubuntu kernels), the
bucket's credentials reach only the Loki pods that use the bucket, and
the CRDs kube-prometheus-stack installs outlive `pulumi destroy`."""

import pulumi
import pytest
from falco_pod import sys_admin_several_runtimes
from harness import run_program
from references import secrets_read
from rendering import helm_template, releases, render_stack

from components.monitoring import CRD, keep_crds

FALCO_CAPABILITY_ORDER = ("BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE")
FALCO_CAPABILITIES = set(FALCO_CAPABILITY_ORDER)


def falco_container(stack):
    (daemonset,) = [o for o in stack.from_release("falco") if o.kind == "DaemonSet" and o.name == "falco"]
    pod = daemonset.body["spec"]["template"]
    (container,) = [c for c in pod["spec"]["containers"] if c["name"] == "falco"]
    return pod, container


# dev asks for CAP_SYS_ADMIN (Pulumi.dev.yaml: minikube on an Ubuntu or Debian laptop's kernel).
@pytest.mark.parametrize(("name", "added"), [("dev", {"SYS_ADMIN"}), ("prod", set())])
def test_falco_on_modern_ebpf_runs_on_capabilities_not_privileged(name, added, capsys):
    stack = render_stack(name)
    assert stack.run.exports["falcoDriver"].value == "modern_ebpf"
    pod, container = falco_container(stack)
    context = container["securityContext"]
    assert not context.get("privileged")
    assert set(context["capabilities"]["add"]) == FALCO_CAPABILITIES | added
    assert not pod["spec"].get("hostNetwork") and not pod["spec"].get("hostPID")
    # No driver loader runs privileged: modern_ebpf is built into Falco.
    init = {c["name"]: c.get("securityContext") or {} for c in pod["spec"].get("initContainers") or []}
    assert "falco-driver-loader" not in init and not any(c.get("privileged") for c in init.values())
    with capsys.disabled():
        print(f"\n{name}: Falco (modern_ebpf) keeps {sorted(context['capabilities']['add'])}, not privileged")


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_falco_on_capabilities_is_not_confined_by_apparmor(name):
    """The runtime's default AppArmor profile denies Falco the ptrace read of other processes'
    /proc entries its SYS_PTRACE is for (falcosecurity/charts 1310e60): the chart unconfines
    it when driver.modernEbpf.leastPrivileged is set, whatever containerSecurityContext says."""
    pod, _ = falco_container(render_stack(name))
    assert pod["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/falco"] == "unconfined"


def test_falco_holds_sys_admin_only_when_asked_and_stays_unprivileged():
    """falco.capabilities = sysAdmin: for kernels whose kernel.perf_event_paranoid is above 2
    (Debian 3, Ubuntu 4), which refuse Falco's perf events without CAP_SYS_ADMIN."""
    pod, container = falco_container(sys_admin_several_runtimes())
    assert container["securityContext"] == {"capabilities": {"add": [*FALCO_CAPABILITY_ORDER, "SYS_ADMIN"]}}
    assert not pod["spec"].get("hostNetwork") and not pod["spec"].get("hostPID")


def test_the_tutorials_modern_ebpf_runs_on_capabilities_too():
    run = run_program({"profile": "tutorial", "falco": {"driver": "modern_ebpf"}})
    values = run.chart_values("falco")
    assert values["driver"]["modernEbpf"] == {"leastPrivileged": True}
    assert values["containerSecurityContext"] == {"capabilities": {"add": list(FALCO_CAPABILITY_ORDER)}}


@pytest.mark.parametrize(
    ("config", "driver"), [({"falco": {"driver": "kmod"}}, "kmod"), ({"profile": "tutorial"}, "ebpf")]
)
def test_kmod_and_the_legacy_probe_stay_privileged(config, driver):
    """A kernel module cannot be loaded with capabilities, and the legacy probe's loader
    runs privileged: the charts give both a privileged Falco (docs/architecture.md: Falco's driver and privileges)."""
    run = run_program(config)
    values = run.chart_values("falco")
    assert values["driver"]["kind"] == driver
    assert values["driver"]["modernEbpf"] == {"leastPrivileged": False}
    assert "containerSecurityContext" not in values  # the chart's privileged container stands


def secret_readers(stack, secret):
    """Every workload whose pods read ``secret``, by envFrom, env, or a secret or projected volume."""
    return {workload.owner.name for workload in stack.workloads() if secret in secrets_read(workload)}


def test_bucket_credentials_reach_only_the_loki_pods_that_use_the_bucket():
    stack = render_stack("prod")
    stack.get("Secret", "loki-object-storage", "logging")
    assert secret_readers(stack, "loki-object-storage") == {"loki-read", "loki-write", "loki-backend"}
    caches = [w for w in stack.workloads() if w.owner.name.endswith("-cache")]
    assert caches and not any("loki-object-storage" in str(w.pod) for w in caches)


def test_the_prometheus_operators_crds_are_kept_on_destroy():
    run = run_program({})
    chart = run.charts()["kube-prometheus-stack"]
    assert chart.transforms == 1
    crds = render_stack("dev").of_kind("CustomResourceDefinition")
    assert {o.name for o in crds} >= {"servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"}
    for crd in crds:
        args = pulumi.ResourceTransformArgs(
            custom=True,
            type_=CRD,
            name=f"kube-prometheus-stack:{crd.name}",
            props=crd.body,
            opts=pulumi.ResourceOptions(),
        )
        result = keep_crds(args)
        assert result is not None and result.opts.retain_on_delete is True and result.props is crd.body


def test_everything_else_of_the_chart_goes_on_destroy():
    args = pulumi.ResourceTransformArgs(
        custom=True,
        type_="kubernetes:apps/v1:Deployment",
        name="grafana",
        props={},
        opts=pulumi.ResourceOptions(),
    )
    assert keep_crds(args) is None


def test_existing_crds_are_used_as_they_are():
    """monitoring.installCrds = false: the chart installs no CRD (they are there already),
    and still runs Prometheus through them."""
    run = run_program({"monitoring": {"installCrds": False}})
    kinds = {body["kind"] for body in helm_template(releases(run)["kube-prometheus-stack"])}
    assert "CustomResourceDefinition" not in kinds
    assert {"Prometheus", "ServiceMonitor", "PrometheusRule"} <= kinds
