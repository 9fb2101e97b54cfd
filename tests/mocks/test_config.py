"""Bad configuration is refused with an error naming the key, the value and what is allowed,
and nothing at all is registered. A value stored as a secret is never echoed."""

import functools
import logging
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from harness import KUBECONFIG, Secret, run_program

from components.config import TOP_LEVEL_KEYS, ConfigError


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
            'runtime-defense:monitoring.deploy = "false": unknown key; without --path the dot is part of the key: '
            "`pulumi config rm monitoring.deploy`, then `pulumi config set --path monitoring.deploy false`"
        ],
        id="dotted-key-set-without-path",
    ),
    pytest.param(
        {"kubeconfig": "/nonexistent/kubeconfig"},
        [
            'runtime-defense:kubeconfig = "/nonexistent/kubeconfig": must be the path of an existing kubeconfig '
            "file or its contents; without it the stack uses $KUBECONFIG, else ~/.kube/config: "
            "`pulumi config rm kubeconfig`"
        ],
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
        {"monitoring": EXISTING, "grafanaToken": Secret("glsa_token"), "grafana": None},
        [
            "runtime-defense:grafana.url is not set: with monitoring.deploy = false, give the URL Pulumi reaches "
            "your Grafana's API at, e.g. `pulumi config set --path grafana.url https://grafana.example.com`"
        ],
        id="existing-grafana-without-url",
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
            "`pulumi config set --secret grafanaToken`, which asks for the token"
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
        [
            'runtime-defense:lokiS3SecretAccessKey = "<not shown>": must be stored encrypted: '
            "`pulumi config set --secret lokiS3SecretAccessKey`, which asks for the secret access key"
        ],
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
            'runtime-defense:grafana.url = "<secret>": unknown key; without --path the dot is part of the key: '
            "`pulumi config rm grafana.url`, then `pulumi config set --secret --path grafana.url`, which asks for "
            "the value"
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
    for problem, command in example_commands(problems):
        assert not pasting_problems(problem, command), (command, pasting_problems(problem, command))


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


def test_a_kubeconfig_path_is_accepted_and_kept_secret(tmp_path):
    path = tmp_path / "config"
    path.write_text(KUBECONFIG.read_text())
    run = run_program({"kubeconfig": str(path)})
    provider = run.named("kubernetes")
    assert provider.plain("kubeconfig") == str(path)
    assert provider.secret("kubeconfig")


# -- every example in an error pastes and runs in bash and zsh -------------------------------

EXAMPLE = re.compile(r"`(pulumi [^`]*)`")
OPERATORS = set("<>|&;()")


def example_commands(problems: list[str]) -> list[tuple[str, str]]:
    """(problem, command) for every backticked `pulumi ...` command the problems suggest."""
    return [(problem, command) for problem in problems for command in EXAMPLE.findall(problem)]


def problem_key(problem: str) -> str:
    return re.match(r"runtime-defense:(\S+)", problem).group(1)


def pasting_problems(problem: str, command: str) -> list[str]:
    """Why ``command``, suggested by ``problem``, would not paste and run as it reads in bash
    or zsh, or not set a key the program reads ([] when it would)."""
    found = []
    parsed = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, timeout=10)
    if parsed.returncode:
        found.append(f"bash cannot parse it: {parsed.stderr.strip()}")
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError as error:
        return [*found, f"an unbalanced quote ({error})"]
    for word in words:
        if set(word) <= OPERATORS:
            found.append(f"{word!r} is a redirect, pipe or list operator")
        elif word in ("...", "…") or re.search(r"<[^>]*>", word):
            found.append(f"{word!r} is a placeholder")
    found += [f"{c!r} is expanded by the shell (a glob in zsh); quote it" for c in unquoted_specials(command)]
    if words[:2] != ["pulumi", "config"] or found:
        return found
    operands = [w for w in words[3:] if not w.startswith("--")]
    if not operands:
        return [*found, "names no key"]
    key = operands[0].removeprefix("runtime-defense:")
    if words[2] == "rm":
        if key != problem_key(problem):
            found.append(f"removes {key}, not the key the problem is about ({problem_key(problem)})")
    elif words[2] == "set":
        found += unknown_key_problems(key, "--path" in words, "--secret" in words, operands[1:])
    else:
        found.append(f"pulumi config {words[2]} changes nothing")
    return found


