"""The deployed alert queries, run by Prometheus' own rule engine (``promtool test rules``)
against what a defender fears: each scenario says, from the defender's side, which alerts
must fire (with which labels) and which must stay quiet.

The rule files come from the Grafana rule groups the program registers (promrules.py).
Input series carry the labels Prometheus gives them here: the target labels of a
ServiceMonitor scrape (namespace, service, pod, instance, job) and kube-state-metrics'.
Falco is scraped every 15 s (falco chart 9.1.0 ServiceMonitor), so samples are 15 s apart.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import Secret, fake_tls_outputs, run_program
from promrules import alert_name, as_prometheus_groups, promtool, run_promtool

PROMTOOL, WHY_NOT = promtool()
pytestmark = pytest.mark.usefixtures("needs_promtool")

STEP = "15s"
MINUTES = 20
SAMPLES = MINUTES * 4  # one every 15 s
NODES = ("node-a", "node-b")
CRITICAL_RULE = "Drop and execute new binary in container"  # a stock Falco rule of priority Critical

CRITICAL = "Falco event of priority Critical or above"
NOT_ON_NODE = "Falco is not running on a node"
EXPORTER_NOT_ON_NODE = "falco-exporter is not running on a node"
COVERAGE_UNKNOWN = "Node coverage cannot be checked"
TARGET_DOWN = "Falco scrape target down"
TARGET_ABSENT = "Falco scrape target absent"
BLIND = "Falco sees no system calls"
WEBHOOK_FAILING = "Falcosidekick cannot deliver to the webhook"
EXPIRING = "mTLS certificate expires soon"

CRITICAL_LABELS = {"severity": "critical", "source": "falco"}


def steady(value: float, samples: int = SAMPLES) -> str:
    return f"{value:g}x{samples}"


def counting(step: int = 1000, samples: int = SAMPLES) -> str:
    return f"0+{step}x{samples}"


def gap(samples: int) -> str:
    """No sample: the series does not exist (yet, or any more)."""
    return " ".join(["_"] * samples)


def ends(values: str, samples_left: int) -> str:
    """``values``, then the staleness marker Prometheus writes when a series vanishes from
    its target's scrape (pod gone, counter not exported any more, scrape failed)."""
    return f"{values} stale {gap(samples_left - 1)}" if samples_left > 1 else f"{values} stale"


def series(name: str, **labels: str) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def falco_pod(node: str) -> str:
    return f"falco-{node[-1]}"


def node_agent(name: str, pod: str, node: str, ready: str = steady(1)) -> dict[str, str]:
    """kube-state-metrics' view of one DaemonSet pod."""
    return {
        series(
            "kube_pod_info",
            namespace="falco",
            pod=pod,
            node=node,
            created_by_kind="DaemonSet",
            created_by_name=name,
        ): steady(1),
        series("kube_pod_status_ready", namespace="falco", pod=pod, condition="true"): ready,
    }


def target(service: str, pod: str, port: int, up: str = steady(1)) -> dict[str, str]:
    return {
        series("up", namespace="falco", service=service, pod=pod, instance=f"{pod}:{port}", job=service): up,
    }


def healthy(profile: str) -> dict[str, str]:
    """Two nodes, every agent ready and scraped, Falco counting system calls, and one
    Critical event long before the scenario starts (its counter steady at 3)."""
    inputs = {series("kube_node_info", node=node): steady(1) for node in NODES}
    for node in NODES:
        pod = falco_pod(node)
        inputs |= node_agent("falco", pod, node)
        if profile == "current":
            inputs |= target("falco-metrics", pod, 8765)
            inputs[series("falcosecurity_scap_n_evts_total", namespace="falco", pod=pod)] = counting()
            inputs[critical_counter(profile, pod)] = steady(3)
        else:
            exporter = f"falco-exporter-{node[-1]}"
            inputs |= node_agent("falco-exporter", exporter, node)
            inputs |= target("falco-exporter", exporter, 9376)
            inputs[critical_counter(profile, exporter)] = steady(3)
    if profile == "current":
        inputs |= target("falcosidekick", "falcosidekick-0", 2810)
    return inputs


