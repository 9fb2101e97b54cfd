"""Falco, its event transport and exporter, as each profile configures them (under mocks)."""

import hashlib
import json

import pytest
from harness import CONFIG_GROUP, Secret, fake_tls_outputs, run_program
from tls_emulator import TlsEmulator

from components.falco_host import READ_ONLY
from components.scraping import NODE_RELABELING

EXISTING_PROMETHEUS = {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"}
TOKEN = Secret("glsa_token")


@pytest.fixture(scope="module")
def current():
    return run_program({"profile": "current"})


@pytest.fixture(scope="module")
def tutorial():
    return run_program({"profile": "tutorial"})


def checksum_of(run, server_secret: str, client_secret: str) -> str:
    server = run.manifest("Secret", server_secret)["stringData"]
    client = run.manifest("Secret", client_secret)["stringData"]
    return hashlib.sha256((server["ca.crt"] + server["server.crt"] + client["client.crt"]).encode()).hexdigest()


# -- current: Falco 0.44 posting to Falcosidekick over HTTPS with mTLS -----------------------


def test_current_falco_is_chart_9_on_modern_ebpf_posting_json_over_mtls(current):
    chart = current.charts()["falco"]
    assert chart.plain("chart") == "charts/falco-9.1.0.tgz"
    values = chart.plain("values")
    assert values["driver"]["kind"] == "modern_ebpf"
    assert values["falco"]["json_output"] is True
    assert values["falco"]["http_output"] == {
        "enabled": True,
        "url": "https://falcosidekick.falco.svc.cluster.local:2801/",
        "mtls": True,
        "client_cert": "/etc/falco/certs/client/client.crt",
        "client_key": "/etc/falco/certs/client/client.key",
        "ca_cert": "/etc/falco/certs/client/ca.crt",
        "insecure": False,
    }
    # chart 9 refuses to render with any of these
    assert "grpc" not in values["falco"] and "grpc_output" not in values["falco"]
    assert "ebpf" not in values["driver"]


def test_current_falco_mounts_the_client_secret_the_pki_wrote(current):
    values = current.chart_values("falco")
    secret = current.manifest("Secret", values["certs"]["existingClientSecret"])
    assert secret["metadata"]["namespace"] == "falco"
    assert set(secret["stringData"]) == {"client.key", "client.crt", "ca.crt"}
    assert "existingSecret" not in values["certs"]


def test_current_falco_exports_native_metrics_to_the_operator(current):
    values = current.chart_values("falco")
    assert values["metrics"] == {"enabled": True}
    assert values["serviceMonitor"] == {"create": True, "labels": {}, "relabelings": [NODE_RELABELING]}
    assert values["grafana"]["dashboards"]["enabled"] is True


def test_falcosidekick_requires_client_certificates_and_serves_only_health_and_metrics_in_clear(current):
    chart = current.charts()["falcosidekick"]
    assert chart.plain("chart") == "charts/falcosidekick-0.14.0.tgz"
    values = chart.plain("values")
    tls = values["config"]["tlsserver"]
    assert tls["deploy"] is True and tls["mutualtls"] is True
    assert set(tls["notlspaths"].split(",")) == {"/ping", "/healthz", "/metrics"}  # never "/", the event endpoint
    secret = current.manifest("Secret", tls["existingSecret"])
    assert set(secret["stringData"]) == {"server.key", "server.crt", "ca.crt"}
    assert values["service"]["annotations"]["prometheus.io/port"] == str(int(tls["notlsport"]))
    assert values["replicaCount"] == 1


def test_falcosidekick_forwards_events_to_the_logging_stack(current):
    loki = current.chart_values("falcosidekick")["config"]["loki"]
    assert loki["hostport"] + loki["endpoint"] == current.exports["lokiPushUrl"].value
    assert loki["format"] == "json"


def test_sidekick_replicas_come_from_config():
    run = run_program({"eventExport": {"replicas": 2}})
    assert run.chart_values("falcosidekick")["replicaCount"] == 2


def test_current_service_monitor_scrapes_the_plain_port(current):
    monitor = current.manifest("ServiceMonitor", "falcosidekick")
    assert monitor["spec"]["endpoints"][0]["port"] == "http-notls"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "falcosidekick",
        "app.kubernetes.io/instance": "falcosidekick",
    }
    group = next(g for g in current.of_type(CONFIG_GROUP) if g.name == "falco-events-servicemonitor")
    assert current.charts()["kube-prometheus-stack"].urn in group.dependencies  # waits for the CRDs