def unquoted_specials(command: str) -> list[str]:
    """Characters bash or zsh would expand rather than pass on: substitutions and history
    outside single quotes, globs and comments outside any quotes."""
    found, quote, escaped, word_start = [], "", False, True
    for char in command:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            escaped = True
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char in "$`!":
                found.append(char)
        elif char in "'\"":
            quote = char
        elif char in "$`!*?[" or (char == "#" and word_start):
            found.append(char)
        word_start = char.isspace()
    return found


@functools.cache
def _evaluation_problems(config_json: str, secret_keys: tuple[str, ...]) -> tuple[str, ...]:
    try:
        run_program(yaml.safe_load(config_json), secret_keys=secret_keys)
    except ConfigError as error:
        return tuple(error.problems)
    return ()


def unknown_key_problems(key: str, path: bool, secret: bool, values: list[str]) -> list[str]:
    """The program's own verdict on the key: set as the command sets it, is it one it reads?"""
    if key.split(".", 1)[0] not in TOP_LEVEL_KEYS:
        return [f"{key} is not a key of the program (it reads {', '.join(TOP_LEVEL_KEYS)})"]
    value = values[0] if values else "typed-at-the-prompt"
    config: dict = {}
    if path:
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    else:
        config[key] = value
    top = key.split(".", 1)[0]
    problems = _evaluation_problems(yaml.safe_dump(config), (top,) if secret else ())
    return [p for p in problems if p.startswith(f"runtime-defense:{key.split('.')[0]}") and "unknown key" in p]


# Errors that suggest commands, one of each way the program words them.
WITH_COMMANDS = {
    "existing-grafana-without-url",
    "existing-prometheus-without-url",
    "existing-grafana-without-auth",
    "grafana-token-not-secret",
    "grafana-admin-secret-without-namespace",
    "dotted-key-set-without-path",
    "secret-dotted-key-set-without-path",
    "kubeconfig-missing-file",
    "s3-key-not-secret",
}


@pytest.mark.parametrize(("config", "expected"), [p for p in BAD_CONFIGS if p.id in WITH_COMMANDS])
def test_errors_suggest_commands_that_paste_and_set_a_real_key(config, expected):
    secret_paths = [key for key, value in config.items() if isinstance(value, SecretPath)]
    problems = _problems(run_program(config, secret_keys=secret_paths, expect_error=True))
    commands = example_commands(problems)
    assert commands, problems
    for problem, command in commands:
        assert pasting_problems(problem, command) == [], command


def test_the_pasting_check_refuses_what_a_shell_would_not_run():
    """The examples the errors once gave, each refused for what a shell does with it."""
    grafana = "runtime-defense:grafana.url is not set"
    assert any(
        "unbalanced quote" in p or "bash cannot parse" in p
        for p in pasting_problems(
            grafana, "pulumi config set --path grafana.url http://$(minikube ip):30300, Grafana's NodePort"
        )
    )
    refused = pasting_problems(
        "runtime-defense:lokiS3AccessKeyId", "pulumi config set --secret lokiS3AccessKeyId <access key id>"
    )
    assert any("redirect" in p for p in refused), refused
    assert any("placeholder" in p for p in pasting_problems(grafana, "pulumi config set --path monitoring.deploy ..."))
    assert any("not a key" in p for p in pasting_problems(grafana, "pulumi config set grafanaUrl http://x:3000"))
    assert any("unknown key" in p for p in pasting_problems(grafana, "pulumi config set --path grafana.uri http://x"))
    assert any("quote it" in p for p in pasting_problems(grafana, "pulumi config set --path a[0] x"))
    assert pasting_problems(grafana, "pulumi config set --path grafana.url http://192.168.49.2:30300") == []


# -- Grafana's URL, found by the program where it is knowable --------------------------------


def write_kubeconfig(
    path: Path,
    servers: dict[str, str],
    current: str | None = None,
    contexts: dict[str, str] | None = None,
    credentials: dict | None = None,
) -> Path:
    """A kubeconfig with a cluster per entry of ``servers`` (name -> server), a context per
    entry of ``contexts`` (name -> cluster; by default one per cluster, named alike)."""
    contexts = contexts if contexts is not None else {name: name for name in servers}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}} for name, server in servers.items()],
        "contexts": [
            {"name": name, "context": {"cluster": cluster, "user": "me"}} for name, cluster in contexts.items()
        ],
        "users": [{"name": "me", "user": credentials or {"token": "kubeconfig-token-never-shown"}}],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document))
    return path


