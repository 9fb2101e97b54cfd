"""The deployed alert queries, run by Prometheus' own rule engine (``promtool test rules``)
against what a defender fears: each scenario says, from the defender's side, which alerts
must fire (with which labels) and which must stay quiet.

The rule files come from the Grafana rule groups the program registers (promrules.py).
Input series carry the labels Prometheus gives them on the scenario's scrape path
(scrape_paths.py derives them from the rendered Services and ServiceMonitors, and from the
Prometheus community chart's annotation job): the Prometheus Operator's targets carry
``pod``, the annotation job's do not, and both carry ``node``. Samples are 15 s apart
(falco chart 9.1.0's ServiceMonitor interval). The scenarios of one deployment run in one
``promtool test rules`` per rule group.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from falco_settings import PRIORITIES as FALCO_PRIORITIES
from harness import Secret, fake_tls_outputs, run_program
from promrules import RULE_GROUP, alert_name, as_prometheus_groups, run_scenarios
from scrape_paths import DECOY_NAMESPACE, FALCO_NAMESPACE, PATHS, Pod, ScrapedCluster, pod_ip, scraped, series_name

from components import event_export, falco
from components.falco_metrics import (
    OUTPUT_QUEUE_DROPS,
    RULE_MATCHES,
    SIDEKICK_OUTPUTS,
    SYSCALLS_DROPPED,
    SYSCALLS_SEEN,
)

pytestmark = pytest.mark.usefixtures("needs_promtool")

STEP = "15s"
MINUTES = 20
SAMPLES = MINUTES * 4  # one every 15 s
NODES = ("node-a", "node-b")
CRITICAL_RULE = "Drop and execute new binary in container"  # a stock Falco rule of priority Critical
WEBHOOK = Secret("https://hooks.example.com/falco")
FALCO_METRICS = f"{falco.RELEASE}-metrics"
SIDEKICK = event_export.SIDEKICK_RELEASE
EXPORTER = event_export.EXPORTER_RELEASE
FALCO_PORT = falco.METRICS_PORT
SIDEKICK_PORT = event_export.SIDEKICK_PLAIN_PORT
EXPORTER_PORT = 9376  # falco-exporter 0.12.2 values.yaml service.port and the container's

CRITICAL = "Falco event of priority Critical or above"
NOT_ON_NODE = "Falco is not running on a node"
EXPORTER_NOT_ON_NODE = "falco-exporter is not running on a node"
COVERAGE_UNKNOWN = "Node coverage cannot be checked"
TARGET_DOWN = "Falco scrape target down"
TARGET_ABSENT = "Falco scrape target absent"
BLIND = "Falco sees no system calls"
DROPS = "Falco drops system calls"
QUEUE_DROPS = "Falco drops events at its outputs"
WEBHOOK_FAILING = "Falcosidekick cannot deliver to the webhook"
LOKI_FAILING = "Falcosidekick cannot deliver to Loki"
EXPIRING = "mTLS certificate expires soon"
# The alerts about one node's sensor, or one scrape target: each must name its node.
PER_NODE = {
    "current": (NOT_ON_NODE, TARGET_DOWN, BLIND, DROPS, QUEUE_DROPS),
    "tutorial": (NOT_ON_NODE, EXPORTER_NOT_ON_NODE, TARGET_DOWN),
}

CRITICAL_LABELS = {"severity": "critical", "source": "falco"}
WARNING_LABELS = {"severity": "warning", "source": "falco"}


# -- sample values ----------------------------------------------------------------------------


def steady(value: float, samples: int = SAMPLES) -> str:
    return f"{value:g}x{samples}"


def counting(step: int = 1000, samples: int = SAMPLES, start: int = 0) -> str:
    return f"{start}+{step}x{samples}"


def gap(samples: int) -> str:
    """No sample: the series does not exist (yet, or any more)."""
    return " ".join(["_"] * samples)


def ends(values: str, samples_left: int) -> str:
    """``values``, then the staleness marker Prometheus writes when a series vanishes from
    its target's scrape (pod gone, counter not exported any more, scrape failed)."""
    return f"{values} stale {gap(samples_left - 1)}" if samples_left > 1 else f"{values} stale"