def critical_counter(profile: str, pod: str, rule: str = CRITICAL_RULE, priority: int = 2) -> str:
    """The event counter of ``rule`` (Falco numbers priorities 0 Emergency ... 7 Debug)."""
    if profile == "current":
        return series(
            "falcosecurity_falco_rules_matches_total",
            rule_name=rule,
            priority=str(priority),
            source="syscall",
            namespace="falco",
            pod=pod,
            service="falco-metrics",
        )
    return series(
        "falco_events",
        rule=rule,
        priority=str(priority),
        hostname=pod,
        source="syscall",
        namespace="falco",
        pod=pod,
        service="falco-exporter",
    )


PRIORITIES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


def every_priority(profile: str) -> dict[str, str]:
    """At 6 min, a first event of one rule at each of Falco's eight priorities."""
    inputs = healthy(profile)
    pod = "falco-b" if profile == "current" else "falco-exporter-b"
    for number, name in enumerate(PRIORITIES):
        inputs[critical_counter(profile, pod, f"a rule of priority {name}", number)] = f"{gap(24)} {steady(1, 56)}"
    return inputs


def fired_for(profile: str, *priorities: str) -> list[dict[str, str]]:
    label = "rule_name" if profile == "current" else "rule"
    return [{label: f"a rule of priority {p}", **CRITICAL_LABELS} for p in priorities]


def without(inputs: dict[str, str], *parts: str) -> dict[str, str]:
    """``inputs`` less every series whose text contains all of ``parts``."""
    return {name: values for name, values in inputs.items() if not all(part in name for part in parts)}


@dataclass(frozen=True)
class Check:
    at: str  # eval_time
    title: str  # the Grafana rule
    fires: list[dict[str, str]] = field(default_factory=list)  # each alert's labels; empty: quiet


@dataclass(frozen=True)
class Scenario:
    what: str
    profile: str
    inputs: Callable[[], dict[str, str]]
    checks: tuple[Check, ...]
    config: tuple[tuple[str, Any], ...] = ()
    certificates_issued_at_epoch: bool = False
    quiet_everywhere_else: str | None = None  # an eval_time at which no other alert may fire


def first_event() -> dict[str, str]:
    inputs = healthy("current")
    # Rule never matched before: its series appears at 6 min, with the count 1.
    inputs[critical_counter("current", "falco-b", "Fileless execution via memfd_create")] = f"{gap(24)} {steady(1, 56)}"
    return inputs


def restarted_pod() -> dict[str, str]:
    """Certificate rotation replaced falco-a with falco-a2 at 9 min (new pod, new labels, its
    counters from zero: no series until an event); at 11 min, one event on falco-a2."""
    inputs = without(healthy("current"), 'pod="falco-a"')
    old, new = ends(steady(1, 36), 44), f"{gap(38)} {steady(1, 42)}"
    for pod, alive in (("falco-a", old), ("falco-a2", new)):
        for name, values in {**node_agent("falco", pod, "node-a"), **target("falco-metrics", pod, 8765)}.items():
            inputs[name] = alive if values == steady(1) else values
    inputs[series("falcosecurity_scap_n_evts_total", namespace="falco", pod="falco-a")] = ends("0+1000x36", 44)
    inputs[series("falcosecurity_scap_n_evts_total", namespace="falco", pod="falco-a2")] = f"{gap(38)} 0+1000x42"
    inputs[critical_counter("current", "falco-a")] = ends(steady(3, 36), 44)
    inputs[critical_counter("current", "falco-a2")] = f"{gap(44)} {steady(1, 36)}"
    return inputs


def counter_reset() -> dict[str, str]:
    """Falco's container on falco-a restarted in place at 10 min (same pod, counters from
    zero, gone until it counts again); its Critical rule matched once more at 10 min 45 s."""
    inputs = healthy("current")
    inputs[critical_counter("current", "falco-a")] = f"{ends(steady(5, 40), 2)} {steady(1, 37)}"
    return inputs


def missed_scrape() -> dict[str, str]:
    inputs = healthy("current")
    inputs[critical_counter("current", "falco-a")] = f"{ends(steady(3, 30), 1)} {steady(3, 48)}"
    return inputs


def absent_on_one_node() -> dict[str, str]:
    return without(healthy("current"), 'pod="falco-b"')


def all_targets_down() -> dict[str, str]:
    inputs = {name: (steady(0) if name.startswith("up{") else values) for name, values in healthy("current").items()}
    return without(inputs, "falcosecurity_")  # no scrape, no samples


def no_targets() -> dict[str, str]:
    return without(without(healthy("current"), "up{"), "falcosecurity_")


