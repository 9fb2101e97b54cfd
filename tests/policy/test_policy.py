"""The policy pack on what the engine hands it: each committed stack's Charts (registered with
no inputs), the objects they render (real Helm, tests/support/rendering.py), the program's own
manifests and resources. Every stack passes as built, in `pulumi up` and in a first
`pulumi preview`; each tampering a user could cause fails the policy that guards it.
"""

import base64
import copy
import functools
import shutil
import subprocess
import sys
from collections.abc import Callable

import pytest
import yaml
from falco_settings import read_falco_yaml
from harness import CHART, ROOT, kubernetes_type, run_program, unknown_paths
from policy_engine import (
    ADVISORY,
    MANDATORY,
    Finding,
    Resource,
    analyze,
    analyze_stack,
    kubernetes_object,
    mandatory,
    rules,
    stack_resources,
)
from rendering import STACKS, Obj, render_stack

from components.charts import PINNED_CHARTS


def rendered(name: str):
    return render_stack(name)


@pytest.fixture(scope="module", params=sorted(STACKS))
def stack(request):
    return rendered(request.param)


def profile(name: str) -> str:
    return STACKS[name][1].get("profile", "current")


CURRENT = [name for name in sorted(STACKS) if profile(name) == "current"]  # Falco -> Falcosidekick over HTTPS
TUTORIAL = [name for name in sorted(STACKS) if profile(name) == "tutorial"]  # falco-exporter -> Falco gRPC


def registered(run, stack) -> list[Resource]:
    """What ``run`` registers, with the rendered chart objects of ``stack`` after ``run``'s
    Chart transforms (a preview's: the restart annotation unknown)."""
    charts = run.charts()
    objects = [
        Obj(o.source, run.transformed(charts[o.source], kubernetes_type(o.body["apiVersion"], o.kind), o.name, o.body))
        for o in stack.objects
        if o.source in charts
    ]
    return stack_resources(run, objects)


@functools.cache
def as_built(name: str) -> tuple[list[Resource], list[Finding]]:
    """A stack's resources and what the pack reports on them (analysed once per session)."""
    stack = render_stack(name)  # its chart objects already carry their Charts' transforms
    resources = stack_resources(stack.run, stack.objects)
    return resources, analyze_stack(resources)


def edit(kind: str, name: str, how: Callable[[dict], None]) -> Callable[[Obj], dict | None]:
    """A change that edits one rendered object (a deep copy) in place with ``how``."""

    def change(obj: Obj) -> dict | None:
        if obj.kind != kind or obj.name != name or obj.source == "program":
            return None
        body = copy.deepcopy(obj.body)
        how(body)
        return body

    return change


def introduced(stack, change: Callable[[Obj], dict | None]) -> list[str]:
    """The mandatory violations ``change`` adds. Resource policies judge each resource on its
    own, so only the changed objects need judging again."""
    originals, changed = [], []
    for obj in stack.objects:
        body = change(obj)
        if body is not None:
            originals.append(kubernetes_object(obj.body, obj.source))
            changed.append(kubernetes_object(body, obj.source))
    assert changed, "the change touched no object"
    before = set(mandatory([f for r in originals for f in analyze(r)]))
    return [v for v in mandatory([f for r in changed for f in analyze(r)]) if v not in before]


def pod_spec(body: dict) -> dict:
    return body["spec"]["template"]["spec"]


def container(body: dict, name: str) -> dict:
    return next(c for c in pod_spec(body)["containers"] if c["name"] == name)


# -- as the engine sends it -------------------------------------------------------------------


def test_a_chart_as_the_engine_registers_it_passes():
    """Helm v4 Chart reaches the pack with no input properties: nothing to judge, no failure."""
    assert analyze(Resource(CHART, "falco", {})) == []


def test_every_stack_passes_as_built(stack):
    _, findings = as_built(stack.name)
    assert mandatory(findings) == []
    advisories = sorted({str(f) for f in findings if f.level == ADVISORY})
    if stack.profile == "current":  # Loki serves no TLS inside the cluster: the one advisory
        assert advisories == [
            "[falco-event-forwarding-over-tls] Falcosidekick forwards events in plain HTTP (LOKI_HOSTPORT="
            f"{stack.run.chart_values('falcosidekick')['config']['loki']['hostport']})"
        ]
    else:
        assert advisories == []