class Cluster:
    """A two-node cluster as one scrape path's Prometheus stores it: the name of each sample
    series, with the labels that path gives it, and which pod each series belongs to."""

    def __init__(self, scraped: ScrapedCluster, profile: str):
        self.scraped = scraped
        self.profile = profile
        self.current = profile == "current"
        self.owned: dict[tuple[str, str], set[str]] = defaultdict(set)
        (service,) = [
            o
            for o in scraped.objects
            if o["kind"] == "Service" and o["metadata"]["name"].endswith("kube-state-metrics")
        ]
        (deployment,) = [
            o
            for o in scraped.objects
            if o["kind"] == "Deployment"
            and o["metadata"]["namespace"] == service["metadata"]["namespace"]
            and o["metadata"]["name"].endswith("kube-state-metrics")
        ]
        self._ksm = self.scraped.target(
            scraped.pod(
                service["metadata"]["namespace"], deployment["metadata"]["name"], "kube-state-metrics-0", "node-a"
            ),
            service["metadata"]["name"],
        )

    def pod(self, workload: str, node: str, namespace: str = FALCO_NAMESPACE, name: str | None = None) -> Pod:
        """``workload``'s pod on ``node``: falco-a, falco-exporter-b, falcosidekick-0..."""
        default = f"{workload}-0" if workload == SIDEKICK else f"{workload}-{node[-1]}"
        return self.scraped.pod(namespace, workload, name or default, node)

    def _owned(self, pod: Pod, name: str) -> str:
        self.owned[(pod.namespace, pod.name)].add(name)
        return name

    def up(self, pod: Pod, service: str) -> str:
        return self._owned(pod, series_name("up", self.scraped.target(pod, service).labels))

    def sample(self, pod: Pod, service: str, metric: str, **exposed: str) -> str:
        """A sample ``pod`` exposes with the labels ``exposed``, scraped through ``service``."""
        return self._owned(pod, series_name(metric, self.scraped.target(pod, service).stored(exposed)))

    def ksm(self, metric: str, **exposed: str) -> str:
        return series_name(metric, self._ksm.stored(exposed))

    def agent(self, pod: Pod, workload: str, ready: str = steady(1), info: str = steady(1)) -> dict[str, str]:
        """kube-state-metrics' view of one DaemonSet pod."""
        return {
            self._owned(
                pod,
                self.ksm(
                    "kube_pod_info",
                    namespace=pod.namespace,
                    pod=pod.name,
                    node=pod.node,
                    pod_ip=pod.ip,
                    created_by_kind="DaemonSet",
                    created_by_name=workload,
                ),
            ): info,
            self._owned(
                pod, self.ksm("kube_pod_status_ready", namespace=pod.namespace, pod=pod.name, condition="true")
            ): ready,
        }

    def without(self, inputs: dict[str, str], pod: Pod) -> dict[str, str]:
        """``inputs`` less every series of ``pod``."""
        owned = self.owned[(pod.namespace, pod.name)]
        assert owned, f"no series of {pod.namespace}/{pod.name}"
        return {name: values for name, values in inputs.items() if name not in owned}

    def critical_counter(self, pod: Pod, rule: str = CRITICAL_RULE, priority: int = 2) -> str:
        """The event counter of ``rule`` (Falco numbers priorities 0 Emergency ... 7 Debug)."""
        if self.current:
            return self.sample(
                pod, FALCO_METRICS, RULE_MATCHES, rule_name=rule, priority=str(priority), source="syscall"
            )
        return self.sample(
            pod, EXPORTER, "falco_events", rule=rule, priority=str(priority), hostname=pod.node, source="syscall"
        )

    def falco_counters(
        self, pod: Pod, seen: str = counting(), dropped: str = steady(0), queue: str = steady(0)
    ) -> dict[str, str]:
        """Falco's own counters: system calls seen and dropped, events dropped from its output queue."""
        return {
            self.sample(pod, FALCO_METRICS, SYSCALLS_SEEN): seen,
            self.sample(pod, FALCO_METRICS, SYSCALLS_DROPPED): dropped,
            self.sample(pod, FALCO_METRICS, OUTPUT_QUEUE_DROPS): queue,
        }

    def deliveries(self, pod: Pod, destination: str, status: str) -> str:
        return self.sample(pod, SIDEKICK, SIDEKICK_OUTPUTS, destination=destination, status=status)


def instance(pod: str, port: int) -> str:
    return f"{pod_ip(FALCO_NAMESPACE, pod)}:{port}"


# -- the cluster, healthy and otherwise -------------------------------------------------------


