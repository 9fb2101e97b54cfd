"""Bad configuration is refused with an error naming the key, the value and what is allowed,
and nothing at all is registered. A value stored as a secret is never echoed."""

import pytest
from harness import Secret, run_program

from components.config import ConfigError


class SecretPath(dict):
    """A structured value set with `pulumi config set --secret --path key.sub value`: the CLI
    then stores, and hands the program, the whole top-level key as one secret."""


EXISTING = {"deploy": False, "prometheusUrl": "http://prometheus-operated.monitoring.svc.cluster.local:9090"}
INGRESS = {"host": "grafana.example.com", "tlsSecret": "grafana-tls", "controllerNamespace": "ingress-nginx"}

BAD_CONFIGS = [
    pytest.param(
        {"profile": "latest"},
        ['runtime-defense:profile = "latest": allowed values are "current", "tutorial"'],
        id="unknown-profile",
    ),
    pytest.param(
        {"namespaces": {"monitoring": "Monitoring"}},
        ['runtime-defense:namespaces.monitoring = "Monitoring": must be an RFC 1123 label'],
        id="namespace-upper-case",
    ),
    pytest.param(
        {"namespaces": {"logging": "l" * 64}},
        [f'runtime-defense:namespaces.logging = "{"l" * 64}": must be an RFC 1123 label: at most 63'],
        id="namespace-too-long",
    ),
    pytest.param(
        {"namespaces": {"falco": "kube-system"}},
        ['runtime-defense:namespaces.falco = "kube-system": is owned by the cluster'],
        id="namespace-reserved",
    ),
    pytest.param(
        {"namespaces": {"prometheus": "metrics"}},
        ['runtime-defense:namespaces.prometheus = "metrics": unknown key; namespaces takes monitoring, logging, falco'],
        id="namespace-unknown-subkey",
    ),
    pytest.param(
        {"namespaces": "monitoring"},
        ['runtime-defense:namespaces = "monitoring": must be a map with keys monitoring, logging, falco'],
        id="namespaces-not-a-map",
    ),
    pytest.param(
        {"monitoring": {"grafanaNodePort": 8080}},
        ["runtime-defense:monitoring.grafanaNodePort = 8080: must be a whole number from 30000 to 32767"],
        id="node-port-out-of-range",
    ),
    pytest.param(
        {"monitoring": {"deploy": "yes"}},
        ['runtime-defense:monitoring.deploy = "yes": must be true or false'],
        id="deploy-not-boolean",
    ),
    pytest.param(
        {"monitoring": {"deploy": False}, "grafanaToken": Secret("glsa_token")},
        ["runtime-defense:monitoring.prometheusUrl is not set: with monitoring.deploy = false"],
        id="existing-prometheus-without-url",
    ),
    pytest.param(
        {"monitoring": {"deploy": False, "prometheusUrl": "prometheus:9090"}, "grafanaToken": Secret("glsa_token")},
        ['runtime-defense:monitoring.prometheusUrl = "prometheus:9090": must be an http:// or https:// URL'],
        id="existing-prometheus-url-without-scheme",
    ),
    pytest.param(
        {"monitoring": {"prometheusUrl": "http://prometheus.metrics:9090"}},
        [
            'runtime-defense:monitoring.prometheusUrl = "http://prometheus.metrics:9090": only applies with '
            "monitoring.deploy = false"
        ],
        id="existing-prometheus-url-with-baseline",
    ),
    pytest.param(
        {"logging": {"storageSize": "5GB"}},
        ['runtime-defense:logging.storageSize = "5GB": must be a Kubernetes quantity such as 5Gi'],
        id="storage-size-not-a-quantity",
    ),
    pytest.param(
        {"logging": {"retention": "1 week"}},
        ['runtime-defense:logging.retention = "1 week": must be a duration such as 168h'],
        id="retention-not-a-duration",
    ),
    pytest.param(
        {"profle": "tutorial"},
        ['runtime-defense:profle = "tutorial": unknown key; known keys: profile,'],
        id="misspelt-top-level-key",
    ),
    pytest.param(
        {"monitoring.deploy": "false"},
        [
            'runtime-defense:monitoring.deploy = "false": unknown key; set it with '
            "`pulumi config set --path monitoring.deploy ...`"
        ],
        id="dotted-key-set-without-path",
    ),
    pytest.param(
        {"kubeconfig": "/nonexistent/kubeconfig"},
        ['runtime-defense:kubeconfig = "/nonexistent/kubeconfig": must be the path of an existing kubeconfig'],
        id="kubeconfig-missing-file",
    ),
    pytest.param(
        {"falco": {"driver": "ebpf"}},
        [
            'runtime-defense:falco.driver = "ebpf": not a driver of profile current (falco chart 9 removed the '
            "legacy probe; modern_ebpf needs no download); allowed: modern_ebpf, kmod, auto"
        ],
        id="legacy-ebpf-driver-with-current",
    ),
    pytest.param(
        {"profile": "tutorial", "falco": {"driver": "auto"}},
        ['runtime-defense:falco.driver = "auto": not a driver of profile tutorial; allowed: ebpf, modern_ebpf, kmod'],
        id="driver-not-in-tutorial",
    ),
    pytest.param(
        {"falco": {"capabilities": "privileged"}},
        [
            'runtime-defense:falco.capabilities = "privileged": allowed: least (BPF, PERFMON, SYS_RESOURCE, '
            "SYS_PTRACE) or sysAdmin (those and SYS_ADMIN, which Debian and Ubuntu kernels require when "
            "kernel.perf_event_paranoid is above 2)"
        ],
        id="falco-capabilities-unknown",
    ),
    pytest.param(
        {"falco": {"driver": "kmod", "capabilities": "least"}},
        [
            'runtime-defense:falco.capabilities = "least": driver kmod runs Falco privileged; only driver '
            "modern_ebpf runs on the least capabilities"
        ],
        id="falco-least-capabilities-with-kmod",
    ),
    pytest.param(
        {"falco": {"containerRuntime": "cri-dockerd"}},
        [
            'runtime-defense:falco.containerRuntime = "cri-dockerd": not a runtime Falco can ask for container '
            "metadata; allowed: docker, containerd, cri-o, k3s (`kubectl get nodes -o wide` shows each node's "
            "CONTAINER-RUNTIME)"
        ],
        id="falco-container-runtime-unknown",
    ),
    pytest.param(
        {"falco": {"containerRuntime": ["containerd", "crio"]}},
        ['runtime-defense:falco.containerRuntime[1] = "crio": not a runtime Falco can ask for container metadata'],
        id="falco-container-runtime-list-item",
    ),
    pytest.param(
        {"falco": {"containerRuntime": []}},
        [
            "runtime-defense:falco.containerRuntime = []: must be the nodes' container runtime, one of docker, "
            "containerd, cri-o, k3s, or a list of them where nodes differ"
        ],
        id="falco-container-runtime-empty",
    ),
    pytest.param(
        {"falco": {"containerRuntime": ["docker", "docker"]}},
        ['runtime-defense:falco.containerRuntime = ["docker", "docker"]: names a runtime twice'],
        id="falco-container-runtime-twice",
    ),
    pytest.param(
        {"falco": {"customRules": {"rules.txt": "- rule: x"}}},
        ['runtime-defense:falco.customRules.rules.txt = "rules.txt": the file name must end in .yaml or .yml'],
        id="custom-rules-file-name",
    ),
    pytest.param(
        {"falco": {"customRules": {"local.yaml": "- rule: [unclosed"}}},
        [
            'runtime-defense:falco.customRules.local.yaml = "- rule: [unclosed": is not valid YAML (line 1: '
            "expected ',' or ']', but got '<stream end>')"
        ],
        id="custom-rules-not-yaml",
    ),
    pytest.param(
        {"falco": {"customRules": {"local.yaml": "rule: not a list"}}},
        [
            'runtime-defense:falco.customRules.local.yaml = "rule: not a list": must be a YAML list whose items '
            "each have one of: rule, macro, list"
        ],
        id="custom-rules-not-a-list",
    ),
    pytest.param(
        {"pki": {"keyAlgorithm": "DSA-1024"}},
        ['runtime-defense:pki.keyAlgorithm = "DSA-1024": allowed values are "ECDSA-P256", "RSA-2048", "RSA-4096"'],
        id="pki-algorithm",
    ),
    pytest.param(
        {"pki": {"validityHours": 720, "earlyRenewalHours": 720}},
        ["runtime-defense:pki.earlyRenewalHours = 720: must be shorter than pki.validityHours (720)"],
        id="pki-renewal-not-shorter-than-validity",
    ),
    pytest.param(
        {"pki": {"validityHours": 9000, "caValidityHours": 8760}},
        ["runtime-defense:pki.caValidityHours = 8760: must be at least pki.validityHours (9000)"],
        id="pki-ca-shorter-than-leaf",
    ),
    pytest.param(
        {"pki": {"validityHours": 0}},
        ["runtime-defense:pki.validityHours = 0: must be a whole number from 1 to 87600"],
        id="pki-zero-validity",
    ),
    pytest.param(
        {"profile": "tutorial", "eventExport": {"replicas": 2}},
        ["runtime-defense:eventExport.replicas = 2: only applies with profile current"],
        id="sidekick-replicas-in-tutorial",
    ),
    pytest.param(
        {"grafana": None},
        [
            "runtime-defense:grafana.url is not set: the URL Pulumi reaches Grafana's API at, e.g. `pulumi config set "
            "--path grafana.url http://$(minikube ip):30300, Grafana's NodePort`"
        ],
        id="grafana-url-missing",
    ),
    pytest.param(
        {"grafana": {"url": "grafana.local:3000"}},
        ['runtime-defense:grafana.url = "grafana.local:3000": must be an http:// or https:// URL with a host'],
        id="grafana-url-without-scheme",
    ),
    pytest.param(
        {"monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"}},
        ["runtime-defense:grafanaToken is not set: an existing Grafana needs credentials"],
        id="existing-grafana-without-auth",
    ),
    pytest.param(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
            "grafanaToken": "glsa_plain",
        },
        [
            'runtime-defense:grafanaToken = "<not shown>": must be stored encrypted: '
            "`pulumi config set --secret grafanaToken"
        ],
        id="grafana-token-not-secret",
    ),
    pytest.param(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
            "grafanaToken": Secret("glsa_token"),
            "grafana": {"url": "http://grafana:3000", "adminSecret": {"namespace": "monitoring", "name": "grafana"}},
        },
        ['runtime-defense:grafanaToken = "<secret>": give grafanaToken or grafana.adminSecret, not both'],
        id="grafana-token-and-admin-secret",
    ),
    pytest.param(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
            "grafana": {"url": "http://grafana:3000", "adminSecret": {"name": "grafana"}},
        },
        [
            "runtime-defense:grafana.adminSecret.namespace is not set: name the Secret holding Grafana's admin "
            "password",
            "runtime-defense:grafanaToken is not set: an existing Grafana needs credentials",
        ],
        id="grafana-admin-secret-without-namespace",
    ),
    pytest.param(
        {"grafanaToken": Secret("glsa_token")},
        ['runtime-defense:grafanaToken = "<secret>": only applies with monitoring.deploy = false'],
        id="grafana-token-with-the-baseline",
    ),
    pytest.param(
        {"alertWebhookUrl": "https://hooks.example.com/T0/B0/secret"},
        ['runtime-defense:alertWebhookUrl = "<not shown>": must be stored encrypted'],
        id="webhook-not-secret",
    ),
    pytest.param(
        {"alertWebhookUrl": Secret("hooks.example.com/x")},
        ['runtime-defense:alertWebhookUrl = "<secret>": must be an http:// or https:// URL'],
        id="webhook-not-a-url",
    ),
    pytest.param(
        {"alerting": {"email": ["secops"]}},
        ['runtime-defense:alerting.email = ["secops"]: must be a list of e-mail addresses'],
        id="email-not-an-address",
    ),
    pytest.param(
        {"logging": {"mode": "scalable"}},
        ["runtime-defense:logging.objectStorage is not set: scalable Loki keeps its data in an S3-compatible bucket"],
        id="scalable-without-object-storage",
    ),
    pytest.param(
        {
            "profile": "tutorial",
            "logging": {"mode": "scalable", "objectStorage": {"endpoint": "https://s3", "bucket": "logs"}},
        },
        ['runtime-defense:logging.mode = "scalable": the tutorial profile runs loki-stack, which is monolithic only'],
        id="scalable-in-tutorial",
    ),
    pytest.param(
        {"logging": {"replicas": 3}},
        ["runtime-defense:logging.replicas = 3: only applies with logging.mode = scalable"],
        id="replicas-in-monolithic",
    ),
    pytest.param(
        {"logging": {"mode": "scalable", "objectStorage": {"endpoint": "https://s3", "bucket": "Logs_Bucket"}}},
        ['runtime-defense:logging.objectStorage.bucket = "Logs_Bucket": must be an S3 bucket name'],
        id="bad-bucket-name",
    ),
    pytest.param(
        {
            "logging": {"mode": "scalable", "objectStorage": {"endpoint": "https://s3", "bucket": "logs"}},
            "lokiS3AccessKeyId": Secret("AKIA"),
        },
        ["runtime-defense:lokiS3SecretAccessKey is not set: give both lokiS3AccessKeyId and lokiS3SecretAccessKey"],
        id="half-of-the-s3-credentials",
    ),
    pytest.param(
        {
            "logging": {"mode": "scalable", "objectStorage": {"endpoint": "https://s3", "bucket": "logs"}},
            "lokiS3AccessKeyId": Secret("AKIA"),
            "lokiS3SecretAccessKey": "plain-text-key",
        },
        ['runtime-defense:lokiS3SecretAccessKey = "<not shown>": must be stored encrypted'],
        id="s3-key-not-secret",
    ),
    pytest.param(
        {"profile": "tutorial", "logging": {"retainVolumes": True}},
        ["runtime-defense:logging.retainVolumes = true: the tutorial's loki-stack keeps no volumes"],
        id="retain-volumes-in-tutorial",
    ),
    pytest.param(
        {"kubeContext": " "},
        ['runtime-defense:kubeContext = " ": must name a context in your kubeconfig'],
        id="kube-context-blank",
    ),
    # -- secrets are never echoed, at any depth --------------------------------------------
    pytest.param(
        {"grafana": SecretPath({"url": "http://192.168.49.2:30300", "adminPassword": "hunter2-correct-horse"})},
        ['runtime-defense:grafana.adminPassword = "<secret>": unknown key; grafana takes url, adminUser, adminSecret'],
        id="secret-unknown-key-under-a-secret-map",
    ),
    pytest.param(
        {"grafana": SecretPath({"url": "https://admin:glsa_Zm9vYmFy@grafana.example.com"})},
        ['runtime-defense:grafana.url = "<secret>": must be an http:// or https:// URL with a host'],
        id="secret-grafana-url-carrying-a-token",
    ),
    pytest.param(
        {
            "logging": SecretPath(
                {
                    "mode": "scalable",
                    "objectStorage": {
                        "endpoint": "https://s3.eu-west-1.amazonaws.com",
                        "bucket": "logs",
                        "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY",
                    },
                }
            )
        },
        [
            'runtime-defense:logging.objectStorage.secretAccessKey = "<secret>": unknown key; objectStorage takes '
            "endpoint, bucket, region, forcePathStyle"
        ],
        id="secret-s3-key-under-a-secret-map",
    ),
    pytest.param(
        {"lokiS3SecretAccessKey": Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCY")},
        ['runtime-defense:lokiS3SecretAccessKey = "<secret>": only applies with logging.mode = scalable'],
        id="secret-s3-key-in-monolithic-mode",
    ),
    pytest.param(
        {"pki": SecretPath({"validityHours": 720000, "earlyRenewalHours": 720000})},
        [
            'runtime-defense:pki.validityHours = "<secret>": must be a whole number from 1 to 87600',
            'runtime-defense:pki.earlyRenewalHours = "<secret>": must be a whole number from 0 to 87600',
        ],
        id="secret-numbers-under-a-secret-map",
    ),
    pytest.param(
        {"pki": SecretPath({"validityHours": 7200, "earlyRenewalHours": 7200})},
        [
            'runtime-defense:pki.earlyRenewalHours = "<secret>": must be shorter than pki.validityHours ("<secret>")',
        ],
        id="secret-quoted-in-another-keys-problem",
    ),
    pytest.param(
        {"grafana.url": Secret("https://admin:glsa_Zm9vYmFy@grafana.example.com")},
        [
            'runtime-defense:grafana.url = "<secret>": unknown key; set it with `pulumi config set --path '
            "grafana.url ...`"
        ],
        id="secret-dotted-key-set-without-path",
    ),
    # -- the stack deploys only into namespaces it owns -------------------------------------
    pytest.param(
        {"monitoring": EXISTING, "grafanaToken": Secret("glsa_token"), "namespaces": {"logging": "monitoring"}},
        [
            'runtime-defense:namespaces.logging = "monitoring": is your Prometheus\'s namespace (from '
            "monitoring.prometheusUrl): the stack deletes its namespaces, and what is in them, on destroy"
        ],
        id="namespace-of-the-existing-prometheus",
    ),
    pytest.param(
        {
            "monitoring": EXISTING,
            "grafana": {
                "url": "https://grafana.example.com",
                "adminSecret": {"namespace": "grafana", "name": "grafana"},
            },
            "namespaces": {"falco": "grafana"},
        },
        ['runtime-defense:namespaces.falco = "grafana": is your Grafana\'s namespace (from grafana.adminSecret'],
        id="namespace-of-the-existing-grafana",
    ),
    pytest.param(
        {"monitoring": {"deploy": False, "prometheusUrl": "http://prometheus:9090"}, "grafanaToken": Secret("glsa")},
        [
            'runtime-defense:monitoring.prometheusUrl = "http://prometheus:9090": must name your Prometheus\'s '
            "Service as http://<service>.<namespace>[.svc.cluster.local]:<port>: the stack lets only that namespace "
            "scrape its metrics ports, and never deploys into it"
        ],
        id="existing-prometheus-url-without-a-namespace",
    ),
    pytest.param(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "https://prometheus.example.com"},
            "grafanaToken": Secret("glsa"),
        },
        ['runtime-defense:monitoring.prometheusUrl = "https://prometheus.example.com": must name your Prometheus\'s'],
        id="existing-prometheus-url-outside-the-cluster",
    ),
    # -- Grafana behind an Ingress ----------------------------------------------------------
    pytest.param(
        {"monitoring": {"grafanaIngress": {"host": "grafana.example.com"}}},
        [
            "runtime-defense:monitoring.grafanaIngress.tlsSecret is not set: an Ingress for Grafana needs it, "
            "e.g. grafana-tls",
            "runtime-defense:monitoring.grafanaIngress.controllerNamespace is not set: an Ingress for Grafana needs "
            "it, e.g. ingress-nginx (where your ingress controller runs: Grafana admits only it)",
        ],
        id="ingress-without-tls-and-controller",
    ),
    pytest.param(
        {"monitoring": {"grafanaIngress": {**INGRESS, "host": "https://grafana.example.com"}}},
        [
            'runtime-defense:monitoring.grafanaIngress.host = "https://grafana.example.com": must be a DNS name '
            "such as grafana.example.com (lower case, no scheme or port)"
        ],
        id="ingress-host-with-a-scheme",
    ),
    pytest.param(
        {"monitoring": {"grafanaIngress": {**INGRESS, "tlsSecret": "Grafana_TLS", "controllerNamespace": "Ingress"}}},
        [
            'runtime-defense:monitoring.grafanaIngress.tlsSecret = "Grafana_TLS": must be the name of a Kubernetes '
            "Secret",
            'runtime-defense:monitoring.grafanaIngress.controllerNamespace = "Ingress": must be a namespace name',
        ],
        id="ingress-bad-names",
    ),
    pytest.param(
        {"monitoring": {"grafanaIngress": INGRESS}, "grafana": None},
        [
            "runtime-defense:grafana.url is not set: the URL Pulumi reaches Grafana's API at, e.g. `pulumi config set "
            "--path grafana.url https://grafana.example.com, Grafana's Ingress`"
        ],
        id="ingress-without-grafana-url",
    ),
    pytest.param(
        {"monitoring": {"grafanaIngress": INGRESS, "grafanaNodePort": 30300}},
        [
            "runtime-defense:monitoring.grafanaNodePort = 30300: give monitoring.grafanaNodePort or "
            "monitoring.grafanaIngress, not both"
        ],
        id="ingress-and-node-port",
    ),
    pytest.param(
        {"monitoring": {**EXISTING, "grafanaIngress": INGRESS, "installCrds": False}, "grafanaToken": Secret("glsa")},
        [
            'runtime-defense:monitoring.grafanaIngress = {"host": "grafana.example.com", "tlsSecret": "grafana-tls", '
            '"controllerNamespace": "ingress-nginx"}: only applies with monitoring.deploy = true',
            "runtime-defense:monitoring.installCrds = false: only applies with monitoring.deploy = true",
        ],
        id="ingress-and-crds-without-the-baseline",
    ),
]


