"""The Prometheus metrics that count Falco's events and tell its health, per profile.

Names and labels come from the pinned releases' sources:
- Falcosidekick 2.32.0, the image pinned in components/charts.py (stats_prometheus.go, handlers.go):
  ``falcosecurity_falcosidekick_falco_events_total{rule, priority, priority_raw, source,
  hostname, k8s_ns_name, k8s_pod_name}``; ``priority_raw`` is the lower-case name.
  ``falcosecurity_falcosidekick_outputs_total{destination, status}`` counts every delivery
  to an output, ``status`` "ok" or "error" (outputs/webhook.go).
- falco-exporter 0.8.7 (pkg/exporter/exporter.go): ``falco_events{rule, priority,
  hostname, source, k8s_ns_name, k8s_pod_name, tags}``; ``priority`` is Falco's number.
- Falco 0.44.1 native metrics (userspace/falco/falco_metrics.cpp, and the dashboard of
  falco chart 9.1.0): ``falcosecurity_falco_rules_matches_total{rule_name, priority,
  source, tag_*}``, ``falcosecurity_scap_n_evts_total``, ``falcosecurity_scap_n_drops_total``,
  ``falcosecurity_falco_outputs_queue_num_drops_total``, ``falcosecurity_falco_cpu_usage_ratio``,
  ``falcosecurity_falco_memory_rss_bytes``. libs 0.25.4 counts every system call the driver
  meant to send in ``n_evts``, those it lost in ``n_drops`` (the ring buffer full, or the
  event too large: libpman/src/stats.c), so drops are a share of ``n_evts`` ("n_evts always
  contains n_drops", Falco's event_drops.cpp). ``outputs_queue_num_drops`` counts the events
  Falco matched but could not queue for its outputs (falco_outputs.cpp), Falcosidekick among
  them. None of them carries a label of its own: the node is the scrape's (``NODE``).
- kube-state-metrics (kube-prometheus-stack 88.5.3): ``kube_node_info{node}``,
  ``kube_pod_info{namespace, pod, node, created_by_kind, created_by_name}``,
  ``kube_pod_status_ready{namespace, pod, condition}``.
Every scrape path labels a target with the node its pod runs on: ``node``, from
``__meta_kubernetes_pod_node_name``, by the ServiceMonitors' relabeling (components/scraping.py)
and by the Prometheus community chart's ``kubernetes-service-endpoints`` job (15.0.0 and later);
``pod`` exists only on the Prometheus Operator's targets, so no rule relies on it.
Falco numbers priorities 0 Emergency, 1 Alert, 2 Critical ... 7 Debug (falco_common.h,
and the gRPC schema.proto the exporter reads).

Every event counter above is a series that appears only with the first event it counts
(Falco exports a rule's counter once it is above zero; the exporters create a label set on
its first increment) and starts again from nothing when its process restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from components.fleet_view import CLUSTER, FleetView
from components.profile import Profile

CRITICAL_AND_ABOVE_NUMBERS = 'priority=~"0|1|2"'
RULE_MATCHES = "falcosecurity_falco_rules_matches_total"
SIDEKICK_OUTPUTS = "falcosecurity_falcosidekick_outputs_total"
SYSCALLS_SEEN = "falcosecurity_scap_n_evts_total"
SYSCALLS_DROPPED = "falcosecurity_scap_n_drops_total"
OUTPUT_QUEUE_DROPS = "falcosecurity_falco_outputs_queue_num_drops_total"
NODE = "node"  # the node of a scrape target, on every scrape path


@dataclass(frozen=True)
class EventCounter:
    """A counter of Falco events labelled by rule, priority, namespace and pod."""

    name: str
    priority_label: str
    critical_and_above: str  # the matcher for Critical, Alert and Emergency


EVENT_COUNTERS: dict[Profile, EventCounter] = {
    "current": EventCounter(
        "falcosecurity_falcosidekick_falco_events_total", "priority_raw", 'priority_raw=~"critical|alert|emergency"'
    ),
    "tutorial": EventCounter("falco_events", "priority", CRITICAL_AND_ABOVE_NUMBERS),
}


@dataclass(frozen=True)
class AlertCounter:
    """What the Critical-events alert counts: the counter, and the label naming the rule."""

    name: str
    rule_label: str

    def selector(self, namespace: str) -> str:
        """Critical and above, counted by the stack's own sensor (scraped in ``namespace``)."""
        return f'{self.name}{{namespace="{namespace}", {CRITICAL_AND_ABOVE_NUMBERS}}}'


# The sensor's own counter where there is one, so the alert still fires when the path from
# Falco to the exporter is broken.
ALERT_COUNTERS: dict[Profile, AlertCounter] = {
    "current": AlertCounter(RULE_MATCHES, "rule_name"),
    "tutorial": AlertCounter("falco_events", "rule"),
}

WINDOW = 300  # seconds an event keeps the alert firing
# System calls the driver dropped, as a share of those it meant to send, over five minutes,
# above which the drops alert fires. Falco's own check (falco.yaml
# syscall_event_drops.threshold, default 0.1) judges one second at a time and logs; a defender
# wants less: 1 % of five minutes is three seconds of total blindness, long enough for an exec
# and a connect, and flooding the ring buffer to cause drops is a known way to slip past Falco.
# Occasional drops under bursts (well below 1 %) stay quiet.
DROPPED_SHARE = 0.01
DROPS_WINDOW = "5m"
SETTLE = 60  # seconds at the start of the window that tell a continuing series from a new one


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def new_events(
    selector: str,
    by: Sequence[str] = (),
    window: int = WINDOW,
    settle: int = SETTLE,
    fleet: FleetView | None = None,
) -> str:
    """Events counted by ``selector`` within the last ``window`` seconds, across restarts;
    with a ``fleet``, per cluster as well.

    A series that already had samples in the first ``settle`` seconds of the window counts
    by ``increase()``, which sees a counter reset as a restart from zero. Any other series
    with samples in the window was born in it (a rule's first event, a restarted pod's new
    label set, a container that restarted and counted again) and counts with its whole last
    value, which ``increase()`` would miss: a series whose first sample is 1 has no earlier
    sample to compare with. A series seen in neither part counts nothing, so the old series
    of a replaced pod cannot cancel the new ones, as ``sum(now) - sum(5m ago)`` did.
    """
    if fleet is not None:
        by = (CLUSTER, *by)  # the joins below match on every label, the cluster's too
    recent = _duration(window - settle)
    continuing = f"last_over_time({selector}[{_duration(settle)}] offset {recent})"
    grouping = f" by ({', '.join(by)})" if by else ""
    return (
        f"sum{grouping} ("
        f"(increase({selector}[{_duration(window)}]) and {continuing})"
        f" or (last_over_time({selector}[{recent}]) unless {continuing})"
        ")"
    )


# What a spoke's metrics agent sends its hub (components/metrics_agent.py): every series the
# hub's dashboards and alerts read — Falco's and Falcosidekick's, scrape health, and the
# kube-state-metrics series the node-coverage rules join on — and nothing else.
FLEET_METRICS = "up|kube_node_info|kube_pod_info|kube_pod_status_ready|falcosecurity_.+"