def healthy(
    c: Cluster,
    *,
    falco_on: tuple[str, ...] = NODES,
    up: str = steady(1),
    samples: bool = True,
    targets: bool = True,
    kube_state_metrics: bool = True,
    namespace: str = FALCO_NAMESPACE,
) -> dict[str, str]:
    """Two nodes, every agent ready and scraped, Falco counting system calls and dropping
    none, Falcosidekick delivering, and one Critical event long before the scenario starts
    (its counter steady at 3). ``namespace`` other than Falco's: another team's copy."""
    inputs: dict[str, str] = {}
    if kube_state_metrics and namespace == FALCO_NAMESPACE:
        inputs |= {c.ksm("kube_node_info", node=node): steady(1) for node in NODES}
    service = FALCO_METRICS if c.current else EXPORTER
    for node in falco_on:
        falco_pod = c.pod(falco.RELEASE, node, namespace)
        scraped = falco_pod if c.current else c.pod(EXPORTER, node, namespace)
        if kube_state_metrics:
            inputs |= c.agent(falco_pod, falco.RELEASE)
            if not c.current:
                inputs |= c.agent(scraped, EXPORTER)
        if targets:
            inputs[c.up(scraped, service)] = up
        if targets and samples:
            if c.current:
                inputs |= c.falco_counters(scraped)
            inputs[c.critical_counter(scraped)] = steady(3)
    if c.current:
        sidekick = c.pod(SIDEKICK, "node-a", namespace)
        if targets:
            inputs[c.up(sidekick, SIDEKICK)] = up
        if targets and samples:
            inputs[c.deliveries(sidekick, "loki", "ok")] = counting(1)
            inputs[c.deliveries(sidekick, "webhook", "ok")] = steady(1)
    return inputs


def scraped_agent(c: Cluster, node: str, namespace: str = FALCO_NAMESPACE) -> Pod:
    """The pod whose metrics tell of Falco on ``node``: Falco itself, or falco-exporter."""
    return c.pod(falco.RELEASE if c.current else EXPORTER, node, namespace)


def on_node(node: str, **labels: str) -> dict[str, str]:
    return {"node": node, **labels, **CRITICAL_LABELS}


def down(service: str, pod: str, port: int, node: str) -> dict[str, str]:
    return {
        "namespace": FALCO_NAMESPACE,
        "service": service,
        "node": node,
        "instance": instance(pod, port),
        **CRITICAL_LABELS,
    }


# Falco's priorities as rule names spell them, most severe first (Falco numbers them 0 to 7).
PRIORITIES = tuple(p.capitalize() for p in FALCO_PRIORITIES)


def every_priority(c: Cluster) -> dict[str, str]:
    """At 6 min, a first event of one rule at each of Falco's eight priorities."""
    inputs = healthy(c)
    pod = scraped_agent(c, "node-b")
    for number, name in enumerate(PRIORITIES):
        inputs[c.critical_counter(pod, f"a rule of priority {name}", number)] = f"{gap(24)} {steady(1, 56)}"
    return inputs


def fired_for(profile: str, *priorities: str) -> list[dict[str, str]]:
    label = "rule_name" if profile == "current" else "rule"
    return [{label: f"a rule of priority {p}", **CRITICAL_LABELS} for p in priorities]


def first_event(c: Cluster) -> dict[str, str]:
    inputs = healthy(c)
    # Rule never matched before: its series appears at 6 min, with the count 1.
    pod = scraped_agent(c, "node-b" if c.current else "node-a")
    inputs[c.critical_counter(pod, "Fileless execution via memfd_create")] = f"{gap(24)} {steady(1, 56)}"
    return inputs


def restarted_pod(c: Cluster) -> dict[str, str]:
    """Certificate rotation replaced falco-a with falco-a2 at 9 min (new pod, new labels, its
    counters from zero: no series until an event); at 11 min, one event on falco-a2."""
    old_pod, new_pod = c.pod(falco.RELEASE, "node-a"), c.pod(falco.RELEASE, "node-a", name="falco-a2")
    inputs = c.without(healthy(c), old_pod)
    old, new = ends(steady(1, 36), 44), f"{gap(38)} {steady(1, 42)}"
    for pod, alive in ((old_pod, old), (new_pod, new)):
        inputs |= c.agent(pod, falco.RELEASE, ready=alive, info=alive)
        inputs[c.up(pod, FALCO_METRICS)] = alive
    inputs |= c.falco_counters(old_pod, ends(counting(1000, 36), 44), ends(steady(0, 36), 44), ends(steady(0, 36), 44))
    inputs |= c.falco_counters(
        new_pod, f"{gap(38)} {counting(1000, 42)}", new.replace("1x", "0x"), new.replace("1x", "0x")
    )
    inputs[c.critical_counter(old_pod)] = ends(steady(3, 36), 44)
    inputs[c.critical_counter(new_pod)] = f"{gap(44)} {steady(1, 36)}"
    return inputs