def secret_texts(config) -> list[str]:
    """Every string and number stored as a secret in ``config``, however deep."""

    def leaves(value):
        if isinstance(value, dict):
            return [leaf for v in value.values() for leaf in leaves(v)]
        return [str(value)] if isinstance(value, str | int) and not isinstance(value, bool) else []

    return [leaf for v in config.values() if isinstance(v, Secret | SecretPath) for leaf in leaves(v)]


def _problems(run) -> list[str]:
    assert isinstance(run.error, ConfigError), f"expected a ConfigError, got {run.error!r}"
    return run.error.problems


@pytest.mark.parametrize(("config", "expected"), BAD_CONFIGS)
def test_bad_config_is_a_clear_error_and_registers_nothing(config, expected):
    secret_paths = [key for key, value in config.items() if isinstance(value, SecretPath)]
    run = run_program(config, secret_keys=secret_paths, expect_error=True)
    problems = _problems(run)
    for text in expected:
        assert any(p.startswith(text) for p in problems), f"{text!r} not in {problems}"
    assert len(problems) == len(expected), problems
    assert run.resources == [], [r.name for r in run.resources]
    for secret in secret_texts(config):
        assert secret not in str(run.error), f"the secret {secret!r} is echoed"


def test_every_problem_is_reported_at_once():
    run = run_program(
        {"profile": "old", "namespaces": {"logging": "Logs"}, "monitoring": {"grafanaNodePort": "web"}},
        expect_error=True,
    )
    problems = _problems(run)
    assert [p.split(" = ")[0] for p in problems] == [
        "runtime-defense:profile",
        "runtime-defense:namespaces.logging",
        "runtime-defense:monitoring.grafanaNodePort",
    ]
    assert str(run.error).startswith("3 configuration problems, nothing was deployed:")
    assert run.resources == []


def test_secret_values_are_never_echoed_in_errors():
    run = run_program(
        {"kubeconfig": "/nonexistent/admin-token-kubeconfig"}, secret_keys=["kubeconfig"], expect_error=True
    )
    assert "admin-token" not in str(run.error)
    assert 'runtime-defense:kubeconfig = "<secret>"' in str(run.error)


def test_kubeconfig_contents_are_accepted_and_kept_secret(tmp_path):
    path = tmp_path / "config"
    path.write_text("apiVersion: v1\nkind: Config\n")
    run = run_program({"kubeconfig": str(path)})
    provider = run.named("kubernetes")
    assert provider.plain("kubeconfig") == str(path)
    assert provider.secret("kubeconfig")
