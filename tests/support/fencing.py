"""Which pods each Service port of a rendered stack admits, by NetworkPolicy semantics
(tests/support/netpol.py), and whom each is for: a port is fenced when every pod behind it
refuses strangers and admits the clients it is for. Shared by the standalone stacks' tests
(tests/rendered/test_network_policies.py) and the fleet's (tests/fleet)."""

from __future__ import annotations

import re
from typing import Any

from netpol import OUTSIDE, NetworkPolicies, Source, kube_rbac_proxied, service_targets
from rendering import RenderedStack

# What the stack deploys into (its Namespace objects); Services the monitoring chart puts in
# kube-system select the cluster's own pods (CoreDNS, etcd, ...), which the stack does not own.
INTRUDER = Source("a pod with no labels in namespace default", "default", {})
# The one port a stack opens to everyone on purpose: Grafana's, behind its NodePort (dev).
USER_FACING = {"monitoring/kube-prometheus-stack-grafana:http-web -> kube-prometheus-stack-grafana:3000"}
# Ports Prometheus scrapes in each profile, besides the baseline's own (Grafana, Prometheus,
# kube-state-metrics, the operator, node-exporter): (pod owner, port).
SCRAPED = {
    "current": {("falco", 8765), ("falcosidekick", 2810)},
    "tutorial": {("falco-exporter", 9376)},
}
BASELINE_SCRAPED = {
    ("kube-prometheus-stack-grafana", 3000),
    ("kube-prometheus-stack-prometheus", 9090),
    ("kube-prometheus-stack-prometheus", 8080),
    ("kube-prometheus-stack-kube-state-metrics", 8080),
    ("kube-prometheus-stack-operator", 8080),
    ("kube-prometheus-stack-prometheus-node-exporter", 9100),
}
# A pod in the logging namespace that is not the log collector.
NEIGHBOUR = Source("another pod in namespace logging", "logging", {"app": "neighbour"})


def stack_namespaces(stack):
    return {o.name for o in stack.objects if o.kind == "Namespace" and o.source == "program"}


def stack_service_ports(stack):
    """Every (Service, port) of the stack's namespaces, with the pods behind it."""
    namespaces = stack_namespaces(stack)
    for service in stack.of_kind("Service"):
        if service.namespace in namespaces:
            for port in service.body["spec"].get("ports") or []:
                yield service, port, service_targets(stack, service, port)


def workload(stack, kind, name):
    (found,) = [w for w in stack.workloads() if w.owner.kind == kind and w.owner.name == name]
    return found


# Who each port of the stack is for, from the user's side: (pod owner, container port) ->
# clients, by the names `clients` resolves. A port missing here fails the fencing test: a new
# listener must say who may reach it.
INTENDED = [
    (r"loki(-backend|-read|-write)?", 9095, ("loki",)),  # gRPC between Loki's targets
    (r"loki(-backend|-read|-write)?", 7946, ("loki",)),  # memberlist gossip
    (r"loki-(chunks|results)-cache", 11211, ("loki",)),
    (r"loki-(chunks|results)-cache", 9150, ("prometheus",)),  # memcached's exporter
    (r"loki", 3100, ("collector", "grafana", "falcosidekick")),  # one Loki serves pushes and queries
    (r"loki-write", 3100, ("collector", "falcosidekick")),
    (r"loki-read", 3100, ("grafana",)),
    (r"loki-backend", 3100, ("loki",)),
    (r"alloy", 12345, ("prometheus",)),
    (r"kube-prometheus-stack-grafana", 3000, ("grafana users", "prometheus")),
    (r"kube-prometheus-stack-prometheus", 9090, ("grafana", "prometheus")),
    (r"kube-prometheus-stack-prometheus", 8080, ("prometheus",)),  # the config reloader's metrics
    (r"kube-prometheus-stack-(operator|kube-state-metrics)", 8080, ("prometheus",)),
    (r"falcosidekick", 2801, ("falco",)),  # the mTLS port
    (r"falcosidekick", 2810, ("prometheus",)),
    (r"falco", 8765, ("prometheus",)),
    (r"falco", 5060, ("falco-exporter",)),  # tutorial: gRPC over mTLS
    (r"falco-exporter", 9376, ("prometheus",)),
]


def fleet_intended(stack: RenderedStack) -> list[tuple[str, int, tuple[str, ...]]]:
    """A hub's front door: its gateway is for the ingress controller, each spoke's receiver
    port for the gateway; its Loki write target and Prometheus also take what they pass on."""
    fleet: dict[str, Any] = stack.config.get("fleet") or {}
    if fleet.get("role") != "hub":
        return []
    receivers = [
        (w, port)
        for w in stack.workloads()
        if w.owner.name == "fleet-receiver"
        for c in w.containers(init=False)
        for port in [p["containerPort"] for p in c.get("ports") or [] if p.get("name", "").startswith("spoke-")]
    ]
    assert receivers, "a hub renders a receiver port per spoke"
    return [
        (r"loki-gateway", 8080, ("fleet ingress controller",)),
        *[(r"fleet-receiver", port, ("fleet gateway",)) for _, port in receivers],
        (r"fleet-receiver", 12345, ("prometheus",)),
        (r"loki-write", 3100, ("collector", "falcosidekick", "fleet gateway")),
        (r"kube-prometheus-stack-prometheus", 9090, ("grafana", "prometheus", "fleet receivers")),
    ]