# -- tutorial: Falco 0.43 serving gRPC with mTLS, falco-exporter dialling it -----------------


def test_tutorial_falco_is_chart_8_serving_grpc_over_tcp_with_mtls(tutorial):
    chart = tutorial.charts()["falco"]
    assert chart.plain("chart") == "charts/falco-8.0.5.tgz"
    values = chart.plain("values")
    assert values["driver"]["kind"] == "ebpf"
    assert values["falco"]["grpc"] == {
        "enabled": True,
        "bind_address": "0.0.0.0:5060",
        "threadiness": 0,
        "private_key": "/etc/falco/certs/server.key",
        "cert_chain": "/etc/falco/certs/server.crt",
        "root_certs": "/etc/falco/certs/ca.crt",
    }
    assert values["falco"]["grpc_output"] == {"enabled": True}
    secret = tutorial.manifest("Secret", values["certs"]["existingSecret"])
    data = secret["stringData"]
    assert set(data) == {"server.key", "server.crt", "ca.crt", "falco.pem"}
    assert data["falco.pem"] == data["server.key"] + data["server.crt"]


def test_falco_exporter_dials_falco_grpc_over_tcp_with_its_client_certificate(tutorial):
    chart = tutorial.charts()["falco-exporter"]
    assert chart.plain("chart") == "charts/falco-exporter-0.12.2.tgz"
    values = chart.plain("values")
    assert values["falco"] == {
        "grpcUnixSocketPath": "",
        "grpcHostname": "falco-grpc.falco.svc.cluster.local",
        "grpcPort": 5060,
    }
    # the DaemonSet mounts "<fullname>-certs", with these keys
    secret = tutorial.manifest("Secret", f"{values['fullnameOverride']}-certs")
    assert set(secret["stringData"]) == {"client.key", "client.crt", "ca.crt"}
    assert values["grafanaDashboard"]["enabled"] is True
    monitor = tutorial.manifest("ServiceMonitor", "falco-exporter")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_tutorial_driver_can_be_modern_ebpf():
    run = run_program({"profile": "tutorial", "falco": {"driver": "modern_ebpf"}})
    assert run.chart_values("falco")["driver"]["kind"] == "modern_ebpf"


# -- both ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "client_host"),
    [("current", "falcosidekick.falco.svc.cluster.local"), ("tutorial", "falco-grpc.falco.svc.cluster.local")],
)
def test_the_host_the_client_dials_is_in_the_server_certificate(profile, client_host):
    run = run_program({"profile": profile})
    server_request = next(r for r in run.resources if r.name == "falco-mtls-server" and r.type.endswith("CertRequest"))
    dns_names = server_request.plain("dnsNames")
    service = client_host.split(".")[0]
    # Every name a client in the cluster may dial the Service by, and no other.
    assert dns_names == [service, f"{service}.falco", f"{service}.falco.svc", f"{service}.falco.svc.cluster.local"]
    assert client_host in dns_names
    assert run.exports["eventEndpoint"].value.split("//")[-1].split(":")[0] == client_host


def test_certificates_are_server_or_client_only(current):
    certs = {r.name: r.plain("allowedUses") for r in current.resources if r.type.endswith("LocallySignedCert")}
    assert certs == {
        "falco-mtls-server": ["digital_signature", "server_auth"],
        "falco-mtls-client": ["digital_signature", "client_auth"],
    }
    ca = next(r for r in current.resources if r.type.endswith("SelfSignedCert"))
    assert ca.plain("isCaCertificate") is True
    assert ca.plain("allowedUses") == ["cert_signing", "crl_signing"]