def grafana_provider_url(run) -> str:
    (provider,) = run.of_type("pulumi:providers:grafana")
    return provider.plain("url")


def found_notes(caplog) -> list[str]:
    return [m for m in caplog.messages if m.startswith("Pulumi reaches Grafana at")]


def test_the_dev_stack_finds_grafana_on_minikubes_node_and_says_where_it_looked(caplog):
    caplog.set_level(logging.INFO)
    run = run_program({"kubeContext": "minikube"})
    assert grafana_provider_url(run) == "http://192.168.49.2:30300"
    assert run.exports["grafanaUrl"].value == "http://192.168.49.2:30300"
    assert found_notes(caplog) == [
        "Pulumi reaches Grafana at http://192.168.49.2:30300: grafana.url is not set, so the program took Grafana's "
        "NodePort 30300 on the host of the Kubernetes API server https://192.168.49.2:8443 (kube context "
        f'"minikube" from runtime-defense:kubeContext, in the kubeconfig {KUBECONFIG} from $KUBECONFIG). Set '
        "grafana.url if this machine reaches Grafana elsewhere."
    ]
    assert run.exports["grafanaUrlSource"].value == (
        'NodePort 30300 on the host of https://192.168.49.2:8443, the API server of kube context "minikube" '
        f"(from runtime-defense:kubeContext) in the kubeconfig {KUBECONFIG} from $KUBECONFIG"
    )


DRIVERS = [
    # (context, its API server as the kubeconfig names it, Grafana's URL, on this machine's loopback)
    pytest.param("minikube", "https://192.168.39.10:8443", "http://192.168.39.10:30300", False, id="minikube-kvm2"),
    pytest.param("minikube", "https://192.168.59.100:8443", "http://192.168.59.100:30300", False, id="virtualbox"),
    pytest.param("minikube", "https://192.168.49.2:8443", "http://192.168.49.2:30300", False, id="docker-on-linux"),
    pytest.param("minikube", "https://127.0.0.1:52431", "http://127.0.0.1:30300", True, id="docker-on-macos"),
    pytest.param("kind-runtime-defense", "https://127.0.0.1:41995", "http://127.0.0.1:30300", True, id="kind"),
    pytest.param(
        "docker-desktop",
        "https://kubernetes.docker.internal:6443",
        "http://kubernetes.docker.internal:30300",
        False,
        id="docker-desktop",
    ),
    pytest.param("ipv6", "https://[::1]:6443", "http://[::1]:30300", True, id="ipv6-loopback"),
]


@pytest.mark.parametrize(("context", "server", "url", "loopback"), DRIVERS)
def test_grafana_is_found_at_the_node_port_on_the_api_servers_host(tmp_path, caplog, context, server, url, loopback):
    caplog.set_level(logging.INFO)
    kubeconfig = write_kubeconfig(tmp_path / "config", {context: server}, current=context)
    run = run_program({}, environ={"KUBECONFIG": str(kubeconfig)})
    assert grafana_provider_url(run) == url
    (note,) = found_notes(caplog)
    assert f'API server {server} (kube context "{context}" from the kubeconfig\'s current-context' in note
    published = "`minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:30300:30300`"
    assert (published in note and "tests/e2e/kind.yaml" in note) is loopback, note


def test_kind_publishes_the_node_port_the_program_expects_on_the_runner():
    """kind's API server is on 127.0.0.1 (kind-action's kubeconfig), so the derived URL is
    127.0.0.1 at Grafana's NodePort: tests/e2e/kind.yaml must publish exactly that port there."""
    kind = yaml.safe_load((Path(__file__).parents[1] / "e2e" / "kind.yaml").read_text())
    mappings = kind["nodes"][0]["extraPortMappings"]
    assert mappings, "kind.yaml publishes no port"
    assert {"containerPort": 30300, "hostPort": 30300, "listenAddress": "127.0.0.1"} in mappings