def counter_reset(c: Cluster) -> dict[str, str]:
    """Falco's container on falco-a restarted in place at 10 min (same pod, counters from
    zero, gone until it counts again); its Critical rule matched once more at 10 min 45 s."""
    inputs = healthy(c)
    inputs[c.critical_counter(c.pod(falco.RELEASE, "node-a"))] = f"{ends(steady(5, 40), 2)} {steady(1, 37)}"
    return inputs


def missed_scrape(c: Cluster) -> dict[str, str]:
    inputs = healthy(c)
    inputs[c.critical_counter(c.pod(falco.RELEASE, "node-a"))] = f"{ends(steady(3, 30), 1)} {steady(3, 48)}"
    return inputs


def gone_from_node_b(c: Cluster) -> dict[str, str]:
    """Node b has no pod of the sensor at all (a DaemonSet that does not schedule there)."""
    return c.without(healthy(c), scraped_agent(c, "node-b"))


def crash_loop_on_node_b(c: Cluster) -> dict[str, str]:
    """From 5 min on, the sensor's pod on node b crash-loops: never ready, its target down,
    its samples gone (Falco's driver refused, say)."""
    pod = scraped_agent(c, "node-b")
    inputs = c.without(healthy(c), pod)
    failing = f"{steady(1, 20)} {steady(0, 60)}"
    inputs |= c.agent(pod, pod.name.rsplit("-", 1)[0], ready=failing)
    inputs[c.up(pod, FALCO_METRICS if c.current else EXPORTER)] = failing
    if c.current:
        inputs |= c.falco_counters(pod, ends(counting(1000, 20), 60), ends(steady(0, 20), 60), ends(steady(0, 20), 60))
    inputs[c.critical_counter(pod)] = ends(steady(3, 20), 60)
    return inputs


def blind_on_node_b(c: Cluster) -> dict[str, str]:
    """Falco on node b runs, is scraped and ready, and counts no system call."""
    inputs = healthy(c)
    inputs[c.sample(c.pod(falco.RELEASE, "node-b"), FALCO_METRICS, SYSCALLS_SEEN)] = steady(5000)
    return inputs


def dropping(c: Cluster) -> dict[str, str]:
    """Node a's Falco loses 2 system calls in 1000 all along (0.2 %: noise); node b's loses
    everything for ten seconds at 6 min: 700 in one scrape, 3.5 % of five minutes' 20000."""
    inputs = healthy(c)
    inputs[c.sample(c.pod(falco.RELEASE, "node-a"), FALCO_METRICS, SYSCALLS_DROPPED)] = counting(2)
    inputs[c.sample(c.pod(falco.RELEASE, "node-b"), FALCO_METRICS, SYSCALLS_DROPPED)] = (
        f"{steady(0, 24)} {steady(700, 56)}"
    )
    return inputs


def lost_on_the_way_out(c: Cluster) -> dict[str, str]:
    """At 6 min, Falco on node b drops 3 events from its output queue, and two of
    Falcosidekick's deliveries to Loki fail (the first errors it ever counts)."""
    inputs = healthy(c)
    inputs[c.sample(c.pod(falco.RELEASE, "node-b"), FALCO_METRICS, OUTPUT_QUEUE_DROPS)] = (
        f"{steady(0, 24)} {steady(3, 56)}"
    )
    inputs[c.deliveries(c.pod(SIDEKICK, "node-a"), "loki", "error")] = f"{gap(24)} {steady(2, 56)}"
    return inputs


def all_targets_down(c: Cluster) -> dict[str, str]:
    return healthy(c, up=steady(0), samples=False)  # no scrape, no samples


def no_targets(c: Cluster) -> dict[str, str]:
    return healthy(c, targets=False)


def no_kube_state_metrics(c: Cluster) -> dict[str, str]:
    return healthy(c, kube_state_metrics=False)


def webhook_failing(c: Cluster) -> dict[str, str]:
    inputs = healthy(c)
    inputs[c.deliveries(c.pod(SIDEKICK, "node-a"), "webhook", "error")] = f"{gap(20)} {steady(1, 60)}"
    return inputs


def exporter_not_subscribed(c: Cluster) -> dict[str, str]:
    inputs = healthy(c)
    inputs |= c.agent(c.pod(EXPORTER, "node-b"), EXPORTER, ready=steady(0))
    return inputs