def test_rsa_certificates_may_also_encipher():
    run = run_program({"pki": {"keyAlgorithm": "RSA-4096"}})
    key = next(r for r in run.resources if r.type.endswith("PrivateKey"))
    assert (key.plain("algorithm"), key.plain("rsaBits")) == ("RSA", 4096)
    uses = {r.name: r.plain("allowedUses") for r in run.resources if r.type.endswith("LocallySignedCert")}
    assert uses["falco-mtls-server"] == ["digital_signature", "key_encipherment", "server_auth"]


def workload(kind: str, name: str) -> dict:
    """An apps/v1 workload as a chart renders it, with an annotation of the chart's own."""
    template = {"metadata": {"annotations": {"checksum/config": "abc"}}, "spec": {"containers": []}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": {"template": template}}


def pod_annotations(run, release: str, kind: str, name: str) -> dict:
    """The pod annotations of the chart's workload ``name`` once the engine has applied the
    chart's transforms to it."""
    props = run.transformed(
        run.charts()[release], f"kubernetes:apps/v1:{kind}", f"{release}:falco/{name}", workload(kind, name)
    )
    return props["spec"]["template"]["metadata"]["annotations"]


MOUNTING_WORKLOADS = {
    "current": [("falco", "DaemonSet", "falco"), ("falcosidekick", "Deployment", "falcosidekick")],
    "tutorial": [("falco", "DaemonSet", "falco"), ("falco-exporter", "DaemonSet", "falco-exporter")],
}


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_every_pod_that_mounts_the_material_restarts_when_it_rotates(profile):
    run = run_program({"profile": profile})
    if profile == "current":
        expected = checksum_of(run, "falcosidekick-tls", "falco-client-tls")
    else:
        expected = checksum_of(run, "falco-grpc-tls", "falco-exporter-certs")
    for release, kind, name in MOUNTING_WORKLOADS[profile]:
        assert pod_annotations(run, release, kind, name) == {"checksum/config": "abc", "checksum/mtls": expected}
        # Not a chart value: unknown in a preview with new certificates, it would blank the chart.
        assert "checksum/mtls" not in json.dumps(run.chart_values(release))


def test_only_the_workload_that_mounts_the_material_is_annotated(current):
    chart = current.charts()["falco"]
    others = [
        ("kubernetes:apps/v1:Deployment", workload("Deployment", "falco")),  # right name, wrong kind
        ("kubernetes:apps/v1:DaemonSet", workload("DaemonSet", "falco-exporter")),  # right kind, wrong name
        ("kubernetes:core/v1:ConfigMap", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "falco"}}),
    ]
    for type_, props in others:
        assert current.transformed(chart, type_, "falco:falco/x", props) == props


class RenewedCertificate:
    """pulumi-tls as after `pulumi up` renewed one certificate: the others are unchanged."""

    def __init__(self, renewed: str | None):
        self.renewed = renewed

    def __call__(self, args):
        if not args.typ.startswith("tls:index/"):
            return None
        outputs = fake_tls_outputs(args)
        if args.name == self.renewed and "certPem" in outputs:
            outputs["certPem"] = outputs["certPem"].replace("-----END", "renewed\n-----END")
        return outputs


@pytest.mark.parametrize("profile", ["current", "tutorial"])
@pytest.mark.parametrize("certificate", ["falco-mtls-ca", "falco-mtls-server", "falco-mtls-client"])
def test_renewing_any_certificate_restarts_the_pods_that_mount_it(profile, certificate):
    def annotations(renewed):
        run = run_program({"profile": profile}, emulators=[RenewedCertificate(renewed)])
        return [pod_annotations(run, *mounting)["checksum/mtls"] for mounting in MOUNTING_WORKLOADS[profile]]

    before, after = annotations(None), annotations(certificate)
    assert before == annotations(None)  # same state, no restart
    assert all(a != b for a, b in zip(before, after, strict=True))  # renewed: every pod that mounts it