def blind_sensor() -> dict[str, str]:
    inputs = healthy("current")
    inputs[series("falcosecurity_scap_n_evts_total", namespace="falco", pod="falco-b")] = steady(5000)
    return inputs


def no_kube_state_metrics() -> dict[str, str]:
    return without(healthy("current"), "kube_")


def webhook_failing() -> dict[str, str]:
    inputs = healthy("current")
    outputs = "falcosecurity_falcosidekick_outputs_total"
    labels = {"namespace": "falco", "pod": "falcosidekick-0", "destination": "webhook"}
    inputs[series(outputs, **labels, status="ok")] = counting(1)
    inputs[series(outputs, **labels, status="error")] = f"{gap(20)} {steady(1, 60)}"
    return inputs


def tutorial_first_event() -> dict[str, str]:
    inputs = healthy("tutorial")
    inputs[critical_counter("tutorial", "falco-exporter-a", "Fileless execution via memfd_create")] = (
        f"{gap(24)} {steady(1, 56)}"
    )
    return inputs


def tutorial_exporter_not_subscribed() -> dict[str, str]:
    inputs = healthy("tutorial")
    inputs |= node_agent("falco-exporter", "falco-exporter-b", "node-b", ready=steady(0))
    return inputs


def tutorial_targets_down() -> dict[str, str]:
    return {name: (steady(0) if name.startswith("up{") else values) for name, values in healthy("tutorial").items()}


def down(pod: str, service: str, port: int) -> dict[str, str]:
    return {
        "namespace": "falco",
        "service": service,
        "pod": pod,
        "instance": f"{pod}:{port}",
        "job": service,
        **CRITICAL_LABELS,
    }


SCENARIOS = [
    Scenario(
        "healthy cluster, an old Critical event: every alert quiet",
        "current",
        lambda: healthy("current"),
        (),
        quiet_everywhere_else="12m",
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
    *(
        Scenario(
            f"one event at each of Falco's eight priorities ({profile}): fires for Emergency, Alert and Critical only",
            profile,
            lambda profile=profile: every_priority(profile),
            (Check("6m10s", CRITICAL, fired_for(profile, "Emergency", "Alert", "Critical")),),
        )
        for profile in ("current", "tutorial")
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
        "Falco absent on one of two nodes: fires for that node after 3 minutes",
        "current",
        absent_on_one_node,
        (
            Check("2m30s", NOT_ON_NODE),
            Check("4m", NOT_ON_NODE, [{"node": "node-b", "daemonset": "falco", **CRITICAL_LABELS}]),
        ),
    ),
    Scenario(
        "all targets down: every target fires, and Falco's data is missing",
        "current",
        all_targets_down,
        (
            Check("1m30s", TARGET_DOWN),
            Check(
                "3m",
                TARGET_DOWN,
                [
                    down("falco-a", "falco-metrics", 8765),
                    down("falco-b", "falco-metrics", 8765),
                    down("falcosidekick-0", "falcosidekick", 2810),
                ],
            ),
            Check("4m", BLIND, [{"namespace": "falco", **CRITICAL_LABELS}]),
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
                    {"namespace": "falco", "service": "falco-metrics", **CRITICAL_LABELS},
                    {"namespace": "falco", "service": "falcosidekick", **CRITICAL_LABELS},
                ],
            ),
        ),
    ),
    Scenario(
        "Falco on one node counts no system calls: fires for that pod",
        "current",
        blind_sensor,
        (
            Check("1m", BLIND),
            Check("4m", BLIND, [{"namespace": "falco", "pod": "falco-b", **CRITICAL_LABELS}]),
        ),
    ),
    Scenario(
        "kube-state-metrics missing: coverage cannot be checked, said after 5 minutes",
        "current",
        no_kube_state_metrics,
        (
            Check("4m30s", COVERAGE_UNKNOWN),
            Check("6m", COVERAGE_UNKNOWN, [{"severity": "warning", "source": "falco"}]),
            Check("6m", NOT_ON_NODE),
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
        config=(("alertWebhookUrl", Secret("https://hooks.example.com/falco")),),
        quiet_everywhere_else="4m50s",
    ),
    Scenario(
        "certificate expiry approaching (valid 48 h, warning 12 h before): fires for each",
        "current",
        dict,
        (
            Check("35h30m", EXPIRING),
            Check(
                "36h30m",
                EXPIRING,
                [
                    {"certificate": name, "severity": "warning", "source": "falco"}
                    for name in ("CA", "client", "server")
                ],
            ),
        ),
        config=(("pki", {"validityHours": 48, "earlyRenewalHours": 24, "caValidityHours": 48}),),
        certificates_issued_at_epoch=True,
    ),
    Scenario(
        "tutorial: healthy cluster, every alert quiet",
        "tutorial",
        lambda: healthy("tutorial"),
        (),
        quiet_everywhere_else="12m",
    ),
    Scenario(
        "tutorial: first event counted by falco-exporter: fires",
        "tutorial",
        tutorial_first_event,
        (
            Check("5m50s", CRITICAL),
            Check("6m10s", CRITICAL, [{"rule": "Fileless execution via memfd_create", **CRITICAL_LABELS}]),
        ),
    ),
    Scenario(
        "tutorial: falco-exporter not subscribed to Falco on one node: fires for that node",
        "tutorial",
        tutorial_exporter_not_subscribed,
        (Check("4m", EXPORTER_NOT_ON_NODE, [{"node": "node-b", "daemonset": "falco-exporter", **CRITICAL_LABELS}]),),
    ),
    Scenario(
        "tutorial: all targets down: every exporter target fires",
        "tutorial",
        tutorial_targets_down,
        (
            Check(
                "3m",
                TARGET_DOWN,
                [
                    down("falco-exporter-a", "falco-exporter", 9376),
                    down("falco-exporter-b", "falco-exporter", 9376),
                ],
            ),
        ),
    ),
]


