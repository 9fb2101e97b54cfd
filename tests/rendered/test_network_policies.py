"""Every port the stack listens on admits only the pods that use it, evaluated on the
rendered objects with the NetworkPolicy semantics of tests/support/netpol.py: the log
collector can push to Loki, Grafana can query Loki and Prometheus, Prometheus can scrape
every port its ServiceMonitors and scrape annotations name, and a pod anywhere else
reaches none of it."""

import copy

import pytest
from documents import text
from fencing import (
    BASELINE_SCRAPED,
    INTRUDER,
    NEIGHBOUR,
    SCRAPED,
    USER_FACING,
    fencing,
    stack_namespaces,
    stack_service_ports,
    workload,
)
from harness import Secret, run_program
from netpol import OUTSIDE, NetworkPolicies, Source, kube_rbac_proxied, service_targets, url_targets
from references import selects
from rendering import Obj, render_stack


def test_every_stack_owned_service_port_is_fenced(stack, capsys):
    by_policy, by_proxy, open_ = fencing(stack)
    total = len(by_policy) + len(by_proxy) + len(open_)
    assert total and by_policy
    share = 100 * (len(by_policy) + len(by_proxy)) / total
    with capsys.disabled():
        fenced = len(by_policy) + len(by_proxy)
        print(
            f"\n{stack.name}: {fenced}/{total} stack-owned Service ports fenced ({share:.0f}%): "
            f"{len(by_policy)} by ingress NetworkPolicies, {len(by_proxy)} on the host network by kube-rbac-proxy "
            f"({', '.join(by_proxy)})"
        )
    assert open_ == []
    assert share == 100


def test_only_grafanas_nodeport_is_open_to_anyone(stack):
    """The one port meant for anyone is the one a NodePort Service exposes (dev); prod has none."""
    policies = NetworkPolicies(stack.objects)
    exposed = {
        str(t)
        for service, _, targets in stack_service_ports(stack)
        if service.body["spec"].get("type") in ("NodePort", "LoadBalancer")
        for t in targets
    }
    admitting_outside = {
        str(t)
        for _, _, targets in stack_service_ports(stack)
        for t in targets
        if not t.workload.pod.get("hostNetwork") and policies.admits(OUTSIDE, t.workload, t.port)
    }
    expected = USER_FACING if stack.name.startswith("dev") else set()
    assert exposed == admitting_outside == expected


def test_a_port_open_to_anyone_is_not_fenced():
    """The check above on a policy written here: a rule listing the port with no ``from``
    admits everyone, so the port is open, whatever else selects the pod."""
    stack = render_stack("dev")
    cache = next(o for o in stack.objects if o.kind == "NetworkPolicy" and o.name == "loki-cache-metrics")
    body = copy.deepcopy(cache.body)
    for rule in body["spec"]["ingress"]:
        rule.pop("from", None)
    broken = copy.copy(stack)
    broken.objects = [o for o in stack.objects if o is not cache] + [Obj("program", body)]
    _, _, open_ = fencing(broken)
    assert open_ and all("loki-chunks-cache" in o or "loki-results-cache" in o for o in open_), open_
    assert any(f"admits {INTRUDER.what}" in o for o in open_)


def test_the_docs_give_each_stacks_fenced_ports():
    stated = " ".join(text("docs/architecture.md").split())
    for name, label in (("dev", "`dev`"), ("dev-tutorial", "`dev` with `tutorial`"), ("prod", "`prod`")):
        by_policy, by_proxy, open_ = fencing(render_stack(name))
        fenced, total = len(by_policy) + len(by_proxy), len(by_policy) + len(by_proxy) + len(open_)
        assert f"{label} {fenced} of {total}" in stated, name


def test_every_pod_of_the_stack_is_isolated(stack):
    """Nothing the stack runs is open by default, whatever port it listens on."""
    policies = NetworkPolicies(stack.objects)
    namespaces = stack_namespaces(stack)
    open_ = [
        str(w.owner)
        for w in stack.workloads()
        if w.owner.namespace in namespaces and not w.pod.get("hostNetwork") and not policies.selecting(w)
    ]
    assert open_ == []


