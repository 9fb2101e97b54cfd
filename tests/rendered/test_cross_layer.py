"""Where one part of the stack relies on another, the two agree, as the cluster receives them:
the labels a query selects are labels a log source writes; the environment a pipeline reads
is set; every ServiceMonitor is picked up by the Prometheus that should scrape it; every URL
a client is given is served; the node agents run on control-plane nodes too."""

import base64
import json
import re

import pytest
import yaml
from falco_settings import falco_yaml
from harness import Secret
from log_sources import alloy_config, alloy_env_reads, log_sources
from queries import logql_stream_labels
from references import selects
from rendering import render_config
from urls import external_problems, in_cluster_problems

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def program_logql(stack) -> list[str]:
    """Every LogQL query the program writes: the walk-through's, the dashboards' and rules'."""
    queries = [stack.run.exports["walkthroughLogQuery"].value]
    for dashboard in stack.run.of_type("grafana:oss/dashboard:Dashboard"):
        model = json.loads(dashboard.plain("configJson"))
        for panel in model["panels"]:
            if (panel.get("datasource") or {}).get("type") == "loki":
                queries += [target["expr"] for target in panel.get("targets", [])]
    for group in stack.run.of_type("grafana:alerting/ruleGroup:RuleGroup"):
        for rule in group.plain("rules"):
            for data in rule["datas"]:
                model = json.loads(data["model"])
                if (model.get("datasource") or {}).get("type") == "loki":
                    queries.append(model["expr"])
    return queries


def chart_dashboard_logql(stack) -> list[str]:
    """The LogQL of the charts' dashboards, their template variables taken as "any value"."""
    queries = []
    for config_map in stack.of_kind("ConfigMap"):
        if "grafana_dashboard" not in config_map.labels:
            continue
        for text in config_map.body["data"].values():
            model = json.loads(text)
            variables = [v["name"] for v in (model.get("templating") or {}).get("list", [])]
            for panel in model.get("panels", []):
                for target in panel.get("targets", []):
                    if (target.get("datasource") or {}).get("type") == "loki" and target.get("expr"):
                        expr = target["expr"].replace("$__auto", "1m")
                        for name in sorted(variables, key=len, reverse=True):
                            expr = expr.replace(f"${{{name}}}", ".*").replace(f"${name}", ".*")
                        queries.append(expr)
    return queries


@pytest.mark.usefixtures("needs_node_logql")
def test_every_logql_query_selects_labels_a_log_source_writes(stack):
    sources = log_sources(stack)
    queries = program_logql(stack) + chart_dashboard_logql(stack)
    assert len(queries) >= 2
    unanswerable = {
        query: sorted(labels)
        for query, labels in logql_stream_labels(queries).items()
        if not any(labels <= produced for produced in sources.values())
    }
    assert unanswerable == {}, f"log sources and their labels: { {k: sorted(v) for k, v in sources.items()} }"


def test_the_walkthrough_query_finds_etcd_by_its_container_label(stack):
    """The walk-through's `{container="etcd"}` works only if the collector labels streams with
    the container name; checked on the pipeline that runs, not on the program's constant."""
    assert stack.run.exports["walkthroughLogQuery"].value == '{container="etcd"} |= "compaction"'
    collectors = {k: v for k, v in log_sources(stack).items() if k != "falcosidekick"}
    assert collectors and all("container" in labels for labels in collectors.values()), collectors


def test_every_environment_variable_the_pipeline_reads_is_set_on_its_container(stack):
    config = alloy_config(stack)
    if config is None:
        pytest.skip("this profile runs Promtail, whose configuration reads no environment")
    reads = alloy_env_reads(config)
    assert reads, "the pipeline selects its node's pods by sys.env"
    (daemonset,) = [o for o in stack.of_kind("DaemonSet") if o.source == "alloy"]
    (alloy,) = [c for c in daemonset.body["spec"]["template"]["spec"]["containers"] if c["name"] == "alloy"]
    assert reads <= {env["name"] for env in alloy.get("env") or []}


def namespace_labels(stack, namespace: str) -> dict[str, str]:
    labels = {"kubernetes.io/metadata.name": namespace}  # set by the API server on every namespace
    for obj in stack.of_kind("Namespace"):
        if obj.name == namespace:
            labels |= obj.labels
    return labels