def issued_at_epoch(args) -> dict[str, Any] | None:
    """pulumi-tls as if it had issued every certificate at the Unix epoch, promtool's time 0."""
    if args.typ not in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return None
    outputs = {**args.inputs, **fake_tls_outputs(args)}
    hours = int(args.inputs["validityPeriodHours"])
    end = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(hours=hours)
    outputs["validityEndTime"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return outputs


_DEPLOYED: dict[str, list[dict[str, Any]]] = {}


def deployed_groups(profile: str, config: tuple[tuple[str, Any], ...], at_epoch: bool) -> list[dict[str, Any]]:
    key = json.dumps([profile, config, at_epoch])
    if key not in _DEPLOYED:
        run = run_program({"profile": profile, **dict(config)}, emulators=[issued_at_epoch] if at_epoch else [])
        _DEPLOYED[key] = as_prometheus_groups(run)
    return _DEPLOYED[key]


def promtool_tests(scenario: Scenario, group: dict[str, Any]) -> list[dict[str, Any]]:
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
            {"eval_time": scenario.quiet_everywhere_else, "alertname": name, "exp_alerts": []}
            for name in sorted(in_group - checked)
        ]
    if not alert_tests:
        return []
    return [
        {
            "name": scenario.what,
            "interval": STEP,
            "input_series": [{"series": name, "values": values} for name, values in scenario.inputs().items()],
            "alert_rule_test": alert_tests,
        }
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.what for s in SCENARIOS])
def test_the_deployed_rules_behave_as_a_defender_expects(scenario: Scenario, tmp_path):
    groups = deployed_groups(scenario.profile, scenario.config, scenario.certificates_issued_at_epoch)
    deployed = {rule["alert"] for group in groups for rule in group["rules"]}
    for check in scenario.checks:
        assert alert_name(check.title) in deployed, f"{check.title!r} is not deployed in {scenario.profile}"
    ran = 0
    for index, group in enumerate(groups):
        tests = promtool_tests(scenario, group)
        if tests:
            directory = tmp_path / str(index)
            directory.mkdir()
            result = run_promtool(PROMTOOL, directory, group, tests)
            assert result.passed, f"{group['name']}:\n{result.output}"
            ran += 1
    assert ran, "the scenario checks nothing"


def test_every_deployed_rule_is_exercised_firing_by_some_scenario():
    """No alert query goes untested: each rule of each profile fires in at least one scenario."""
    firing = {(s.profile, alert_name(c.title)) for s in SCENARIOS for c in s.checks if c.fires}
    for profile in ("current", "tutorial"):
        deployed = {
            rule["alert"]
            for config, at_epoch in (((), False), ((("alertWebhookUrl", Secret("https://h.example.com/x")),), False))
            for group in deployed_groups(profile, config, at_epoch)
            for rule in group["rules"]
        }
        untested = {name for name in deployed if (profile, name) not in firing and ("current", name) not in firing}
        assert not untested, f"{profile}: no scenario makes these fire: {sorted(untested)}"