def test_the_log_collector_can_push_to_loki_and_nobody_else(stack):
    policies = NetworkPolicies(stack.objects)
    collector = (
        workload(stack, "DaemonSet", "loki-promtail")
        if stack.profile == "tutorial"
        else workload(stack, "DaemonSet", "alloy")
    )
    targets = url_targets(stack, stack.run.exports["lokiPushUrl"].value)
    assert targets
    for target in targets:
        assert policies.admits(Source.of(collector), target.workload, target.port), target
        for stranger in (INTRUDER, NEIGHBOUR, OUTSIDE):
            assert not policies.admits(stranger, target.workload, target.port), f"{stranger.what} -> {target}"


def test_falcosidekick_can_push_falcos_events_to_loki():
    stack = render_stack("dev")
    policies = NetworkPolicies(stack.objects)
    sidekick = Source.of(workload(stack, "Deployment", "falcosidekick"))
    targets = url_targets(stack, stack.run.exports["lokiPushUrl"].value)
    assert targets
    for target in targets:
        assert policies.admits(sidekick, target.workload, target.port), target


def test_grafana_can_query_loki_and_prometheus_and_strangers_cannot(stack):
    policies = NetworkPolicies(stack.objects)
    grafana = Source.of(workload(stack, "Deployment", "kube-prometheus-stack-grafana"))
    for url in (stack.run.exports["lokiQueryUrl"].value, stack.run.exports["prometheusUrl"].value):
        targets = url_targets(stack, url)
        assert targets, url
        for target in targets:
            assert policies.admits(grafana, target.workload, target.port), target
            assert not policies.admits(INTRUDER, target.workload, target.port), target


def test_scalable_loki_splits_pushes_from_queries():
    """Where Loki serves them on different pods, the collector cannot query and Grafana cannot push."""
    stack = render_stack("prod")
    policies = NetworkPolicies(stack.objects)
    alloy = Source.of(workload(stack, "DaemonSet", "alloy"))
    grafana = Source.of(workload(stack, "Deployment", "kube-prometheus-stack-grafana"))
    queried = url_targets(stack, stack.run.exports["lokiQueryUrl"].value)
    pushed = url_targets(stack, stack.run.exports["lokiPushUrl"].value)
    assert queried and pushed
    assert {t.workload.owner.name for t in queried}.isdisjoint({t.workload.owner.name for t in pushed})
    for target in queried:
        assert policies.admits(grafana, target.workload, target.port), target
        assert not policies.admits(alloy, target.workload, target.port), target
    for target in pushed:
        assert policies.admits(alloy, target.workload, target.port), target
        assert not policies.admits(grafana, target.workload, target.port), target


def scrape_targets(stack):
    """Every (Service port, pod) Prometheus scrapes: the endpoints of every ServiceMonitor,
    and every Service annotated prometheus.io/scrape."""
    for monitor in stack.of_kind("ServiceMonitor"):
        spec = monitor.body["spec"]
        namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor.namespace]
        for service in stack.of_kind("Service"):
            if service.namespace in namespaces and selects(spec["selector"], service.labels):
                for endpoint in spec["endpoints"]:
                    for port in service.body["spec"]["ports"]:
                        if port.get("name") == endpoint.get("port"):
                            yield from service_targets(stack, service, port)
    for service in stack.of_kind("Service"):
        annotations = service.body["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") == "true":
            for port in service.body["spec"]["ports"]:
                if "prometheus.io/port" not in annotations or str(port["port"]) == annotations["prometheus.io/port"]:
                    yield from service_targets(stack, service, port)


def test_prometheus_can_scrape_every_port_it_is_told_to(stack):
    policies = NetworkPolicies(stack.objects)
    prometheus = Source.of(workload(stack, "Prometheus", "kube-prometheus-stack-prometheus"))
    targets = list(scrape_targets(stack))
    scraped = {
        (t.workload.owner.name, t.port) for t in targets if t.workload.owner.namespace in stack_namespaces(stack)
    }
    assert scraped == SCRAPED[stack.profile] | BASELINE_SCRAPED
    refused = [str(t) for t in targets if not policies.admits(prometheus, t.workload, t.port)]
    assert refused == []
    strangers = {
        str(t)
        for t in targets
        if t.workload.owner.namespace in stack_namespaces(stack)
        and not t.workload.pod.get("hostNetwork")
        and policies.admits(INTRUDER, t.workload, t.port)
    }
    node_port = stack.get("Service", "kube-prometheus-stack-grafana").body["spec"]["type"] == "NodePort"
    assert strangers == (USER_FACING if node_port else set())