def test_another_node_port_is_where_grafana_is_found():
    run = run_program({"monitoring": {"grafanaNodePort": 31000}})
    assert grafana_provider_url(run) == "http://192.168.49.2:31000"


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path):
    """$KUBECONFIG: missing files skipped, the first file to name a context, a cluster or the
    current-context wins."""
    first = write_kubeconfig(tmp_path / "first", {"minikube": "https://192.168.39.10:8443"}, current="minikube")
    second = write_kubeconfig(
        tmp_path / "second",
        {"minikube": "https://10.0.0.2:8443", "kind-a": "https://127.0.0.1:40000"},
        current="kind-a",
    )
    listed = f"{tmp_path / 'missing'}:{first}:{second}"
    run = run_program({}, environ={"KUBECONFIG": listed})
    assert grafana_provider_url(run) == "http://192.168.39.10:30300"
    assert run.exports["grafanaUrlSource"].value.endswith(f"in the kubeconfig {first} from $KUBECONFIG")
    # A context only the second file names, chosen by kubeContext, with its cluster from there.
    run = run_program({"kubeContext": "kind-a"}, environ={"KUBECONFIG": listed})
    assert grafana_provider_url(run) == "http://127.0.0.1:30300"
    assert run.exports["grafanaUrlSource"].value.endswith(f"in the kubeconfig {second} from $KUBECONFIG")


def test_the_kubeconfig_key_comes_before_kubeconfig_and_the_default_file(tmp_path):
    given = write_kubeconfig(tmp_path / "given", {"lab": "https://10.20.30.40:6443"}, current="lab")
    run = run_program({"kubeconfig": str(given)})
    assert grafana_provider_url(run) == "http://10.20.30.40:30300"
    assert run.exports["grafanaUrlSource"].value.endswith(f"in the kubeconfig {given} from runtime-defense:kubeconfig")
    # Its contents, stored as a secret (as scripts/ci-configure-stack.sh stores them).
    run = run_program({"kubeconfig": Secret(given.read_text())})
    assert grafana_provider_url(run) == "http://10.20.30.40:30300"
    assert run.exports["grafanaUrlSource"].value.endswith("in the kubeconfig stored in runtime-defense:kubeconfig")


def test_without_kubeconfig_the_default_file_in_home_is_read(tmp_path):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_kubeconfig(home / ".kube" / "config", {"minikube": "https://192.168.39.77:8443"}, current="minikube")
    run = run_program({}, environ={"KUBECONFIG": None, "HOME": str(home)})
    assert grafana_provider_url(run) == "http://192.168.39.77:30300"
    assert run.exports["grafanaUrlSource"].value.endswith(f"in the kubeconfig {home / '.kube' / 'config'}")


def test_behind_the_ingress_grafana_is_found_at_its_host(caplog):
    caplog.set_level(logging.INFO)
    run = run_program({"monitoring": {"grafanaIngress": INGRESS}}, environ={"KUBECONFIG": None, "HOME": "/nonexistent"})
    assert grafana_provider_url(run) == "https://grafana.example.com"
    assert run.exports["grafanaUrlSource"].value == "monitoring.grafanaIngress.host"
    assert found_notes(caplog) == [
        "Pulumi reaches Grafana at https://grafana.example.com: grafana.url is not set, so the program took its "
        "Ingress (monitoring.grafanaIngress.host)."
    ]


def test_an_explicit_grafana_url_wins_and_no_kubeconfig_is_read(caplog):
    caplog.set_level(logging.INFO)
    run = run_program(
        {"grafana": {"url": "http://localhost:3000"}}, environ={"KUBECONFIG": None, "HOME": "/nonexistent"}
    )
    assert grafana_provider_url(run) == "http://localhost:3000"
    assert run.exports["grafanaUrlSource"].value == "grafana.url"
    assert found_notes(caplog) == []