def decoys_misbehaving(c: Cluster) -> dict[str, str]:
    """The stack is healthy; in namespace `security` another team's Falco (same charts, same
    names) is down on node b, blind and dropping on node a, and counts Critical events, and
    its Falcosidekick fails every delivery: none of it is this stack's to report."""
    inputs = healthy(c)
    a, b = scraped_agent(c, "node-a", DECOY_NAMESPACE), scraped_agent(c, "node-b", DECOY_NAMESPACE)
    falco_b = c.pod(falco.RELEASE, "node-b", DECOY_NAMESPACE)
    service = FALCO_METRICS if c.current else EXPORTER
    inputs |= c.agent(c.pod(falco.RELEASE, "node-a", DECOY_NAMESPACE), falco.RELEASE)
    inputs |= c.agent(falco_b, falco.RELEASE, ready=steady(0))
    if not c.current:
        inputs |= c.agent(a, EXPORTER) | c.agent(b, EXPORTER, ready=steady(0))
    inputs[c.up(a, service)] = steady(1)
    inputs[c.up(b, service)] = steady(0)
    inputs[c.critical_counter(a)] = f"{gap(24)} {steady(1, 56)}"
    if c.current:
        inputs |= c.falco_counters(a, seen=steady(5000), dropped=counting(500), queue=counting(1))
        sidekick = c.pod(SIDEKICK, "node-a", DECOY_NAMESPACE)
        inputs[c.up(sidekick, SIDEKICK)] = steady(1)
        inputs[c.deliveries(sidekick, "loki", "error")] = f"{gap(24)} {counting(1, 56, start=1)}"
        inputs[c.deliveries(sidekick, "webhook", "error")] = f"{gap(24)} {counting(1, 56, start=1)}"
    return inputs


def decoys_masking(c: Cluster) -> dict[str, str]:
    """The other team's Falco is healthy everywhere; this stack's is gone from node b and
    (`current`) its Falcosidekick, (`tutorial`) its exporters, have no scrape target."""
    inputs = healthy(c, namespace=DECOY_NAMESPACE)
    if c.current:
        inputs |= c.without(healthy(c, falco_on=("node-a",)), c.pod(SIDEKICK, "node-a"))
    else:
        inputs |= c.without(healthy(c, targets=False), c.pod(falco.RELEASE, "node-b"))
    return inputs


# -- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    at: str  # eval_time
    title: str  # the Grafana rule
    fires: list[dict[str, str]] = field(default_factory=list)  # each alert's labels; empty: quiet


@dataclass(frozen=True)
class Scenario:
    what: str
    profile: str
    inputs: Callable[[Cluster], dict[str, str]]
    checks: tuple[Check, ...]
    path: str = "operator"
    config: tuple[tuple[str, Any], ...] = ()
    certificates_issued_at_epoch: bool = False
    quiet_everywhere_else: str | None = None  # an eval_time at which no other alert may fire

    @property
    def id(self) -> str:
        return f"{self.profile}, {self.path}: {self.what}"

    @property
    def deployment(self) -> str:
        return json.dumps([self.path, self.profile, self.config, self.certificates_issued_at_epoch], default=repr)


def per_path(
    profile: str, what: str, inputs: Callable[[Cluster], dict[str, str]], *checks: Check, quiet: str | None = None
):
    return [Scenario(what, profile, inputs, checks, path=path, quiet_everywhere_else=quiet) for path in PATHS]


def crash_checks(profile: str) -> tuple[Check, ...]:
    agent, title, service, port = (
        ("falco-b", NOT_ON_NODE, FALCO_METRICS, FALCO_PORT)
        if profile == "current"
        else ("falco-exporter-b", EXPORTER_NOT_ON_NODE, EXPORTER, EXPORTER_PORT)
    )
    daemonset = agent.rsplit("-", 1)[0]
    checks = [
        Check("6m30s", TARGET_DOWN),
        Check("7m30s", TARGET_DOWN, [down(service, agent, port, "node-b")]),
        Check("7m30s", title),
        Check("8m30s", title, [on_node("node-b", daemonset=daemonset)]),
    ]
    if profile == "current":
        checks += [Check("6m", BLIND), Check("9m", BLIND, [on_node("node-b")])]
    return tuple(checks)