def test_a_reissued_certificate_changes_the_restart_annotation():
    emulator = TlsEmulator()

    def annotation(pki):
        run = run_program({"pki": {**pki, "earlyRenewalHours": 24}}, emulators=[emulator])
        return pod_annotations(run, "falco", "DaemonSet", "falco")["checksum/mtls"]

    assert annotation({"validityHours": 100}) == annotation({"validityHours": 100})  # same state, no restart
    assert annotation({"validityHours": 100}) != annotation({"validityHours": 200})  # reissued, restart


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_private_keys_appear_only_inside_secrets(profile):
    run = run_program({"profile": profile}, emulators=[TlsEmulator()])
    for release, chart in run.charts().items():
        assert "BEGIN" not in json.dumps(chart.plain("values")), f"PEM in {release} values"
    for manifest in run.manifests():
        if manifest["kind"] != "Secret":
            assert "PRIVATE KEY" not in json.dumps(manifest), manifest["metadata"]
    for name, export in run.exports.items():
        assert "PRIVATE KEY" not in json.dumps(export.value), name
    assert "BEGIN CERTIFICATE" in run.exports["mtlsCaCertPem"].value
    for cert in (r for r in run.resources if r.type.startswith("tls:") and "caPrivateKeyPem" in r.inputs):
        assert cert.secret("caPrivateKeyPem")


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_charts_that_mount_the_material_wait_for_its_secrets(profile):
    run = run_program({"profile": profile})
    secrets = run.named("falco-mtls-secrets")
    for release in ("falco", "falcosidekick" if profile == "current" else "falco-exporter"):
        assert secrets.urn in run.charts()[release].dependencies, release


@pytest.mark.parametrize(
    ("profile", "server", "port", "client", "open_port"),
    [
        ("current", "falcosidekick", 2801, "falco", 2810),
        ("tutorial", "falco", 5060, "falco-exporter", 8765),
    ],
)
def test_only_the_client_may_reach_the_mtls_port(profile, server, port, client, open_port):
    policy = run_program({"profile": profile}).manifest("NetworkPolicy", "falco-mtls-clients-only")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": server,
        "app.kubernetes.io/instance": server,
    }
    assert spec["policyTypes"] == ["Ingress"]
    mtls, open_ = spec["ingress"]
    assert mtls["ports"] == [{"protocol": "TCP", "port": port}]
    assert mtls["from"] == [
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": client, "app.kubernetes.io/instance": client}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "falco"}},
        }
    ]
    # Health checks come from the node, which no policy blocks; the metrics port admits Prometheus only.
    assert open_ == {
        "ports": [{"protocol": "TCP", "port": open_port}],
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "prometheus",
                        "operator.prometheus.io/name": "kube-prometheus-stack-prometheus",
                    }
                },
            }
        ],
    }


def test_falco_runs_on_every_node_control_plane_included(current, tutorial):
    for run in (current, tutorial):
        assert run.chart_values("falco")["tolerations"] == [{"operator": "Exists"}]


def test_custom_rules_reach_the_chart():
    rules = "- rule: Shell in monitoring\n  desc: x\n  condition: spawned_process\n  output: x\n  priority: WARNING\n"
    run = run_program({"falco": {"customRules": {"local-rules.yaml": rules}}})
    assert run.chart_values("falco")["customRules"] == {"local-rules.yaml": rules}


def test_without_an_operator_metrics_are_found_by_annotations():
    run = run_program({"monitoring": EXISTING_PROMETHEUS, "grafanaToken": TOKEN})
    assert not [m for m in run.manifests() if m["kind"] == "ServiceMonitor"]
    falco = run.chart_values("falco")
    assert "serviceMonitor" not in falco
    assert falco["metrics"]["service"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8765",
        "prometheus.io/path": "/metrics",
    }
    assert "grafana" not in falco  # no dashboard sidecar to load it