def test_every_stack_passes_in_a_first_preview(stack):
    """In `pulumi preview` the certificates, keys and passwords are unknown (the Secrets
    holding them, the restart annotation): nothing fails, and no policy is skipped."""
    stack_name, config = STACKS[stack.name]
    preview = run_program(config, stack=stack_name, preview=True)
    resources = registered(preview, stack)
    unknown = [r for r in resources if unknown_paths(r.props)]
    assert {"kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:Secret"} <= {r.type for r in unknown}
    # What differs from the stack as built (and passes there) is what holds unknown values.
    findings = [f for r in unknown for f in analyze(r)] + analyze_stack(resources, stack_only=True)
    assert mandatory(findings) == []
    assert not [f for f in findings if "during preview" in f.message]


def test_the_policies_judge_the_rendered_objects(stack):
    """Each policy has something to judge in every stack (a policy that never looks at
    anything would pass everything)."""
    resources, _ = as_built(stack.name)
    types = {r.type for r in resources}
    assert {"kubernetes:apps/v1:DaemonSet", "kubernetes:core/v1:ConfigMap", "kubernetes:core/v1:Secret"} <= types
    labelled = [r for r in resources if rules.chart_label(r.props)]
    assert len(labelled) > 50
    assert {rules.chart_label(r.props) for r in labelled} - set(rules.pins().charts), "subcharts are judged too"


# -- charts-pinned ----------------------------------------------------------------------------


def test_an_object_from_an_unpinned_chart_fails(stack):
    def bump(body):
        body["metadata"]["labels"]["helm.sh/chart"] = "falco-9.9.9"

    assert introduced(stack, edit("DaemonSet", "falco", bump)) == [
        "[charts-pinned] DaemonSet falco/falco comes from chart falco-9.9.9, which components/charts.py does "
        f"not pin (pinned: {', '.join(sorted(rules.pins().charts))})"
    ]


def test_an_archive_that_does_not_match_its_pin_fails(tmp_path, monkeypatch):
    """A vendored archive swapped for another build of the same version."""
    shutil.copytree(ROOT / "components", tmp_path / "components")
    shutil.copytree(ROOT / "charts", tmp_path / "charts")
    (tmp_path / "charts" / "falcosidekick-0.14.0.tgz").write_bytes(
        (ROOT / "charts" / "falcosidekick-0.14.0.tgz").read_bytes() + b"\0"
    )
    monkeypatch.setattr(rules, "PROJECT", tmp_path)
    obj = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "falcosidekick", "namespace": "falco"}}
    obj["metadata"]["labels"] = {"helm.sh/chart": "falcosidekick-0.14.0"}
    assert mandatory(analyze(kubernetes_object(obj, "falcosidekick"))) == [
        "[charts-pinned] Service falco/falcosidekick comes from chart falcosidekick-0.14.0: "
        "charts/falcosidekick-0.14.0.tgz does not match the sha256 pinned in components/charts.py"
    ]


def test_subcharts_are_read_from_the_pinned_archives():
    pins = rules.pins()
    assert pins.archive_problems == {}
    assert pins.parents("grafana-12.11.1") == {"kube-prometheus-stack-88.5.3"}
    assert pins.parents("promtail-6.17.1") == {"loki-stack-2.10.3"}
    assert pins.parents("grafana-99.0.0") == set()


def test_a_helm_release_is_refused_its_objects_are_invisible():
    release = Resource(rules.HELM_RELEASE, "falco", {"chart": "falco", "version": "9.1.0"})
    assert [f.policy for f in analyze(release) if f.level == MANDATORY] == ["charts-pinned"]


# -- no-plaintext-credentials -----------------------------------------------------------------


def test_a_plaintext_password_in_a_config_map_fails(stack):
    def add_password(body):
        body["data"]["grafana.ini"] += "[security]\nadmin_password = hunter2\n"

    assert introduced(stack, edit("ConfigMap", "kube-prometheus-stack-grafana", add_password)) == [
        "[no-plaintext-credentials] ConfigMap monitoring/kube-prometheus-stack-grafana key 'grafana.ini' "
        "sets admin_password in plain text: use a Secret"
    ]