def intended(stack: RenderedStack, target) -> tuple[str, ...] | None:
    """Whom ``target`` is for: the first entry naming its owner and port."""
    found = [
        c
        for owner, port, c in [*fleet_intended(stack), *INTENDED]
        if re.fullmatch(owner, target.workload.owner.name) and port == target.port
    ]
    return found[0] if found else None


def clients(stack, name: str) -> list[Source]:
    """The pods (or, for dev's NodePort, the outside) that ``name`` stands for in ``INTENDED``."""
    if name == "grafana users":
        if stack.get("Service", "kube-prometheus-stack-grafana").body["spec"].get("type") == "NodePort":
            return [OUTSIDE]
        controller = stack.config["monitoring"]["grafanaIngress"]["controllerNamespace"]
        return [Source("the ingress controller", controller, {"app.kubernetes.io/name": "ingress-nginx"})]
    if name == "fleet ingress controller":
        controller = stack.config["fleet"]["ingress"]["controllerNamespace"]
        return [Source("the ingress controller", controller, {"app.kubernetes.io/name": "ingress-nginx"})]
    owners = {
        "prometheus": [
            ("Prometheus", "kube-prometheus-stack-prometheus"),
            ("PrometheusAgent", "kube-prometheus-stack-prometheus"),  # a fleet's spoke
        ],
        "fleet gateway": [("Deployment", "loki-gateway")],
        "fleet receivers": [("Deployment", "fleet-receiver")],
        "grafana": [("Deployment", "kube-prometheus-stack-grafana")],
        "collector": [("DaemonSet", "alloy"), ("DaemonSet", "loki-promtail")],
        "falcosidekick": [("Deployment", "falcosidekick")],
        "falco": [("DaemonSet", "falco")],
        "falco-exporter": [("DaemonSet", "falco-exporter")],
    }
    if name == "loki":  # Loki's own targets
        found = [
            w
            for w in stack.workloads()
            if w.owner.source == "loki"
            and w.owner.kind in ("StatefulSet", "Deployment")
            and "cache" not in w.owner.name
            and "gateway" not in w.owner.name  # a hub's gateway: a client of Loki, not a Loki target
        ]
    else:
        found = [w for w in stack.workloads() if (w.owner.kind, w.owner.name) in owners[name]]
    return [Source.of(w) for w in found]


def strangers(target) -> list[Source]:
    """Pods nobody meant to reach ``target``: one with no labels in another namespace, one
    with no labels in the target's own, and a client outside the cluster."""
    return [
        INTRUDER,
        Source(f"a pod with no labels in namespace {target.workload.owner.namespace}", target.workload.owner.namespace),
        OUTSIDE,
    ]


def fence_problems(stack, policies, target) -> list[str]:
    """Why ``target`` is not fenced: a stranger it admits, an intended client it refuses.
    Where the outside is an intended client (dev's NodePort), nobody is a stranger."""
    wanted = intended(stack, target)
    if wanted is None:
        return [f"{target}: no intended client known (add the port to INTENDED)"]
    problems = []
    intended_sources = [source for name in wanted for source in clients(stack, name)]
    assert intended_sources, f"{target}: none of {wanted} runs in {stack.name}"
    if OUTSIDE not in intended_sources:
        problems += [
            f"{target} admits {s.what}" for s in strangers(target) if policies.admits(s, target.workload, target.port)
        ]
    problems += [
        f"{target} refuses {s.what}" for s in intended_sources if not policies.admits(s, target.workload, target.port)
    ]
    return problems


def fencing(stack):
    """The stack's Service ports: (fenced by NetworkPolicies, fenced by kube-rbac-proxy, open).
    A port is fenced by policies when, as NetworkPolicies are evaluated, every pod behind it
    refuses strangers and admits its intended clients (Grafana's NodePort in dev is meant for
    anyone: it admits the outside); a port on the host network, where no policy applies, is
    fenced when kube-rbac-proxy serves it. ``open`` lists each other port with its problems."""
    policies = NetworkPolicies(stack.objects)
    by_policy, by_proxy, open_ = [], [], []
    for service, port, targets in stack_service_ports(stack):
        assert targets, f"{service} port {port} reaches no pod"
        label = f"{service.namespace}/{service.name}:{port.get('name') or port['port']}"
        if all(t.workload.pod.get("hostNetwork") for t in targets):
            (by_proxy if all(kube_rbac_proxied(t) for t in targets) else open_).append(label)
            continue
        problems = [p for t in targets for p in fence_problems(stack, policies, t)]
        if problems:
            open_.append(f"{label}: {'; '.join(problems)}")
        else:
            by_policy.append(label)
    return by_policy, by_proxy, open_
