"""The Prometheus metrics that count Falco's events and tell its health, per profile.

Names and labels come from the pinned releases' sources:
- Falcosidekick 2.32.0, the image pinned in components/charts.py (stats_prometheus.go, handlers.go):
  ``falcosecurity_falcosidekick_falco_events_total{rule, priority, priority_raw, source,
  hostname, k8s_ns_name, k8s_pod_name}``; ``priority_raw`` is the lower-case name.
- falco-exporter 0.8.7 (pkg/exporter/exporter.go): ``falco_events{rule, priority,
  hostname, source, k8s_ns_name, k8s_pod_name, tags}``; ``priority`` is Falco's number.
- Falco 0.44.1 native metrics (userspace/falco/falco_metrics.cpp, and the dashboard of
  falco chart 9.1.0): ``falcosecurity_falco_rules_matches_total{rule_name, priority,
  source, tag_*}``, ``falcosecurity_scap_n_evts_total``, ``falcosecurity_scap_n_drops_total``,
  ``falcosecurity_falco_cpu_usage_ratio``, ``falcosecurity_falco_memory_rss_bytes``.
Falco numbers priorities 0 Emergency, 1 Alert, 2 Critical ... 7 Debug (falco_common.h,
and the gRPC schema.proto the exporter reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config import Profile

CRITICAL_AND_ABOVE_NUMBERS = 'priority=~"0|1|2"'
RULE_MATCHES = "falcosecurity_falco_rules_matches_total"


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

# What the alert counts: the sensor's own counter where there is one, so the alert still
# fires when the path from Falco to the exporter is broken.
ALERT_COUNTERS: dict[Profile, str] = {
    "current": f"{RULE_MATCHES}{{{CRITICAL_AND_ABOVE_NUMBERS}}}",
    "tutorial": f"falco_events{{{CRITICAL_AND_ABOVE_NUMBERS}}}",
}


def events_in_window(selector: str, window: str = "5m") -> str:
    """Events counted in the last ``window``: the total now minus the total ``window`` ago.

    Unlike ``increase()``, this counts the first event of a rule too: a counter series
    that appears with value 1 has no earlier sample for ``increase()`` to compare with.
    """
    return f"(sum({selector}) or vector(0)) - (sum({selector} offset {window}) or vector(0))"