def test_a_private_key_in_a_config_map_fails(stack):
    def add_key(body):
        body["data"]["client.key"] = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"

    assert introduced(stack, edit("ConfigMap", "falco", add_key)) == [
        "[no-plaintext-credentials] ConfigMap falco/falco key 'client.key' holds a private key: use a Secret"
    ]


def test_a_literal_password_in_env_fails(stack):
    def literal(body):
        env = container(body, "grafana")["env"]
        variable = next(e for e in env if e["name"] == "GF_SECURITY_ADMIN_PASSWORD")
        variable.pop("valueFrom")
        variable["value"] = "hunter2"

    assert introduced(stack, edit("Deployment", "kube-prometheus-stack-grafana", literal)) == [
        "[no-plaintext-credentials] Deployment monitoring/kube-prometheus-stack-grafana: containers 'grafana' "
        "sets GF_SECURITY_ADMIN_PASSWORD in plain text: use valueFrom.secretKeyRef"
    ]


def test_the_charts_default_grafana_password_fails():
    """What kube-prometheus-stack renders when its Grafana is not given an existing Secret."""
    default = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kube-prometheus-stack-grafana", "namespace": "monitoring"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in {"admin-password": "prom-operator"}.items()},
    }
    assert mandatory(analyze(kubernetes_object(default, "kube-prometheus-stack"))) == [
        "[no-plaintext-credentials] Secret monitoring/kube-prometheus-stack-grafana key 'admin-password' is a "
        "chart's default Grafana admin password"
    ]


# -- falco-events-over-tls --------------------------------------------------------------------