CURRENT = [
    *per_path("current", "healthy cluster, an old Critical event: every alert quiet", healthy, quiet="12m"),
    *per_path(
        "current",
        "Falco on node b counts no system call: fires for node b",
        blind_on_node_b,
        Check("4m", BLIND, [on_node("node-b")]),
        quiet="4m",
    ),
    *per_path(
        "current",
        "Falco crash-loops on node b from 5 minutes: each alert fires for node b",
        crash_loop_on_node_b,
        *crash_checks("current"),
        quiet="9m",
    ),
    *per_path(
        "current",
        "Falco gone from node b: fires for node b",
        gone_from_node_b,
        Check("2m30s", NOT_ON_NODE),
        Check("4m", NOT_ON_NODE, [on_node("node-b", daemonset="falco")]),
        Check("4m", BLIND, [on_node("node-b")]),
        quiet="4m",
    ),
    *per_path(
        "current",
        "system calls dropped: a 10-second flood on node b fires for five minutes, 0.2 % on node a stays quiet",
        dropping,
        Check("5m30s", DROPS),
        Check("6m30s", DROPS, [on_node("node-b")]),
        Check("10m30s", DROPS, [on_node("node-b")]),
        Check("11m30s", DROPS),
        quiet="6m30s",
    ),
    *per_path(
        "current",
        "events dropped at Falco's output queue on node b and failing to reach Loki: both fire",
        lost_on_the_way_out,
        Check("5m30s", QUEUE_DROPS),
        Check("6m30s", QUEUE_DROPS, [{"node": "node-b", **WARNING_LABELS}]),
        Check("5m30s", LOKI_FAILING),
        Check("6m30s", LOKI_FAILING, [WARNING_LABELS]),
        Check("12m", QUEUE_DROPS),
        quiet="6m30s",
    ),
    *per_path(
        "current",
        "another team's Falco in another namespace misbehaves: every alert quiet",
        decoys_misbehaving,
        quiet="8m",
    ),
    *per_path(
        "current",
        "another team's Falco is healthy, this stack's is not: the alerts still fire",
        decoys_masking,
        Check("4m", NOT_ON_NODE, [on_node("node-b", daemonset="falco")]),
        Check("4m", BLIND, [on_node("node-b")]),
        Check("4m", TARGET_ABSENT, [{"namespace": FALCO_NAMESPACE, "service": SIDEKICK, **CRITICAL_LABELS}]),
        quiet="4m",
    ),
    Scenario(
        "first event of a rule: fires within one evaluation, quiet again after the window",
        "current",
        first_event,
        (
            Check("5m50s", CRITICAL),
            Check("6m10s", CRITICAL, [{"rule_name": "Fileless execution via memfd_create", **CRITICAL_LABELS}]),
            Check("11m", CRITICAL),
        ),
        quiet_everywhere_else="6m10s",
    ),
    Scenario(
        "event on a pod that restarted a minute earlier (certificate rotation): fires",
        "current",
        restarted_pod,
        (
            Check("10m50s", CRITICAL),
            Check("11m10s", CRITICAL, [{"rule_name": CRITICAL_RULE, **CRITICAL_LABELS}]),
            Check("11m", NOT_ON_NODE),
            Check("11m", TARGET_DOWN),
            Check("11m", BLIND),
        ),
    ),
    Scenario(
        "counter reset: Falco restarted in place and counted the rule again: fires",
        "current",
        counter_reset,
        (
            Check("10m", CRITICAL),
            Check("10m50s", CRITICAL, [{"rule_name": CRITICAL_RULE, **CRITICAL_LABELS}]),
        ),
    ),
    Scenario(
        "one failed scrape of an unchanged counter: quiet",
        "current",
        missed_scrape,
        (Check("7m40s", CRITICAL), Check("12m", CRITICAL)),
    ),
    Scenario(
        "all targets down: every target fires, and no node's system calls are counted",
        "current",
        all_targets_down,
        (
            Check("1m30s", TARGET_DOWN),
            Check(
                "3m",
                TARGET_DOWN,
                [
                    down(FALCO_METRICS, "falco-a", FALCO_PORT, "node-a"),
                    down(FALCO_METRICS, "falco-b", FALCO_PORT, "node-b"),
                    down(SIDEKICK, f"{SIDEKICK}-0", SIDEKICK_PORT, "node-a"),
                ],
            ),
            Check("4m", BLIND, [on_node("node-a"), on_node("node-b")]),
        ),
    ),
    Scenario(
        "no scrape target at all (nothing scrapes the falco namespace): fires per Service",
        "current",
        no_targets,
        (
            Check(
                "3m",
                TARGET_ABSENT,
                [
                    {"namespace": FALCO_NAMESPACE, "service": FALCO_METRICS, **CRITICAL_LABELS},
                    {"namespace": FALCO_NAMESPACE, "service": SIDEKICK, **CRITICAL_LABELS},
                ],
            ),
        ),
    ),
    Scenario(
        "kube-state-metrics missing: coverage cannot be checked, said after 5 minutes",
        "current",
        no_kube_state_metrics,
        (
            Check("4m30s", COVERAGE_UNKNOWN),
            Check("6m", COVERAGE_UNKNOWN, [WARNING_LABELS]),
            Check("6m", NOT_ON_NODE),
            Check("6m", BLIND),
        ),
    ),
    Scenario(
        "Falcosidekick's first failed delivery to the webhook: fires",
        "current",
        webhook_failing,
        (
            Check("4m50s", WEBHOOK_FAILING),
            Check("5m10s", WEBHOOK_FAILING, [CRITICAL_LABELS]),
        ),
        quiet_everywhere_else="4m50s",
    ),
    Scenario(
        "certificate expiry approaching (valid 2 h, warning 1 h before): fires for each",
        "current",
        lambda c: {},
        (
            Check("50m", EXPIRING),
            Check(
                "1h10m",
                EXPIRING,
                [{"certificate": name, **WARNING_LABELS} for name in ("CA", "client", "server")],
            ),
        ),
        config=(
            ("pki", {"validityHours": 2, "earlyRenewalHours": 1, "caValidityHours": 2}),
            ("alerting", {"certificateWarningHours": 1}),
        ),
        certificates_issued_at_epoch=True,
    ),
]

