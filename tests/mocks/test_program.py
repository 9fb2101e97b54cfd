"""The whole program under mocks: the charts each profile deploys, where, and through what."""

import os
import shutil
import subprocess

import pytest
import yaml
from harness import CHART, CONFIG_GROUP, ENVIRONMENTS, ROOT, Secret, environment_config, run_program

PROVIDER_TYPE = "pulumi:providers:kubernetes"

EXPECTED_CHARTS = {
    "current": {
        "kube-prometheus-stack": "charts/kube-prometheus-stack-88.5.3.tgz",
        "loki": "charts/loki-18.11.0.tgz",
        "alloy": "charts/alloy-1.11.1.tgz",
        "falco": "charts/falco-9.1.0.tgz",
        "falcosidekick": "charts/falcosidekick-0.14.0.tgz",
    },
    "tutorial": {
        "kube-prometheus-stack": "charts/kube-prometheus-stack-88.5.3.tgz",
        "loki": "charts/loki-stack-2.10.3.tgz",
        "falco": "charts/falco-8.0.5.tgz",
        "falco-exporter": "charts/falco-exporter-0.12.2.tgz",
    },
}
RELEASE_NAMESPACE = {"kube-prometheus-stack": "monitoring", "loki": "logging", "alloy": "logging"}


@pytest.fixture(scope="module", params=["current", "tutorial"])
def profile_run(request):
    return request.param, run_program({"profile": request.param, "kubeContext": "minikube"})


def test_each_profile_deploys_its_pinned_charts(profile_run):
    profile, run = profile_run
    deployed = {release: chart.plain("chart") for release, chart in run.charts().items()}
    assert deployed == EXPECTED_CHARTS[profile]


def test_charts_land_in_their_configured_namespaces(profile_run):
    _, run = profile_run
    for release, chart in run.charts().items():
        if release in RELEASE_NAMESPACE:
            assert chart.plain("namespace") == RELEASE_NAMESPACE[release], release


def test_namespaces_are_created_once_and_before_the_charts(profile_run):
    _, run = profile_run
    namespaces = [m["metadata"]["name"] for m in run.manifests() if m["kind"] == "Namespace"]
    assert sorted(namespaces) == ["falco", "logging", "monitoring"]
    group = run.named("runtime-defense-namespaces")
    for release, chart in run.charts().items():
        assert group.urn in chart.dependencies, f"{release} does not wait for its namespace"


def test_one_explicit_kubernetes_provider_serves_every_kubernetes_resource(profile_run):
    _, run = profile_run
    providers = run.of_type(PROVIDER_TYPE)
    assert [p.name for p in providers] == ["kubernetes"]
    assert providers[0].plain("context") == "minikube"
    provider_ref = f"{providers[0].urn}::{providers[0].name}-id"
    kubernetes = [r for r in run.resources if r.type.startswith("kubernetes:")]
    assert {r.type for r in kubernetes} >= {CHART, CONFIG_GROUP}
    for resource in kubernetes:
        assert resource.provider == provider_ref or resource.providers.get("kubernetes") == provider_ref, resource.name


def test_every_resource_is_a_child_of_a_runtime_defense_component(profile_run):
    _, run = profile_run
    components = {r.urn for r in run.resources if r.type.startswith("runtime-defense:")}
    for resource in run.resources:
        if resource.type == PROVIDER_TYPE or resource.type.startswith("runtime-defense:"):
            continue
        assert resource.parent in components, f"{resource.type} {resource.name} has parent {resource.parent}"


def test_custom_namespaces_are_honoured():
    run = run_program({"namespaces": {"monitoring": "observability", "logging": "observability", "falco": "sec"}})
    namespaces = [m["metadata"]["name"] for m in run.manifests() if m["kind"] == "Namespace"]
    assert namespaces == ["observability", "sec"]
    assert {c.plain("namespace") for c in run.charts().values()} >= {"observability"}
    assert run.exports["lokiQueryUrl"].value == "http://loki.observability.svc.cluster.local:3100"


def test_without_the_baseline_no_prometheus_or_grafana_is_deployed():
    run = run_program(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
            "grafanaToken": Secret("t"),
        }
    )
    assert "kube-prometheus-stack" not in run.charts()
    assert "grafanaAdminPassword" not in run.exports
    assert not any(r.type.startswith("random:") for r in run.resources)
    # The existing Prometheus may live in "monitoring": the stack neither creates nor deletes it.
    assert [m["metadata"]["name"] for m in run.manifests() if m["kind"] == "Namespace"] == ["logging", "falco"]
    assert run.exports["namespaces"].value == ["logging", "falco"]


