"""The scale-out environment (Pulumi.prod.yaml): Loki simple-scalable on object storage,
replicas and disruption budgets, two Falcosidekick replicas, volumes kept on destroy (and
adopted again, alone), Grafana behind an Ingress."""

import json

import pulumi
import pytest
from harness import CONFIG_GROUP, Secret, environment_config, run_program

from components.namespaces import retain_on_delete

PROD = environment_config("prod")
CREDENTIALS = {"lokiS3AccessKeyId": Secret("AKIAEXAMPLE"), "lokiS3SecretAccessKey": Secret("wJalrXUtnFEMI/EXAMPLEKEY")}


@pytest.fixture(scope="module")
def prod():
    return run_program({**PROD, **CREDENTIALS}, stack="prod")


def test_loki_runs_simple_scalable_on_the_bucket(prod):
    values = prod.chart_values("loki")
    assert values["deploymentMode"] == "SimpleScalable"
    assert values["loki"]["storage"] == {
        "type": "s3",
        "bucketNames": {"chunks": "runtime-defense-loki"},
        "s3": {
            "endpoint": "s3.eu-west-1.amazonaws.com",
            "insecure": False,
            "s3ForcePathStyle": False,
            "region": "eu-west-1",
        },
    }
    assert values["loki"]["schemaConfig"]["configs"][0]["object_store"] == "s3"
    assert values["loki"]["compactor"] == {"retention_enabled": True, "delete_request_store": "s3"}
    assert values["loki"]["limits_config"]["retention_period"] == "30d"
    assert values["loki"]["commonConfig"]["replication_factor"] == 3
    assert values["singleBinary"]["replicas"] == 0


