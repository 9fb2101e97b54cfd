"""A fleet's hub: its alert queries, run by promtool on the series the hub receives from a
hub and two spokes, each of whose clusters has nodes named node-a and node-b.

On the hub, a series carries the labels its own cluster's Prometheus Operator path gives it
(a spoke's Prometheus agent scrapes with the same ServiceMonitors, the falco chart's and the
program's, relabelings included), plus ``cluster``, which the hub enforces: so each
cluster's series here are the operator path's (scrape_paths.py, from the rendered objects,
as in test_promtool_rules.py) with ``cluster`` added. Every scrape a cluster's Prometheus
makes writes ``up`` (here kube-state-metrics' and the Falco targets'); a spoke that stops
sending stops all of them at once, with no staleness marker (nothing scraped them away).
The rule files come from the rule groups a hub's ``GrafanaWiring`` registers
(tests/support/hub_wiring.py, promrules.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hub_wiring import FLEET, run_hub_wiring
from promrules import RULE_GROUP, alert_name, as_prometheus_groups, run_scenarios
from scrape_paths import ScrapedCluster, scraped, series_name
from test_promtool_rules import (
    BLIND,
    COVERAGE_UNKNOWN,
    CRITICAL,
    CRITICAL_LABELS,
    DROPS,
    EXPIRING,
    EXPORTER,
    EXPORTER_NOT_ON_NODE,
    EXPORTER_PORT,
    FALCO_METRICS,
    FALCO_PORT,
    LOKI_FAILING,
    NOT_ON_NODE,
    QUEUE_DROPS,
    SAMPLES,
    SIDEKICK,
    STEP,
    TARGET_ABSENT,
    TARGET_DOWN,
    WARNING_LABELS,
    WEBHOOK_FAILING,
    Cluster,
    blind_on_node_b,
    crash_loop_on_node_b,
    decoys_misbehaving,
    down,
    dropping,
    first_event,
    healthy,
    lost_on_the_way_out,
    no_kube_state_metrics,
    no_targets,
    on_node,
    webhook_failing,
)

from components.alerts import SPOKE_SILENT
from components.fleet_view import CLUSTER

pytestmark = pytest.mark.usefixtures("needs_promtool")

HUB, SPOKE_A, SPOKE_B = FLEET.clusters
SILENT_AT = 20  # samples: the spoke's last one is at 4m45s


class Received(Cluster):
    """One cluster's series as the hub stores them: its operator path's labels, and ``cluster``."""

    def __init__(self, scraped: ScrapedCluster, profile: str, name: str):
        super().__init__(scraped, profile)
        self.name = name

    def _labelled(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {**labels, CLUSTER: self.name}

    def up(self, pod, service: str) -> str:
        return self._owned(pod, series_name("up", self._labelled(self.scraped.target(pod, service).labels)))

    def sample(self, pod, service: str, metric: str, **exposed: str) -> str:
        labels = self._labelled(self.scraped.target(pod, service).stored(exposed))
        return self._owned(pod, series_name(metric, labels))

    def ksm(self, metric: str, **exposed: str) -> str:
        return series_name(metric, self._labelled(self._ksm.stored(exposed)))

    def ksm_up(self) -> str:
        """``up`` of kube-state-metrics' target: the cluster's Prometheus scraped it."""
        return series_name("up", self._labelled(self._ksm.labels))


def sample_values(values: str) -> list[str]:
    """promtool's expanding notation (``a+bxn``: n+1 samples from a, ``_``, ``stale``) one
    sample at a time."""
    found: list[str] = []
    for token in values.split():
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?:([+-])(\d+(?:\.\d+)?))?x(\d+)", token)
        if match is None:
            found.append(token)
            continue
        start, sign, step, times = match.groups()
        delta = float(step or 0) * (-1 if sign == "-" else 1)
        found += [f"{float(start) + i * delta:g}" for i in range(int(times) + 1)]
    return found


def silent_from(inputs: dict[str, str], samples: int) -> dict[str, str]:
    """``inputs`` with nothing received after their first ``samples`` samples."""
    cut = {name: " ".join(sample_values(values)[:samples]) for name, values in inputs.items()}
    assert all(cut.values()), "a series with no sample before the silence"
    return cut


Scenario = Callable[[Cluster], dict[str, str]]


def fleet_inputs(
    clusters: Mapping[str, Received],
    scenarios: Mapping[str, Scenario],
    *,
    silent: tuple[str, ...] = (),
    without_kube_state_metrics: tuple[str, ...] = (),
) -> dict[str, str]:
    """Every cluster healthy unless ``scenarios`` says otherwise; the ``silent`` ones stop
    sending at 5 minutes."""
    inputs: dict[str, str] = {}
    for name, c in clusters.items():
        series = scenarios.get(name, healthy)(c)
        if name not in without_kube_state_metrics:
            series[c.ksm_up()] = f"1x{SAMPLES}"
        if name in silent:
            series = silent_from(series, SILENT_AT)
        assert not set(series) & set(inputs), "two clusters' series with the same labels"
        inputs |= series
    return inputs


def combined(*scenarios: Scenario) -> Scenario:
    """The healthy cluster with what each of ``scenarios`` changes in it."""

    def inputs(c: Cluster) -> dict[str, str]:
        base = healthy(c)
        merged = dict(base)
        for scenario in scenarios:
            merged |= {name: values for name, values in scenario(c).items() if base.get(name) != values}
        return merged

    return inputs


def at(cluster: str, labels: Mapping[str, str]) -> dict[str, str]:
    return {CLUSTER: cluster, **labels}


# -- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    at: str
    title: str
    fires: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FleetScenario:
    what: str
    profile: str
    inputs: Callable[[Mapping[str, Received]], dict[str, str]]
    checks: tuple[Check, ...]
    quiet_at: tuple[str, ...] = ()  # eval times at which no alert the checks leave out may fire
    certificates_at_epoch: bool = False

    @property
    def id(self) -> str:
        return f"{self.profile}: {self.what}"

    @property
    def deployment(self) -> tuple[str, bool]:
        return self.profile, self.certificates_at_epoch


SILENT_SPOKE_B = [at(SPOKE_B, CRITICAL_LABELS)]
EVERY_SPOKE_NAMES_A_NODE_B = "every cluster has a node-a and a node-b"

CURRENT = [
    FleetScenario(
        "healthy fleet, another team's Falco misbehaving on spoke-a: every alert quiet",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_A: decoys_misbehaving}),
        (),
        quiet_at=("4m", "8m", "12m", "19m"),
    ),
    FleetScenario(
        "spoke-b stops sending at 5 minutes: Spoke stopped sending fires for spoke-b alone, nothing else fires",
        "current",
        lambda cs: fleet_inputs(cs, {}, silent=(SPOKE_B,)),
        (
            Check("7m30s", SPOKE_SILENT),
            Check("8m30s", SPOKE_SILENT, SILENT_SPOKE_B),
            Check("19m", SPOKE_SILENT, SILENT_SPOKE_B),
        ),
        quiet_at=("4m", "6m30s", "7m", "8m", "9m30s", "10m30s", "12m30s", "15m", "19m"),
    ),
    FleetScenario(
        f"Falco crash-loops on spoke-a's node-b ({EVERY_SPOKE_NAMES_A_NODE_B}): fires for spoke-a's node-b only",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_A: crash_loop_on_node_b}),
        (
            Check("6m30s", TARGET_DOWN),
            Check("7m30s", TARGET_DOWN, [at(SPOKE_A, down(FALCO_METRICS, "falco-b", FALCO_PORT, "node-b"))]),
            Check("7m30s", NOT_ON_NODE),
            Check("8m30s", NOT_ON_NODE, [at(SPOKE_A, on_node("node-b", daemonset="falco"))]),
            Check("6m", BLIND),
            Check("9m", BLIND, [at(SPOKE_A, on_node("node-b"))]),
        ),
        quiet_at=("9m",),
    ),
    FleetScenario(
        f"Falco on spoke-b's node-b counts no system call ({EVERY_SPOKE_NAMES_A_NODE_B}): fires for it only",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_B: blind_on_node_b}),
        (Check("4m", BLIND, [at(SPOKE_B, on_node("node-b"))]),),
        quiet_at=("4m",),
    ),
    FleetScenario(
        "a first Critical event on spoke-b: the alert names spoke-b",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_B: first_event}),
        (
            Check("5m50s", CRITICAL),
            Check(
                "6m10s",
                CRITICAL,
                [at(SPOKE_B, {"rule_name": "Fileless execution via memfd_create", **CRITICAL_LABELS})],
            ),
            Check("11m", CRITICAL),
        ),
        quiet_at=("6m10s",),
    ),
    FleetScenario(
        "the same rule matches on the hub and on spoke-a at once: one alert per cluster, not one summed",
        "current",
        lambda cs: fleet_inputs(cs, {HUB: first_event, SPOKE_A: first_event}),
        (
            Check(
                "6m10s",
                CRITICAL,
                [
                    at(cluster, {"rule_name": "Fileless execution via memfd_create", **CRITICAL_LABELS})
                    for cluster in (HUB, SPOKE_A)
                ],
            ),
        ),
        quiet_at=("6m10s",),
    ),
    FleetScenario(
        "spoke-a sends no kube-state-metrics: coverage cannot be checked there, said for spoke-a",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_A: no_kube_state_metrics}, without_kube_state_metrics=(SPOKE_A,)),
        (
            Check("4m30s", COVERAGE_UNKNOWN),
            Check("6m", COVERAGE_UNKNOWN, [at(SPOKE_A, WARNING_LABELS)]),
        ),
        quiet_at=("6m",),
    ),
    FleetScenario(
        "nothing scrapes Falco on spoke-b, which still sends: each Service is absent, no node watched, there",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_B: no_targets}),
        (
            Check("1m30s", TARGET_ABSENT),
            *(
                Check(
                    when,
                    TARGET_ABSENT,
                    [
                        at(SPOKE_B, {"namespace": "falco", "service": service, **CRITICAL_LABELS})
                        for service in (FALCO_METRICS, SIDEKICK)
                    ],
                )
                for when in ("3m", "12m")
            ),
            Check("12m", BLIND, [at(SPOKE_B, on_node(node)) for node in ("node-a", "node-b")]),
        ),
        quiet_at=("12m",),
    ),
    FleetScenario(
        "spoke-b's node-b drops system calls and events, and its Falcosidekick fails to reach Loki",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_B: combined(dropping, lost_on_the_way_out)}),
        (
            Check("6m30s", DROPS, [at(SPOKE_B, on_node("node-b"))]),
            Check("6m30s", QUEUE_DROPS, [at(SPOKE_B, {"node": "node-b", **WARNING_LABELS})]),
            Check("6m30s", LOKI_FAILING, [at(SPOKE_B, WARNING_LABELS)]),
        ),
        quiet_at=("6m30s",),
    ),
    FleetScenario(
        "spoke-a's Falcosidekick fails to reach the webhook: the alert names spoke-a",
        "current",
        lambda cs: fleet_inputs(cs, {SPOKE_A: webhook_failing}),
        (Check("4m50s", WEBHOOK_FAILING), Check("5m10s", WEBHOOK_FAILING, [at(SPOKE_A, CRITICAL_LABELS)])),
        quiet_at=("5m10s",),
    ),
    FleetScenario(
        "the hub's certificates near their end (valid 2 h, warning 1 h before): fires for each, on the hub",
        "current",
        lambda cs: fleet_inputs(cs, {}),
        (
            Check("50m", EXPIRING),
            Check("1h10m", EXPIRING, [at(HUB, {"certificate": n, **WARNING_LABELS}) for n in ("CA", "server")]),
        ),
        certificates_at_epoch=True,
    ),
]

TUTORIAL = [
    FleetScenario(
        "healthy fleet: every alert quiet",
        "tutorial",
        lambda cs: fleet_inputs(cs, {}),
        (),
        quiet_at=("4m", "12m"),
    ),
    FleetScenario(
        "spoke-b stops sending at 5 minutes: Spoke stopped sending fires for spoke-b alone",
        "tutorial",
        lambda cs: fleet_inputs(cs, {}, silent=(SPOKE_B,)),
        (Check("7m30s", SPOKE_SILENT), Check("8m30s", SPOKE_SILENT, SILENT_SPOKE_B)),
        quiet_at=("8m30s", "12m30s", "19m"),
    ),
    FleetScenario(
        f"falco-exporter crash-loops on spoke-a's node-b ({EVERY_SPOKE_NAMES_A_NODE_B}): fires for it only",
        "tutorial",
        lambda cs: fleet_inputs(cs, {SPOKE_A: crash_loop_on_node_b}),
        (
            Check("7m30s", TARGET_DOWN, [at(SPOKE_A, down(EXPORTER, "falco-exporter-b", EXPORTER_PORT, "node-b"))]),
            Check("8m30s", EXPORTER_NOT_ON_NODE, [at(SPOKE_A, on_node("node-b", daemonset="falco-exporter"))]),
        ),
        quiet_at=("8m30s",),
    ),
    FleetScenario(
        "a first Critical event on spoke-b, counted by its falco-exporter: the alert names spoke-b",
        "tutorial",
        lambda cs: fleet_inputs(cs, {SPOKE_B: first_event}),
        (Check("6m10s", CRITICAL, [at(SPOKE_B, {"rule": "Fileless execution via memfd_create", **CRITICAL_LABELS})]),),
        quiet_at=("6m10s",),
    ),
]

SCENARIOS = CURRENT + TUTORIAL
assert len({s.id for s in SCENARIOS}) == len(SCENARIOS), "scenario ids must be unique"


# -- running them -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    groups: list[dict[str, Any]]
    summaries: dict[str, str]


@cache
def deployed(deployment: tuple[str, bool]) -> Deployed:
    """The hub's rule groups: in `current` with a webhook, so that every rule is deployed."""
    profile, certificates_at_epoch = deployment
    options: dict[str, Any] = {}
    if certificates_at_epoch:
        options = {
            "certificate_expiry": {"CA": "1970-01-01T02:00:00Z", "server": "1970-01-01T02:00:00Z"},
            "certificate_warning_hours": 1,
        }
    run = run_hub_wiring(profile, webhook=profile == "current", **options)
    summaries = {
        rule["name"]: rule["annotations"]["summary"]
        for group in run.of_type(RULE_GROUP)
        for rule in group.plain("rules")
    }
    return Deployed(as_prometheus_groups(run), summaries)