def test_no_credential_of_the_kubeconfig_is_ever_shown(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    credentials = {"token": "token-never-shown", "client-key-data": "a2V5LW5ldmVyLXNob3du"}
    kubeconfig = write_kubeconfig(
        tmp_path / "config",
        {
            "lab": "https://admin:password-never-shown@10.1.2.3:6443",
            "proxy": "https://u:pw-never-shown@r.example/k8s/c",
        },
        current="lab",
        credentials=credentials,
    )
    run = run_program({}, environ={"KUBECONFIG": str(kubeconfig)})
    assert grafana_provider_url(run) == "http://10.1.2.3:30300"
    failed = run_program({"kubeContext": "proxy"}, environ={"KUBECONFIG": str(kubeconfig)}, expect_error=True)
    shown = " ".join([*caplog.messages, *(str(e.value) for e in run.exports.values()), str(failed.error)])
    assert "https://10.1.2.3:6443" in shown and "https://r.example/k8s/c" in shown
    for secret in ("never-shown", "a2V5LW5ldmVyLXNob3du"):
        assert secret not in shown


FIXTURE_SERVER = {"minikube": "https://192.168.49.2:8443"}
NOT_FOUND = [
    pytest.param(
        {},
        lambda tmp: {"KUBECONFIG": None, "HOME": str(tmp)},
        "no kubeconfig: runtime-defense:kubeconfig and $KUBECONFIG are not set and {tmp}/.kube/config does not "
        "exist (minikube start writes it); give the URL",
        id="no-kubeconfig",
    ),
    pytest.param(
        {},
        lambda tmp: {"KUBECONFIG": f"{tmp}/a:{tmp}/b", "HOME": str(tmp)},
        "no kubeconfig: none of the files in $KUBECONFIG ({tmp}/a:{tmp}/b) exists; give the URL",
        id="kubeconfig-lists-no-file",
    ),
    pytest.param(
        {"kubeContext": "minikube"},
        lambda tmp: {"KUBECONFIG": str(write_kubeconfig(tmp / "c", {"kind-lab": "https://127.0.0.1:4000"}))},
        'kube context "minikube" (from runtime-defense:kubeContext) is not in {tmp}/c (from $KUBECONFIG), whose '
        "contexts are kind-lab; `pulumi config set kubeContext kind-lab`, or give the URL",
        id="context-not-in-kubeconfig",
    ),
    pytest.param(
        {},
        lambda tmp: {"KUBECONFIG": str(write_kubeconfig(tmp / "c", FIXTURE_SERVER))},
        "runtime-defense:kubeContext is not set and {tmp}/c (from $KUBECONFIG) sets no current-context; "
        "`pulumi config set kubeContext minikube`, or give the URL",
        id="no-current-context",
    ),
    pytest.param(
        {"kubeContext": "minikube"},
        lambda tmp: {"KUBECONFIG": str(write_kubeconfig(tmp / "c", FIXTURE_SERVER, contexts={"minikube": "gone"}))},
        'kube context "minikube" in {tmp}/c names cluster "gone", which {tmp}/c (from $KUBECONFIG) does not '
        "define; give the URL",
        id="context-names-no-cluster",
    ),
    pytest.param(
        {"kubeContext": "minikube"},
        lambda tmp: {"KUBECONFIG": str(write_kubeconfig(tmp / "c", {"minikube": "192.168.49.2:8443"}))},
        'cluster "minikube" in {tmp}/c has server "192.168.49.2:8443", not an http(s) URL with a host; give the URL',
        id="server-without-scheme",
    ),
    pytest.param(
        {"kubeContext": "rancher"},
        lambda tmp: {"KUBECONFIG": str(write_kubeconfig(tmp / "c", {"rancher": "https://r.example/k8s/c-1"}))},
        'cluster "rancher" in {tmp}/c is reached through a proxy (https://r.example/k8s/c-1): Grafana\'s NodePort '
        "is on the nodes, not on that host; give the URL",
        id="api-server-behind-a-proxy",
    ),
    pytest.param(
        {},
        lambda tmp: {"KUBECONFIG": str(tmp / "c")} if (tmp / "c").write_text("token: s3cr3t\n  bad: [") else {},
        "{tmp}/c is not a kubeconfig (line 2: mapping values are not allowed here); give the URL",
        id="kubeconfig-not-yaml",
    ),
]


@pytest.mark.parametrize(("config", "environ", "reason"), NOT_FOUND)
def test_when_grafana_cannot_be_found_the_error_says_where_it_looked_and_how_to_fix_it(
    tmp_path, config, environ, reason
):
    run = run_program(config, environ=environ(tmp_path), expect_error=True)
    (problem,) = _problems(run)
    assert problem == (
        "runtime-defense:grafana.url is not set: Pulumi looks for Grafana's NodePort 30300 on the host of the "
        f"Kubernetes API server, but {reason.format(tmp=tmp_path)} this machine reaches Grafana's NodePort 30300 at, "
        "e.g. `pulumi config set --path grafana.url http://192.168.49.2:30300`"
    )
    assert run.resources == []
    assert "s3cr3t" not in problem
    commands = example_commands([problem])
    assert commands
    for found, command in commands:
        assert pasting_problems(found, command) == [], command