@pytest.mark.parametrize("target", ["read", "write", "backend"])
def test_each_target_has_replicas_a_disruption_budget_and_resources(prod, target):
    values = prod.chart_values("loki")[target]
    assert values["replicas"] == 3
    assert values["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    assert set(values["resources"]["requests"]) == {"cpu", "memory"}


def test_clients_push_to_the_write_target_and_query_the_read_target(prod):
    assert prod.exports["lokiPushUrl"].value == "http://loki-write.logging.svc.cluster.local:3100/loki/api/v1/push"
    assert prod.exports["lokiQueryUrl"].value == "http://loki-read.logging.svc.cluster.local:3100"
    assert "loki-write.logging" in prod.chart_values("alloy")["alloy"]["configMap"]["content"]


def test_bucket_credentials_reach_loki_only_through_a_secret(prod):
    secret = prod.manifest("Secret", "loki-object-storage")
    assert secret["stringData"] == {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/EXAMPLEKEY",
    }
    group = prod.named("logging-object-storage")
    assert group.secret("objs")
    values = prod.chart_values("loki")
    # Only the targets that talk to the bucket read it (tests/rendered/test_least_privilege.py
    # checks the rendered pods): not `global`, which the memcached pods read too.
    assert "global" not in values
    for target in ("read", "write", "backend"):
        assert values[target]["extraEnvFrom"] == [{"secretRef": {"name": "loki-object-storage"}}]
    assert "wJalrXUtnFEMI" not in json.dumps(values) and "AKIAEXAMPLE" not in json.dumps(values)
    assert group.urn in prod.charts()["loki"].dependencies


def test_without_credentials_loki_uses_the_pods_own_identity():
    run = run_program(PROD, stack="prod")
    values = run.chart_values("loki")
    assert not [target for target in ("global", "read", "write", "backend") if "extraEnvFrom" in values.get(target, {})]
    assert not [m for m in run.manifests() if m["metadata"]["name"] == "loki-object-storage"]


def test_two_falcosidekick_replicas(prod):
    assert prod.chart_values("falcosidekick")["replicaCount"] == 2


def test_loki_volumes_and_their_namespace_outlive_a_destroy(prod):
    for target in ("write", "backend"):
        persistence = prod.chart_values("loki")[target]["persistence"]
        assert persistence["whenDeleted"] == "Retain" and persistence["size"] == "20Gi"
    kept = prod.named("runtime-defense-kept-namespaces")
    assert [m["metadata"]["name"] for m in kept.plain("objs")] == ["logging"]
    assert kept.transforms == 1
    assert prod.charts()["loki"].plain("namespace") == "logging"
    assert kept.urn in prod.charts()["loki"].dependencies
    owned = prod.named("runtime-defense-namespaces")
    assert [m["metadata"]["name"] for m in owned.plain("objs")] == ["monitoring", "falco"]
    assert owned.transforms == 0
    # ... and the next `pulumi up` adopts what a destroy left behind, and only that: the one
    # provider allowed to take over existing objects creates the kept namespace, nothing else.
    adopting = prod.named("kubernetes-retained")
    assert adopting.plain("upsertExistingObjects") == "true"  # provider config is a string
    assert prod.named("kubernetes").plain("upsertExistingObjects") is None
    reference = f"{adopting.urn}::{adopting.urn.rsplit('::', 1)[-1]}-id"
    users = [r.name for r in prod.resources if reference in (r.provider, *r.providers.values())]
    assert users == ["runtime-defense-kept-namespaces"]


def test_the_kept_namespaces_transform_retains_on_delete():
    args = pulumi.ResourceTransformArgs(
        custom=True, type_="kubernetes:core/v1:Namespace", name="logging", props={"a": 1}, opts=pulumi.ResourceOptions()
    )
    result = retain_on_delete(args)
    assert result.opts.retain_on_delete is True and result.props == {"a": 1}


def test_dev_keeps_nothing_and_adopts_nothing():
    run = run_program({})
    assert not [g for g in run.of_type(CONFIG_GROUP) if g.transforms]
    assert run.named("kubernetes").plain("upsertExistingObjects") is None
    assert not [r for r in run.resources if r.name == "kubernetes-retained"]
    assert run.chart_values("loki")["singleBinary"]["persistence"]["whenDeleted"] == "Delete"


def settings(config, prefix=""):
    """A stack file's settings by dotted key."""
    if isinstance(config, dict):
        return {k: v for key, value in config.items() for k, v in settings(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): config}


def test_every_setting_of_the_prod_stack_file_takes_effect(prod):
    """The file is valid config (the fixture runs the program with it, as the CLI hands it
    over), and each of its settings reaches what is deployed instead of a default: a new
    setting in the file needs a line here."""
    loki = prod.chart_values("loki")
    baseline = prod.chart_values("kube-prometheus-stack")
    ingress = baseline["grafana"]["ingress"]
    (grafana_policy,) = [
        m for m in prod.manifests() if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "grafana"
    ]
    admitted = [p["namespaceSelector"]["matchLabels"] for r in grafana_policy["spec"]["ingress"] for p in r["from"]]
    certificates = {r.name: r.plain_inputs() for r in prod.of_type("tls:index/locallySignedCert:LocallySignedCert")}
    assert certificates
    storage = loki["loki"]["storage"]
    in_effect = {
        "profile": prod.exports["profile"].value,
        "kubeContext": prod.named("kubernetes").plain("context"),
        "monitoring.deploy": "kube-prometheus-stack" in prod.charts(),
        "monitoring.controlPlaneMetrics": baseline["kubeEtcd"]["enabled"] and baseline["kubeScheduler"]["enabled"],
        "monitoring.grafanaIngress.host": ingress["enabled"] and ingress["hosts"][0],
        "monitoring.grafanaIngress.tlsSecret": ingress["tls"][0]["secretName"],
        "monitoring.grafanaIngress.className": ingress["ingressClassName"],
        "monitoring.grafanaIngress.controllerNamespace": admitted[0]["kubernetes.io/metadata.name"],
        "grafana.url": prod.exports["grafanaUrl"].value,
        "logging.mode": {"SimpleScalable": "scalable"}.get(loki["deploymentMode"]),
        "logging.replicas": {int(loki[target]["replicas"]) for target in ("read", "write", "backend")}.pop(),
        "logging.storageSize": {loki[target]["persistence"]["size"] for target in ("write", "backend")}.pop(),
        "logging.retention": loki["loki"]["limits_config"]["retention_period"],
        "logging.retainVolumes": loki["write"]["persistence"]["whenDeleted"] == "Retain",
        "logging.objectStorage.endpoint": f"https://{storage['s3']['endpoint']}",
        "logging.objectStorage.bucket": storage["bucketNames"]["chunks"],
        "logging.objectStorage.region": storage["s3"]["region"],
        "eventExport.replicas": prod.chart_values("falcosidekick")["replicaCount"],
        # The runtime's socket is the one the container plugin asks (containerd: the CRI engine's).
        "falco.containerRuntime": {"/run/containerd/containerd.sock": "containerd"}.get(
            prod.chart_values("falco")["collectors"]["containerEngine"]["engines"]["cri"]["sockets"][0]
        ),
        "pki.validityHours": {int(c["validityPeriodHours"]) for c in certificates.values()}.pop(),
        "pki.earlyRenewalHours": {int(c["earlyRenewalHours"]) for c in certificates.values()}.pop(),
    }
    written = settings(PROD)
    assert set(in_effect) == set(written), "every setting of Pulumi.prod.yaml, and only those, is checked here"
    assert in_effect == written


def test_prods_grafana_has_no_node_port(prod):
    """Behind its Ingress (tests/rendered/test_network_policies.py renders it), Grafana
    listens on no node: no NodePort is exported, and the API is reached at the Ingress."""
    assert "grafanaNodePort" not in prod.exports
    assert prod.exports["grafanaUrl"].value == "https://grafana.example.internal"
    assert run_program({}).exports["grafanaNodePort"].value == 30300