@cache
def clusters(profile: str) -> dict[str, Received]:
    return {name: Received(scraped("operator", profile), profile, name) for name in FLEET.clusters}


def promtool_test(scenario: FleetScenario, group: dict[str, Any], name: str, inputs: dict[str, str]) -> dict | None:
    in_group = {rule["alert"] for rule in group["rules"]}
    checks = [check for check in scenario.checks if alert_name(check.title) in in_group]
    tests = [
        {
            "eval_time": check.at,
            "alertname": alert_name(check.title),
            "exp_alerts": [{"exp_labels": labels} for labels in check.fires],
        }
        for check in checks
    ]
    checked = {alert_name(check.title) for check in checks}
    tests += [
        {"eval_time": when, "alertname": alert, "exp_alerts": []}
        for when in scenario.quiet_at
        for alert in sorted(in_group - checked)
    ]
    if not tests:
        return None
    return {
        "name": name,
        "interval": STEP,
        "input_series": [{"series": series, "values": values} for series, values in inputs.items()],
        "alert_rule_test": tests,
    }


def run_deployment(deployment: tuple[str, bool], directory: Path) -> dict[str, str]:
    scenarios = [s for s in SCENARIOS if s.deployment == deployment]
    assert scenarios
    inputs = [s.inputs(clusters(deployment[0])) for s in scenarios]
    return run_scenarios(scenarios, inputs, deployed(deployment).groups, promtool_test, directory)