def test_node_exporter_admits_only_prometheus_token():
    """On the host network no NetworkPolicy applies: kube-rbac-proxy serves node-exporter's
    port over TLS and lets through a token allowed to get its Service's metrics, which the
    Prometheus ServiceAccount's role grants; Prometheus scrapes it with that token."""
    stack = render_stack("dev")
    (service,) = [s for s in stack.of_kind("Service") if s.name.endswith("prometheus-node-exporter")]
    (port,) = service.body["spec"]["ports"]
    (target,) = service_targets(stack, service, port)
    assert target.workload.pod["hostNetwork"] and kube_rbac_proxied(target)
    exporter = next(c for c in target.workload.containers(init=False) if c["name"] == "node-exporter")
    assert "--web.listen-address=[$(HOST_IP)]:8100" in exporter["args"]
    assert {"name": "HOST_IP", "value": "127.0.0.1"} in exporter["env"]
    config = stack.get("ConfigMap", f"{service.name}-rbac-config", service.namespace).body["data"]["config-file.yaml"]
    assert f"subresource: {service.name}" in config and f"namespace: {service.namespace}" in config
    role = stack.get("ClusterRole", "kube-prometheus-stack-prometheus").body["rules"]
    assert any(f"services/{service.name}" in rule.get("resources", []) and "get" in rule["verbs"] for rule in role)
    monitor = stack.get("ServiceMonitor", service.name, service.namespace).body["spec"]["endpoints"][0]
    assert monitor["scheme"] == "https" and monitor["bearerTokenFile"].endswith("serviceaccount/token")


def test_only_falco_reaches_falcosidekicks_mtls_port():
    stack = render_stack("dev")
    policies = NetworkPolicies(stack.objects)
    sidekick = workload(stack, "Deployment", "falcosidekick")
    falco = Source.of(workload(stack, "DaemonSet", "falco"))
    alloy = Source.of(workload(stack, "DaemonSet", "alloy"))
    assert policies.admits(falco, sidekick, 2801)
    for stranger in (alloy, INTRUDER):
        assert not policies.admits(stranger, sidekick, 2801)


def test_loki_reaches_its_own_grpc_gossip_and_caches(stack):
    if stack.profile == "tutorial":
        pytest.skip("loki-stack runs one Loki pod and no caches")
    policies = NetworkPolicies(stack.objects)
    servers = [w for w in stack.workloads() if w.owner.source == "loki" and "memberlist" in str(w.labels)]
    caches = [w for w in stack.workloads() if w.owner.name.endswith("-cache")]
    assert servers and caches
    for client in servers:
        for server in servers:
            assert policies.admits(Source.of(client), server, 9095) and policies.admits(Source.of(client), server, 7946)
            assert not policies.admits(INTRUDER, server, 9095) and not policies.admits(INTRUDER, server, 7946)
        for cache in caches:
            assert policies.admits(Source.of(client), cache, 11211)
            assert not policies.admits(INTRUDER, cache, 11211)


