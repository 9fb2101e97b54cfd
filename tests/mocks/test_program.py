"""The whole program under mocks: the charts each profile deploys, where, and through what."""

import pytest
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
    assert sorted(path.name for path in ROOT.glob("Pulumi.*.yaml")) == ["Pulumi.prod.yaml"], "dev's is untracked"
    for stack in ENVIRONMENTS:
        assert run_program(environment_config(stack), stack=stack).charts(), stack