DEPLOYMENTS = sorted({s.deployment for s in SCENARIOS})


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: f"{d[0]}{', certificates at epoch' if d[1] else ''}")
def test_the_hubs_rules_behave_as_a_defender_of_the_fleet_expects(deployment, tmp_path):
    failures = run_deployment(deployment, tmp_path)
    if failures:
        pytest.fail("\n".join(f"{scenario}:\n{what}" for scenario, what in failures.items()), pytrace=False)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_each_alert_a_scenario_expects_names_its_cluster_and_what_its_summary_names(scenario):
    summaries = deployed(scenario.deployment).summaries
    for check in scenario.checks:
        assert check.title in summaries, f"{check.title!r} is not deployed on the hub"
        named = set(re.findall(r"\$labels\.(\w+)", summaries[check.title]))
        assert CLUSTER in named, check.title
        for labels in check.fires:
            assert named <= set(labels), f"{check.title}: the summary names {sorted(named - set(labels))}"


def test_every_rule_of_the_hub_fires_in_some_scenario():
    for profile in ("current", "tutorial"):
        rules = {rule["alert"] for group in deployed((profile, False)).groups for rule in group["rules"]}
        firing = {
            alert_name(c.title) for s in SCENARIOS if s.profile in (profile, "current") for c in s.checks if c.fires
        }
        assert rules and not rules - firing, f"{profile}: no scenario makes these fire: {sorted(rules - firing)}"


def test_a_silent_spoke_is_silent_in_every_series_and_the_others_are_not():
    """The silence scenario's input: spoke-b's series all end at 4m45s, the others run on."""
    inputs = fleet_inputs(clusters("current"), {}, silent=(SPOKE_B,))
    lengths = {name: len(sample_values(values)) for name, values in inputs.items()}
    of_b = [n for n in inputs if f'{CLUSTER}="{SPOKE_B}"' in n]
    assert of_b and all(lengths[n] == SILENT_AT for n in of_b)
    assert all(lengths[n] > SILENT_AT for n in inputs if n not in of_b)
    assert json.dumps(sample_values("0+1000x3 _ stale 5x1")) == '["0", "1000", "2000", "3000", "_", "stale", "5", "5"]'