def test_grafana_admits_its_users_where_they_come_from():
    """dev: the NodePort, reached from anywhere. prod: a ClusterIP behind an Ingress with
    TLS, admitting only the ingress controller (and Prometheus's scrape)."""
    dev, prod = render_stack("dev"), render_stack("prod")
    port = 3000
    dev_grafana = workload(dev, "Deployment", "kube-prometheus-stack-grafana")
    assert dev.get("Service", "kube-prometheus-stack-grafana").body["spec"]["type"] == "NodePort"
    assert NetworkPolicies(dev.objects).admits(OUTSIDE, dev_grafana, port)

    policies = NetworkPolicies(prod.objects)
    grafana = workload(prod, "Deployment", "kube-prometheus-stack-grafana")
    service = prod.get("Service", "kube-prometheus-stack-grafana").body["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP" and "nodePort" not in str(service)
    ingress = prod.get("Ingress", "kube-prometheus-stack-grafana").body["spec"]
    assert ingress["tls"] == [{"secretName": "grafana-tls", "hosts": ["grafana.example.internal"]}]
    assert ingress["rules"][0]["host"] == "grafana.example.internal"
    controller = Source("the ingress controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    assert policies.admits(controller, grafana, port)
    for stranger in (OUTSIDE, INTRUDER):
        assert not policies.admits(stranger, grafana, port)


def test_with_an_existing_prometheus_its_namespace_scrapes_and_queries():
    """monitoring.deploy = false: the metrics ports admit the namespace of the Prometheus
    named in monitoring.prometheusUrl, and Loki's query port the Grafana living there."""
    run = run_program(
        {
            "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus-operated.metrics.svc:9090"},
            "grafanaToken": Secret("glsa_token"),
        }
    )
    dev = render_stack("dev")  # the same logging and Falco pods
    objects = [o for o in dev.objects if o.kind != "NetworkPolicy"]
    objects += [Obj("program", copy.deepcopy(m)) for m in run.manifests() if m["kind"] == "NetworkPolicy"]
    policies = NetworkPolicies(objects)
    theirs = Source("their Prometheus", "metrics", {"app.kubernetes.io/name": "prometheus"})
    for kind, name, port in (("DaemonSet", "falco", 8765), ("DaemonSet", "alloy", 12345)):
        assert policies.admits(theirs, workload(dev, kind, name), port)
        assert not policies.admits(INTRUDER, workload(dev, kind, name), port)
    loki = workload(dev, "StatefulSet", "loki")
    assert policies.admits(Source("their Grafana", "metrics", {"app": "grafana"}), loki, 3100)
    assert not policies.admits(Source("the old baseline", "monitoring", {}), loki, 3100)


# -- the evaluator, on objects written here -----------------------------------------------------


def _policy(spec, namespace="apps"):
    return Obj("test", {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec})


def _pod(labels, ports=(("http", 8080),), namespace="apps", host_network=False):
    from rendering import Workload

    owner = Obj("test", {"kind": "Pod", "metadata": {"name": "web", "namespace": namespace, "labels": labels}})
    spec = {"containers": [{"name": "c", "ports": [{"name": n, "containerPort": p} for n, p in ports]}]}
    if host_network:
        spec["hostNetwork"] = True
    return Workload(owner, spec, labels, 1)


def test_the_evaluator_follows_the_networkpolicy_rules():
    web = _pod({"app": "web"})
    client = Source("client", "apps", {"role": "client"})
    elsewhere = Source("client elsewhere", "other", {"role": "client"})
    # Not selected by any policy: open to all.
    assert NetworkPolicies([]).admits(INTRUDER, web, 8080)
    # podSelector alone: pods of the policy's own namespace; a named port resolves.
    policies = NetworkPolicies(
        [
            _policy(
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [
                        {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": "http"}]}
                    ],
                }
            )
        ]
    )
    assert policies.admits(client, web, 8080)
    assert not policies.admits(elsewhere, web, 8080)
    assert not policies.admits(client, web, 9090)
    # namespaceSelector alone: every pod there; an empty rule list denies all.
    policies = NetworkPolicies(
        [
            _policy({"podSelector": {}, "policyTypes": ["Ingress"]}),
            _policy(
                {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {NAMESPACE: "other"}}}]}],
                }
            ),
        ]
    )
    assert policies.admits(elsewhere, web, 1234) and not policies.admits(client, web, 8080)
    assert not NetworkPolicies([_policy({"podSelector": {}})]).admits(client, web, 8080)
    # A range of ports; a pod on the host network is out of every policy's reach.
    policies = NetworkPolicies(
        [_policy({"podSelector": {}, "ingress": [{"ports": [{"port": 8000, "endPort": 8100}]}]})]
    )
    assert policies.admits(OUTSIDE, web, 8080) and not policies.admits(OUTSIDE, web, 9090)
    assert NetworkPolicies([_policy({"podSelector": {}})]).admits(INTRUDER, _pod({}, host_network=True), 9100)


NAMESPACE = "kubernetes.io/metadata.name"