def test_stack_outputs(profile_run):
    profile, run = profile_run
    exports = {k: e.value for k, e in run.exports.items()}
    assert exports["profile"] == profile
    assert exports["lokiQueryUrl"] == "http://loki.logging.svc.cluster.local:3100"
    assert exports["lokiPushUrl"] == "http://loki.logging.svc.cluster.local:3100/loki/api/v1/push"
    assert exports["walkthroughLogQuery"] == '{container="etcd"} |= "compaction"'
    assert exports["namespaces"] == ["monitoring", "logging", "falco"]
    assert exports["grafanaNodePort"] == 30300


def test_evaluating_twice_gives_identical_inputs():
    def snapshot():
        run = run_program({"profile": "current"})
        return sorted(
            ((r.type, r.name, r.parent, sorted(r.dependencies), r.plain_inputs()) for r in run.resources),
            key=lambda item: (item[0], item[1]),
        )

    assert snapshot() == snapshot()


def test_every_environment_evaluates():
    assert ENVIRONMENTS
    for stack in ENVIRONMENTS:
        assert run_program(environment_config(stack), stack=stack).charts(), stack


# -- the dev stack, from a fresh clone ---------------------------------------------------------


def test_the_dev_stack_deploys_from_its_tracked_file_and_a_kubeconfig_alone(tmp_path):
    """What a fresh clone has: Pulumi.dev.yaml as committed, and a kubeconfig with a `minikube`
    context (here not even the current one). No grafana.url, no script."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "minikube", "cluster": {"server": "https://192.168.39.10:8443"}},
                    {"name": "work", "cluster": {"server": "https://10.9.8.7:6443"}},
                ],
                "contexts": [
                    {"name": "minikube", "context": {"cluster": "minikube", "user": "minikube"}},
                    {"name": "work", "context": {"cluster": "work", "user": "minikube"}},
                ],
                "current-context": "work",
                "users": [{"name": "minikube", "user": {"token": "t"}}],
            }
        )
    )
    config = environment_config("dev")
    assert "grafana" not in config
    run = run_program(config, stack="dev", environ={"KUBECONFIG": str(kubeconfig)})
    assert run.charts() and run.exports["profile"].value == "current"
    (provider,) = run.of_type(PROVIDER_TYPE)
    assert provider.plain("context") == "minikube"
    assert run.exports["grafanaUrl"].value == "http://192.168.39.10:30300"
    assert f'kube context "minikube" (from runtime-defense:kubeContext) in the kubeconfig {kubeconfig}' in (
        run.exports["grafanaUrlSource"].value
    )


def test_the_dev_stack_file_disables_the_default_kubernetes_provider():
    settings = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    assert settings["config"]["pulumi:disable-default-providers"] == ["kubernetes"]


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def checkout():
    """The git checkout the tests run in (a tarball of the sources has none)."""
    if shutil.which("git") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("git is not installed")
        pytest.skip("git is not installed (https://git-scm.com/downloads): the tracked files cannot be told apart")
    if git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout (e.g. scripts/mutation_test.py's copy): the tracked files cannot be told apart")


def test_the_committed_dev_stack_file_holds_nothing_personal(checkout):
    """As staged for commit: no encryption salt (it belongs to one passphrase: Pulumi refuses
    every other passphrase against it), no Grafana URL, no secret."""
    staged = git("show", ":Pulumi.dev.yaml")
    assert staged.returncode == 0, "Pulumi.dev.yaml is not tracked"
    settings = yaml.safe_load(staged.stdout)
    assert set(settings) == {"config"}, f"{set(settings) - {'config'}} is personal"
    assert "runtime-defense:grafana" not in settings["config"]
    assert "secure:" not in staged.stdout


def test_stack_files_of_the_environments_are_tracked_and_any_other_stays_yours(checkout):
    def ignored(path: str) -> bool:
        return git("check-ignore", "--no-index", "-q", path).returncode == 0

    for environment in ("dev", "prod", "hub", "spoke-a", "spoke-b"):
        assert not ignored(f"Pulumi.{environment}.yaml"), environment
    for personal in ("alice", "tutorial", "spoke-c", "dev-old"):
        assert ignored(f"Pulumi.{personal}.yaml"), personal


def test_the_local_backend_exists_in_every_clone_and_its_state_is_never_committed(checkout):
    """Pulumi.yaml's file backend must exist before any pulumi command (pulumi/pulumi#15841)."""
    backend = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["backend"]["url"]
    assert backend == "file://./.pulumi-state"
    placeholder = ".pulumi-state/.gitignore"
    assert git("ls-files", "--error-unmatch", placeholder).returncode == 0, "not tracked"
    assert git("check-ignore", "--no-index", "-q", placeholder).returncode != 0
    for state in (".pulumi-state/.pulumi/meta.yaml", ".pulumi-state/.pulumi/stacks/runtime-defense/dev.json"):
        assert git("check-ignore", "--no-index", "-q", state).returncode == 0, state