def falco_yaml(how: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(body):
        config = read_falco_yaml(body)
        how(config)
        body["data"]["falco.yaml"] = yaml.safe_dump(config)

    return change


@pytest.mark.parametrize("name", CURRENT)
def test_falcos_http_output_over_plain_http_fails(name):
    stack = rendered(name)

    def plain(config):
        config["http_output"]["url"] = config["http_output"]["url"].replace("https://", "http://")

    assert introduced(stack, edit("ConfigMap", "falco", falco_yaml(plain))) == [
        "[falco-events-over-tls] ConfigMap falco/falco: Falco's http_output must post to an https:// URL, not "
        "'http://falcosidekick.falco.svc.cluster.local:2801/'"
    ]


@pytest.mark.parametrize("name", CURRENT)
def test_falcos_http_output_without_a_client_certificate_fails(name):
    stack = rendered(name)

    def no_mtls(config):
        config["http_output"]["mtls"] = False

    assert [v.split(":")[0] for v in introduced(stack, edit("ConfigMap", "falco", falco_yaml(no_mtls)))] == [
        "[falco-events-over-tls] ConfigMap falco/falco"
    ]


@pytest.mark.parametrize("name", TUTORIAL)
def test_falcos_grpc_server_on_tcp_without_client_verification_fails(name):
    stack = rendered(name)

    def no_root(config):
        del config["grpc"]["root_certs"]

    assert introduced(stack, edit("ConfigMap", "falco", falco_yaml(no_root))) == [
        "[falco-events-over-tls] ConfigMap falco/falco: Falco's gRPC server listens on TCP without mutual TLS "
        "(root_certs unset)"
    ]


@pytest.mark.parametrize("name", CURRENT)
def test_falcosidekick_without_client_certificates_fails(name):
    stack = rendered(name)

    def optional(body):
        env = container(body, "falcosidekick")["env"]
        next(e for e in env if e["name"] == "TLSSERVER_MUTUALTLS")["value"] = "false"

    assert introduced(stack, edit("Deployment", "falcosidekick", optional)) == [
        "[falco-events-over-tls] Deployment falco/falcosidekick: Falcosidekick must receive events over TLS with "
        "client certificates required"
    ]


@pytest.mark.parametrize("name", TUTORIAL)
def test_falco_exporter_without_its_client_certificate_fails(name):
    stack = rendered(name)

    def unmounted(body):
        container(body, "falco-exporter")["volumeMounts"] = []

    assert introduced(stack, edit("DaemonSet", "falco-exporter", unmounted)) == [
        "[falco-events-over-tls] DaemonSet falco/falco-exporter: falco-exporter dials "
        "falco-grpc.falco.svc.cluster.local without its client certificate mounted from a Secret at /etc/falco/certs"
    ]


# -- workloads-sized, images-pinned -----------------------------------------------------------


def test_an_unsized_container_fails(stack):
    def unsized(body):
        resources = pod_spec(body)["initContainers"][0]["resources"]
        del resources["requests"]["memory"], resources["limits"]["memory"]

    introduced_ = introduced(stack, edit("DaemonSet", "falco", unsized))
    assert len(introduced_) == 1
    assert introduced_[0].startswith("[workloads-sized] DaemonSet falco/falco: initContainers ")
    assert introduced_[0].endswith("has no a memory request and no a memory limit")


def test_an_unpinned_image_fails(stack):
    def unpinned(body):
        container(body, "falco")["image"] = "docker.io/falcosecurity/falco:latest"

    label = next(o for o in stack.objects if o.kind == "DaemonSet" and o.name == "falco").labels["helm.sh/chart"]
    assert introduced(stack, edit("DaemonSet", "falco", unpinned)) == [
        "[images-pinned] DaemonSet falco/falco: containers 'falco' runs 'docker.io/falcosecurity/falco:latest', "
        f"which components/charts.py does not pin for chart {label}"
    ]


def test_an_image_pinned_for_another_chart_fails(stack):
    """Pinned, but not for this chart: Falco's DaemonSet running the exporter's image."""
    other = "docker.io/falcosecurity/falco-exporter:0.8.7"

    def swapped(body):
        container(body, "falco")["image"] = other

    assert [v.split(" runs ")[1].split(",")[0] for v in introduced(stack, edit("DaemonSet", "falco", swapped))] == [
        f"'{other}'"
    ]


def test_the_operator_run_prometheus_image_is_judged(stack):
    def unpinned(body):
        body["spec"]["image"] = "quay.io/prometheus/prometheus:v9.9.9"

    assert [
        v.split(":")[0] for v in introduced(stack, edit("Prometheus", "kube-prometheus-stack-prometheus", unpinned))
    ] == ["[images-pinned] Prometheus monitoring/kube-prometheus-stack-prometheus"]


# -- one-default-grafana-data-source ----------------------------------------------------------


def provisioned(name: str) -> Resource:
    text = f"apiVersion: 1\ndatasources:\n- name: {name}\n  type: loki\n  isDefault: true\n"
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "loki-datasource", "namespace": "logging", "labels": {"grafana_datasource": "1"}},
        "data": {"ds.yaml": text},
    }
    return kubernetes_object(body, "loki")


def test_a_second_default_data_source_fails(stack):
    """loki-stack's own data source ConfigMap, marked default, next to the program's default Prometheus."""
    resources, _ = as_built(stack.name)
    found = mandatory(analyze_stack([*resources, provisioned("Loki")], stack_only=True))
    assert found == [
        "[one-default-grafana-data-source] Grafana accepts one default data source, this stack marks 2: "
        "['Prometheus', 'Loki']"
    ]


# -- the pack runs with its own dependencies only ---------------------------------------------


def test_the_pack_loads_with_only_its_own_requirements():
    """`pulumi preview --policy-pack policy` runs the pack in policy/venv (pulumi, pulumi-policy,
    PyYAML): the pin table must load without the program's other SDKs."""
    names = lambda path: {  # noqa: E731
        line.split("==")[0].strip().lower() for line in path.read_text().splitlines() if "==" in line
    }
    missing = names(ROOT / "requirements.txt") - names(ROOT / "policy" / "requirements.txt")
    blocked = sorted({name.replace("-", "_") for name in missing} | {"components"})
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("not in the policy pack's venv: " + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT / "policy")!r})
import rules
print(len(rules.pins().charts), len(rules.POLICIES))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(PINNED_CHARTS)), str(len(rules.POLICIES))]