TUTORIAL = [
    *per_path("tutorial", "healthy cluster, every alert quiet", healthy, quiet="12m"),
    *per_path(
        "tutorial",
        "falco-exporter crash-loops on node b from 5 minutes: each alert fires for node b",
        crash_loop_on_node_b,
        *crash_checks("tutorial"),
        quiet="9m",
    ),
    *per_path(
        "tutorial",
        "falco-exporter gone from node b: fires for node b",
        gone_from_node_b,
        Check("4m", EXPORTER_NOT_ON_NODE, [on_node("node-b", daemonset="falco-exporter")]),
        quiet="4m",
    ),
    *per_path(
        "tutorial",
        "another team's Falco in another namespace misbehaves: every alert quiet",
        decoys_misbehaving,
        quiet="8m",
    ),
    *per_path(
        "tutorial",
        "another team's Falco is healthy, this stack's is not: the alerts still fire",
        decoys_masking,
        Check("4m", NOT_ON_NODE, [on_node("node-b", daemonset="falco")]),
        Check("4m", TARGET_ABSENT, [{"namespace": FALCO_NAMESPACE, "service": EXPORTER, **CRITICAL_LABELS}]),
        quiet="4m",
    ),
    Scenario(
        "first event counted by falco-exporter: fires",
        "tutorial",
        first_event,
        (
            Check("5m50s", CRITICAL),
            Check("6m10s", CRITICAL, [{"rule": "Fileless execution via memfd_create", **CRITICAL_LABELS}]),
        ),
    ),
    Scenario(
        "falco-exporter not subscribed to Falco on one node: fires for that node",
        "tutorial",
        exporter_not_subscribed,
        (Check("4m", EXPORTER_NOT_ON_NODE, [on_node("node-b", daemonset="falco-exporter")]),),
    ),
    Scenario(
        "all targets down: every exporter target fires",
        "tutorial",
        all_targets_down,
        (
            Check(
                "3m",
                TARGET_DOWN,
                [
                    down(EXPORTER, "falco-exporter-a", EXPORTER_PORT, "node-a"),
                    down(EXPORTER, "falco-exporter-b", EXPORTER_PORT, "node-b"),
                ],
            ),
        ),
    ),
]

SCENARIOS = [
    *CURRENT,
    *(
        Scenario(
            f"one event at each of Falco's eight priorities ({profile}): fires for Emergency, Alert and Critical only",
            profile,
            every_priority,
            (Check("6m10s", CRITICAL, fired_for(profile, "Emergency", "Alert", "Critical")),),
        )
        for profile in ("current", "tutorial")
    ),
    *TUTORIAL,
]
assert len({s.id for s in SCENARIOS}) == len(SCENARIOS), "scenario ids must be unique"


# -- running them -----------------------------------------------------------------------------