def test_an_existing_operator_gets_service_monitors_with_its_labels():
    run = run_program(
        {
            "monitoring": {**EXISTING_PROMETHEUS, "serviceMonitors": True, "serviceMonitorLabels": {"release": "prom"}},
            "grafanaToken": TOKEN,
        }
    )
    assert run.manifest("ServiceMonitor", "falcosidekick")["metadata"]["labels"]["release"] == "prom"
    assert run.chart_values("falco")["serviceMonitor"] == {
        "create": True,
        "labels": {"release": "prom"},
        "relabelings": [NODE_RELABELING],
    }


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_event_outputs(profile):
    run = run_program({"profile": profile})
    exports = {k: e.value for k, e in run.exports.items()}
    assert (
        exports["eventEndpoint"]
        == {
            "current": "https://falcosidekick.falco.svc.cluster.local:2801/",
            "tutorial": "falco-grpc.falco.svc.cluster.local:5060",
        }[profile]
    )
    assert exports["mtlsClientSecret"] == {"current": "falco-client-tls", "tutorial": "falco-exporter-certs"}[profile]
    assert exports["mtlsCaCertPem"] == run.manifest("Secret", exports["mtlsClientSecret"])["stringData"]["ca.crt"]


# -- the node: container runtime, capabilities -----------------------------------------------


def engines_enabled(values: dict) -> dict:
    engines = values["collectors"]["containerEngine"]["engines"]
    return {name: engine.get("sockets") for name, engine in engines.items() if engine["enabled"]}


def test_falco_asks_minikubes_runtime_by_default(current, tutorial):
    """minikube runs Docker by default: Falco asks it, and no other runtime, for container metadata."""
    for run in (current, tutorial):
        values = run.chart_values("falco")
        assert engines_enabled(values) == {"docker": ["/var/run/docker.sock"]}
        assert values["mounts"]["volumes"] == [
            {"name": "runtime-socket-dir-0", "hostPath": {"path": "/var/run", "type": "DirectoryOrCreate"}}
        ]


@pytest.mark.parametrize(
    ("runtime", "engines", "directory"),
    [
        ("containerd", {"cri": ["/run/containerd/containerd.sock"]}, "/run/containerd"),  # kind
        ("cri-o", {"cri": ["/run/crio/crio.sock"]}, "/run/crio"),
        ("k3s", {"cri": ["/run/k3s/containerd/containerd.sock"]}, "/run/k3s/containerd"),
    ],
)
def test_the_configured_runtime_is_the_one_falco_asks_and_mounts(runtime, engines, directory):
    values = run_program({"falco": {"containerRuntime": runtime}}).chart_values("falco")
    assert engines_enabled(values) == engines
    (volume,) = values["mounts"]["volumes"]
    assert volume["hostPath"]["path"] == directory
    (mount,) = values["mounts"]["volumeMounts"]
    assert mount == {"name": volume["name"], "mountPath": "/host" + directory, **READ_ONLY}
    preflight = values["extra"]["initContainers"][0]
    assert preflight["volumeMounts"] == [mount]


def test_capabilities_reach_the_falco_container_only_on_modern_ebpf():
    sys_admin = run_program({"falco": {"capabilities": "sysAdmin"}}).chart_values("falco")
    assert sys_admin["containerSecurityContext"]["capabilities"]["add"][-1] == "SYS_ADMIN"
    # The privileged drivers hold every capability: sysAdmin asks nothing more of them.
    kmod = run_program({"falco": {"driver": "kmod", "capabilities": "sysAdmin"}}).chart_values("falco")
    assert "containerSecurityContext" not in kmod
    env = {e["name"]: e.get("value") for e in kmod["extra"]["initContainers"][0]["env"]}
    assert env["FALCO_CAPABILITIES"] == "privileged"