def test_every_service_monitor_is_selected_by_the_stacks_prometheus(stack):
    (prometheus,) = stack.of_kind("Prometheus")
    spec = prometheus.body["spec"]
    monitors = stack.of_kind("ServiceMonitor")
    assert any(m.source != "kube-prometheus-stack" for m in monitors), "the stack's own ServiceMonitors"
    ignored = [
        str(m)
        for m in monitors
        if not (
            selects(spec.get("serviceMonitorSelector"), m.labels)
            and selects(spec.get("serviceMonitorNamespaceSelector"), namespace_labels(stack, m.namespace))
        )
    ]
    assert ignored == []


def test_with_an_existing_prometheus_its_service_monitor_labels_are_on_every_service_monitor():
    config = {
        "monitoring": {
            "deploy": False,
            "prometheusUrl": "http://prometheus-operated.metrics.svc.cluster.local:9090",
            "serviceMonitors": True,
            "serviceMonitorLabels": {"release": "team-prometheus"},
        },
        "grafanaToken": Secret("glsa_token"),
        "grafana": {"url": "https://grafana.example.com"},
    }
    stack = render_config("existing-prometheus", "dev", config)
    monitors = stack.of_kind("ServiceMonitor")
    assert {m.source for m in monitors} >= {"falco", "program"}
    assert [str(m) for m in monitors if m.labels.get("release") != "team-prometheus"] == []


def client_urls(stack) -> list[tuple[str, str, str]]:
    """(who, URL, the client's namespace) for every in-cluster URL a client is given."""
    urls = []
    for source in stack.run.of_type("grafana:oss/dataSource:DataSource"):
        urls.append((f"Grafana data source {source.plain('name')}", source.plain("url"), "monitoring"))
    config = alloy_config(stack)
    if config is not None:
        for url in re.findall(r'url\s*=\s*"([^"]+)"', config):
            urls.append(("Alloy's loki.write", url, "logging"))
    for secret in stack.of_kind("Secret"):
        if secret.source == "falcosidekick" and "LOKI_HOSTPORT" in (secret.body.get("data") or {}):
            hostport = base64.b64decode(secret.body["data"]["LOKI_HOSTPORT"]).decode()
            urls.append(("Falcosidekick's Loki output", hostport, "falco"))
        if secret.source == "loki" and secret.name.endswith("-promtail"):
            clients = yaml.safe_load(secret.body["stringData"]["promtail.yaml"])["clients"]
            urls += [("Promtail's client", client["url"], secret.namespace) for client in clients]
    falco = falco_yaml(stack.objects)
    if (falco.get("http_output") or {}).get("enabled"):
        urls.append(("Falco's http_output", falco["http_output"]["url"], "falco"))
    for workload in stack.workloads():
        for container in workload.containers():
            args = dict(str(a).split("=", 1) for a in container.get("args") or [] if str(a).startswith("--client-"))
            if "--client-hostname" in args:
                url = f"grpc://{args['--client-hostname']}:{args['--client-port']}"
                urls.append(("falco-exporter's gRPC client", url, workload.owner.namespace))
    return urls


def test_every_in_cluster_url_a_client_is_given_is_served_by_a_service(stack):
    urls = client_urls(stack)
    clients = {who for who, _, _ in urls}
    # Every source of URLs this reads gave some: an extraction that finds nothing checks nothing.
    expected = (
        {"Falco's http_output", "Alloy's loki.write", "Falcosidekick's Loki output"}
        if stack.profile == "current"
        else {"falco-exporter's gRPC client", "Promtail's client"}
    )
    assert expected <= clients and any(who.startswith("Grafana data source") for who in clients), clients
    problems = [f"{who}: {p}" for who, url, ns in urls for p in in_cluster_problems(stack, url, ns)]
    assert problems == []


def test_the_url_pulumi_reaches_grafana_at_is_served(stack):
    (provider,) = stack.run.of_type("pulumi:providers:grafana")
    assert external_problems(stack, provider.plain("url")) == []


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for toleration in tolerations:
        key_matches = toleration.get("key") in (None, "", taint["key"]) and (
            toleration.get("operator") == "Exists" or toleration.get("key") == taint["key"]
        )
        if key_matches and toleration.get("effect") in (None, "", taint["effect"]):
            return True
    return False


def test_the_collector_and_falco_run_on_control_plane_nodes_too(stack):
    """etcd runs on the control plane: its logs, and its node's system calls, must be seen."""
    agents = [o for o in stack.of_kind("DaemonSet") if o.source in ("alloy", "falco") or o.name.endswith("promtail")]
    assert {o.source for o in agents} >= {"falco"} and len(agents) == 2
    untolerated = [
        str(o)
        for o in agents
        if not tolerates(o.body["spec"]["template"]["spec"].get("tolerations") or [], CONTROL_PLANE_TAINT)
    ]
    assert untolerated == []