def issued_at_epoch(args) -> dict[str, Any] | None:
    """pulumi-tls as if it had issued every certificate at the Unix epoch, promtool's time 0."""
    if args.typ not in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return None
    outputs = {**args.inputs, **fake_tls_outputs(args)}
    hours = int(args.inputs["validityPeriodHours"])
    end = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(hours=hours)
    outputs["validityEndTime"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return outputs


@dataclass(frozen=True)
class Deployed:
    groups: list[dict[str, Any]]  # as Prometheus rule groups
    summaries: dict[str, str]  # Grafana rule title -> summary annotation


def program_config(path: str, profile: str, config: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The path's config; in `current` with a webhook, so that every rule is deployed."""
    webhook = {"alertWebhookUrl": WEBHOOK} if profile == "current" else {}
    return {"profile": profile, **PATHS[path].config, **webhook, **dict(config)}


@cache
def deployed(deployment: str) -> Deployed:
    scenario = next(s for s in SCENARIOS if s.deployment == deployment)
    run = run_program(
        program_config(scenario.path, scenario.profile, scenario.config),
        emulators=[issued_at_epoch] if scenario.certificates_issued_at_epoch else [],
    )
    summaries = {
        rule["name"]: rule["annotations"]["summary"]
        for group in run.of_type(RULE_GROUP)
        for rule in group.plain("rules")
    }
    return Deployed(as_prometheus_groups(run), summaries)


def promtool_test(
    scenario: Scenario, group: dict[str, Any], name: str, inputs: dict[str, str]
) -> dict[str, Any] | None:
    """The scenario's checks of the alerts in ``group``, as a promtool test group."""
    in_group = {rule["alert"] for rule in group["rules"]}
    checks = [check for check in scenario.checks if alert_name(check.title) in in_group]
    alert_tests = [
        {
            "eval_time": check.at,
            "alertname": alert_name(check.title),
            "exp_alerts": [{"exp_labels": labels} for labels in check.fires],
        }
        for check in checks
    ]
    if scenario.quiet_everywhere_else:
        checked = {alert_name(check.title) for check in checks}
        alert_tests += [
            {"eval_time": scenario.quiet_everywhere_else, "alertname": alert, "exp_alerts": []}
            for alert in sorted(in_group - checked)
        ]
    if not alert_tests:
        return None
    return {
        "name": name,
        "interval": STEP,
        "input_series": [{"series": series, "values": values} for series, values in inputs.items()],
        "alert_rule_test": alert_tests,
    }


def run_deployment(deployment: str, directory: Path) -> dict[str, str]:
    """Every scenario of one deployment, one ``promtool test rules`` per rule group: what
    failed, per scenario id."""
    scenarios = [s for s in SCENARIOS if s.deployment == deployment]
    assert scenarios
    path, profile = scenarios[0].path, scenarios[0].profile
    inputs = [s.inputs(Cluster(scraped(path, profile), profile)) for s in scenarios]
    return run_scenarios(scenarios, inputs, deployed(deployment).groups, promtool_test, directory)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_each_scenario_checks_deployed_alerts_whose_summaries_name_labels_they_have(scenario: Scenario):
    """What a summary names (``{{ $labels.node }}``...), the alert has on this path: no
    summary reads an empty ``{{ $labels.pod }}`` where Prometheus gives no pod label."""
    rules = deployed(scenario.deployment)
    names = {rule["alert"] for group in rules.groups for rule in group["rules"]}
    for check in scenario.checks:
        assert alert_name(check.title) in names, f"{check.title!r} is not deployed in {scenario.profile}"
        named = set(re.findall(r"\$labels\.(\w+)", rules.summaries[check.title]))
        for labels in check.fires:
            assert named <= set(labels), f"{check.title}: the summary names {sorted(named - set(labels))}"


def deployment_id(deployment: str) -> str:
    path, profile, config, _ = json.loads(deployment)
    return ", ".join([profile, path, *(key for key, _ in config)])


DEPLOYMENTS = sorted({s.deployment for s in SCENARIOS}, key=deployment_id)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[deployment_id(d) for d in DEPLOYMENTS])
def test_the_deployed_rules_behave_as_a_defender_expects(deployment: str, tmp_path):
    """Every scenario of one deployment (profile, scrape path, config), run by promtool."""
    failures = run_deployment(deployment, tmp_path)
    if failures:
        pytest.fail("\n".join(f"{scenario}:\n{what}" for scenario, what in failures.items()), pytrace=False)


def test_every_deployed_rule_is_exercised_firing_by_some_scenario():
    """No alert query goes untested: each rule of each profile fires in at least one scenario."""
    firing = {(s.profile, alert_name(c.title)) for s in SCENARIOS for c in s.checks if c.fires}
    for profile in ("current", "tutorial"):
        deployment = next(s.deployment for s in SCENARIOS if s.profile == profile and not s.config)
        rules = {rule["alert"] for group in deployed(deployment).groups for rule in group["rules"]}
        untested = {name for name in rules if (profile, name) not in firing and ("current", name) not in firing}
        assert not untested, f"{profile}: no scenario makes these fire: {sorted(untested)}"


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_on_every_scrape_path_each_sensor_alert_fires_for_a_named_node(profile, path):
    """The alerts about one node's sensor or one target are checked on each scrape path,
    firing with the node named (the scenarios themselves run above)."""
    for title in PER_NODE[profile]:
        named = [
            labels
            for s in SCENARIOS
            if (s.profile, s.path) == (profile, path)
            for c in s.checks
            if c.title == title
            for labels in c.fires
        ]
        assert named and all(labels.get("node", "").startswith("node-") for labels in named), title
