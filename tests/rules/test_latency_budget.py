"""The worst-case time from a Critical event to the contact point, hop by hop, recomputed
from what the cluster receives (falco.yaml in Falco's rendered ConfigMap, Falcosidekick's
rendered environment, the ServiceMonitors' scrape intervals) and from the Grafana rule
groups the program registers; `current` with a webhook must stay within 10 seconds, and
docs/alerting.md (Latency budget) must state each hop and each total this test computes.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pytest
from chart_keys import unknown_keys
from documents import group_spans, section_span, text, unchecked
from falco_settings import PRIORITIES, falco_yaml
from harness import ProgramRun, Secret
from rendering import Obj, render_config

from components.charts import FALCOSIDEKICK

LIMIT = 10.0
WEBHOOK = "https://hooks.example.com/services/T0/B0/secret-token"
# Constants of the pinned releases, which no setting changes:
# falcosecurity/libs 0.25.4 (Falco 0.44.1) and 0.23.2 (Falco 0.43.1), userspace/libscap/ringbuffer/devset.h
# BUFFER_EMPTY_WAIT_TIME_US_MAX: the longest Falco sleeps before reading the kernel's buffers
# again (modern_bpf/scap_modern_bpf.c and ringbuffer.h, every driver).
KERNEL_TO_FALCO = 0.030
# falco-exporter 0.8.7 passes time.Second to client-go 0.5.0 OutputsWatch, which asks Falco's
# gRPC output stream for events again after a second without any.
FALCO_TO_EXPORTER = 1.0
# What the stack allows a receiver (the webhook, or Grafana's SMTP server) to answer in:
# Falcosidekick 2.32.0 builds its HTTP client without a timeout (outputs/client.go), so this
# is the budget's assumption, not a setting; the end-to-end test measures the real answer.
RECEIVER_ANSWER = 5.0
# Grafana's default notification policy waits this long before a group's first notification.
DEFAULT_POLICY_GROUP_WAIT = 30.0
# In the documents' tables: a number of seconds, and the mark of a hop a profile does not have.
SECONDS = r"\d+(?:\.\d+)?"
NO_HOP = "\N{EN DASH}"


@dataclass(frozen=True)
class Hop:
    what: str
    seconds: float


def seconds(duration: str) -> float:
    """A Prometheus/Grafana duration such as 15s, 1m30s or 0s."""
    parts = re.findall(r"([0-9.]+)(ms|s|m|h)", duration)
    assert "".join(number + unit for number, unit in parts) == duration, duration
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * units[unit] for number, unit in parts)


@dataclass
class Deployed:
    run: ProgramRun
    objects: list[Obj]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [o.body for o in self.objects if o.kind == kind and o.name == name]
        return found

    def falco_yaml(self) -> dict[str, Any]:
        return falco_yaml(self.objects)

    def scrape_interval(self, service_monitor: str) -> float:
        (endpoint,) = self.one("ServiceMonitor", service_monitor)["spec"]["endpoints"]
        return seconds(endpoint["interval"])

    def secret_data(self, name: str) -> dict[str, str]:
        body = self.one("Secret", name)
        data = {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
        return {**data, **(body.get("stringData") or {})}

    def environment(self, deployment: str) -> dict[str, str]:
        """The container's environment as the kubelet assembles it: envFrom sources in order,
        a key in several taking the last one's value, then env on top."""
        (container,) = self.one("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            env |= self.secret_data(source["secretRef"]["name"])
        return env | {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}

    def rule_group(self, title: str) -> Any:
        (group,) = [g for g in self.run.of_type("grafana:alerting/ruleGroup:RuleGroup") if g.plain("name") == title]
        return group


def deploy(config: dict[str, Any], charts: tuple[str, ...]) -> Deployed:
    rendered = render_config(f"latency {json.dumps(config, sort_keys=True)} {charts}", "dev", config, only=charts)
    return Deployed(rendered.run, rendered.objects)


def sidekick_path(deployed: Deployed) -> list[Hop]:
    """current: Falco -> Falcosidekick (HTTPS, mTLS) -> the webhook."""
    falco_yaml = deployed.falco_yaml()
    http = falco_yaml["http_output"]
    assert http["enabled"] is True and http["url"].startswith("https://falcosidekick."), http
    env = deployed.environment("falcosidekick")
    minimum = env.get("WEBHOOK_MINIMUMPRIORITY") or "debug"
    delivered = env.get("WEBHOOK_ADDRESS") and PRIORITIES.index(minimum) >= PRIORITIES.index("critical")
    # With a limit, an event waits for the deliveries ahead of it: no bound.
    queue = 0.0 if env.get("WEBHOOK_MAXCONCURRENTREQUESTS") == "0" else math.inf
    return [
        Hop("kernel -> Falco (libscap's longest wait on empty buffers)", KERNEL_TO_FALCO),
        Hop(
            "Falco -> Falcosidekick (falco.yaml output_timeout: the longest an output may block)",
            falco_yaml["output_timeout"] / 1000,
        ),
        Hop(
            "Falcosidekick -> webhook request started (one goroutine per event, no batching)",
            queue if delivered else math.inf,
        ),
        Hop("webhook answers (the receiver's time)", RECEIVER_ANSWER),
    ]


def grafana_path(deployed: Deployed, profile: str, contact_point: bool) -> list[Hop]:
    """Falco -> counter -> Prometheus scrape -> Grafana rule -> contact point."""
    group = deployed.rule_group("Falco critical events")
    (rule,) = group.plain("rules")
    settings = rule.get("notificationSettings") or {}
    group_wait = seconds(settings["groupWait"]) if contact_point else DEFAULT_POLICY_GROUP_WAIT
    hops = [Hop("kernel -> Falco (libscap's longest wait on empty buffers)", KERNEL_TO_FALCO)]
    if profile == "tutorial":
        hops.append(Hop("Falco -> falco-exporter (gRPC output stream)", FALCO_TO_EXPORTER))
        hops.append(Hop("Prometheus scrapes falco-exporter", deployed.scrape_interval("falco-exporter")))
    else:
        hops.append(Hop("Prometheus scrapes Falco's metrics", deployed.scrape_interval("falco")))
    return [
        *hops,
        Hop("Grafana evaluates the rule", float(group.plain("intervalSeconds"))),
        Hop("pending period (for)", seconds(rule["for"])),
        Hop("group wait", group_wait),
        Hop("contact point answers", RECEIVER_ANSWER),
    ]


@pytest.fixture(scope="module")
def budgets() -> dict[str, list[Hop]]:
    current = deploy({"alertWebhookUrl": Secret(WEBHOOK)}, ("falco", "falcosidekick"))
    tutorial = deploy({"profile": "tutorial", "alertWebhookUrl": Secret(WEBHOOK)}, ())
    email_only = deploy({"alerting": {"email": ["secops@example.com"]}}, ("falco",))
    nothing = deploy({}, ("falco",))
    return {
        "current, webhook": sidekick_path(current),
        "current, e-mail only": grafana_path(email_only, "current", contact_point=True),
        "current, no contact point": grafana_path(nothing, "current", contact_point=False),
        "tutorial, webhook or e-mail": grafana_path(tutorial, "tutorial", contact_point=True),
        "tutorial, no contact point": grafana_path(tutorial, "tutorial", contact_point=False),
        # The same Grafana path as e-mail only, for the `current` view: the webhook gets both.
        "current, webhook (Grafana's second path)": grafana_path(current, "current", contact_point=True),
    }


def total(hops: list[Hop]) -> float:
    return sum(hop.seconds for hop in hops)


def test_a_critical_event_reaches_the_webhook_within_ten_seconds_in_current(budgets):
    hops = budgets["current, webhook"]
    assert total(hops) <= LIMIT, "\n".join(f"{hop.seconds:7.3f} s  {hop.what}" for hop in hops)


def test_the_webhook_output_takes_critical_and_above_only_through_a_secret():
    deployed = deploy({"alertWebhookUrl": Secret(WEBHOOK)}, ("falcosidekick",))
    env = deployed.environment("falcosidekick")
    assert env["WEBHOOK_ADDRESS"] == WEBHOOK
    assert env["WEBHOOK_MINIMUMPRIORITY"] == "critical"
    sidekick = deployed.run.charts()["falcosidekick"]
    assert WEBHOOK not in str(sidekick.plain("values")), "the URL must not be a chart value"
    assert unknown_keys(FALCOSIDEKICK, sidekick.plain("values")) == []
    (secret,) = [o for o in deployed.run.manifests() if o["kind"] == "Secret" and "WEBHOOK_ADDRESS" in o["stringData"]]
    (group,) = [
        g
        for g in deployed.run.of_type("kubernetes:yaml/v2:ConfigGroup")
        if secret["metadata"]["name"] in str(g.plain("objs"))
    ]
    assert group.secret("objs"), "the Secret's payload is a Pulumi secret"
    # A new URL changes the pod template, so Falcosidekick restarts and reads it.
    other = deploy({"alertWebhookUrl": Secret(WEBHOOK + "-rotated")}, ("falcosidekick",))
    template = lambda d: d.one("Deployment", "falcosidekick")["spec"]["template"]["metadata"]  # noqa: E731
    assert template(deployed) != template(other)


def test_without_a_webhook_falcosidekick_posts_nowhere_new():
    deployed = deploy({}, ("falcosidekick",))
    env = deployed.environment("falcosidekick")
    assert not env.get("WEBHOOK_ADDRESS")


def test_the_budget_is_unbounded_when_a_hop_can_queue():
    """The recomputation is not a constant: one slow delivery ahead of an event would make
    it wait, so a concurrency limit on the webhook output breaks the budget."""
    deployed = deploy({"alertWebhookUrl": Secret(WEBHOOK)}, ("falco", "falcosidekick"))
    assert total(sidekick_path(deployed)) < math.inf
    rendered = deployed.one("Deployment", "falcosidekick")
    limited = copy.deepcopy(rendered)  # the render is shared by every test: change a copy
    (container,) = limited["spec"]["template"]["spec"]["containers"]
    container["env"] = [e for e in container["env"] if e["name"] != "WEBHOOK_MAXCONCURRENTREQUESTS"]
    objects = [o for o in deployed.objects if o.body is not rendered] + [Obj("falcosidekick", limited)]
    assert total(sidekick_path(Deployed(deployed.run, objects))) == math.inf


def test_the_docs_state_every_hop_and_total(budgets):
    """Every figure of the section, each where it is stated: the totals, each hop of both
    tables, and the settings and fixed figures the hops come from."""
    doc = "docs/alerting.md"
    start, end = section_span(doc, "## Latency budget")
    body = text(doc)[start:end]
    checked: list[tuple[int, int]] = []

    def stated(pattern: str, *expected: float, within: tuple[int, int] = (0, len(body))) -> None:
        matches = list(re.compile(pattern, re.M).finditer(body, *within))
        assert matches, f"{doc}, Latency budget: nothing states /{pattern}/"
        for match in matches:
            assert [float(g) for g in match.groups()] == list(expected), f"{doc}: {match[0]!r} should say {expected}"
            checked.extend((start + a, start + b) for a, b in group_spans(match))

    def seconds_of(hops: list[Hop]) -> list[float]:
        return [hop.seconds for hop in hops]

    def sum_of(budget: str) -> float:
        return round(total(budgets[budget]), 2)

    current = deploy({"alertWebhookUrl": Secret(WEBHOOK)}, ("falco", "falcosidekick"))
    tutorial = deploy({"profile": "tutorial", "alertWebhookUrl": Secret(WEBHOOK)}, ())
    critical_group = current.rule_group("Falco critical events")
    (critical,) = critical_group.plain("rules")
    sidekick = body.index("| hop | bound | seconds |")
    grafana = body.index("Grafana's path (")
    stated(r"fails above (\d+) s for `current` with a webhook", LIMIT)
    stated(r"sleeps at most (\d+) ms", KERNEL_TO_FALCO * 1000)
    stated(r"again after (\d+) s without any", FALCO_TO_EXPORTER)
    (release,) = re.finditer(r"Falcosidekick (\d+\.\d+\.\d+) \(its HTTP client", body)
    assert release[1] == FALCOSIDEKICK.tag("docker.io/falcosecurity/falcosidekick"), release[0]
    checked.append((start + release.start(1), start + release.end(1)))
    stated(r"the budget allows it (\d+) s", RECEIVER_ANSWER)
    stated(r"webhook output, \*\*(\d+\.\d+) s\*\*", sum_of("current, webhook"))
    stated(r"on its own path, as below: \*\*(\d+\.\d+) s\*\*", sum_of("current, webhook (Grafana's second path)"))
    stated(r"its (\d+\.\d+) s run to the hand-off", sum_of("current, e-mail only"))
    stated(
        r"default policy waits (\d+) s more: \*\*(\d+\.\d+) s\*\* \(`current`\) and \*\*(\d+\.\d+) s\*\*",
        DEFAULT_POLICY_GROUP_WAIT,
        sum_of("current, no contact point"),
        sum_of("tutorial, no contact point"),
    )
    # The webhook path's table: one row per hop, in order, and the settings its bounds name.
    rows = list(re.finditer(rf"^\| [^|\n]+ \| [^|\n]+ \| ({SECONDS}) \|$", body[sidekick:grafana], re.M))
    assert [float(r[1]) for r in rows] == seconds_of(budgets["current, webhook"])
    checked.extend((start + sidekick + r.start(1), start + sidekick + r.end(1)) for r in rows)
    stated(r"`output_timeout: (\d+)`", current.falco_yaml()["output_timeout"], within=(sidekick, grafana))
    queue = float(current.environment("falcosidekick")["WEBHOOK_MAXCONCURRENTREQUESTS"])
    stated(r"`WEBHOOK_MAXCONCURRENTREQUESTS=(\d+)`", queue)
    # Grafana's path: a column per profile, a row per hop (`current` has no exporter hop).
    rows = list(re.finditer(rf"^\| [^|\n]+ \| ({NO_HOP}|{SECONDS}) \| ({SECONDS}) \|$", body[grafana:], re.M))
    assert [float(r[1]) for r in rows if r[1] != NO_HOP] == seconds_of(budgets["current, e-mail only"])
    assert [float(r[2]) for r in rows] == seconds_of(budgets["tutorial, webhook or e-mail"])
    for row in rows:
        figures = [column for column in (1, 2) if row[column] != NO_HOP]
        checked.extend((start + grafana + row.start(c), start + grafana + row.end(c)) for c in figures)
    stated(
        r"\*\*total\*\* \| \*\*(\d+\.\d+) s\*\* \| \*\*(\d+\.\d+) s\*\*",
        sum_of("current, e-mail only"),
        sum_of("tutorial, webhook or e-mail"),
    )
    stated(
        r"Falco's ServiceMonitor `(\d+)s`; the exporter's `(\d+)s`",
        current.scrape_interval("falco"),
        tutorial.scrape_interval("falco-exporter"),
    )
    stated(r"Grafana evaluates the rule \(every (\d+) s\)", float(critical_group.plain("intervalSeconds")))
    stated(r"pending period \(`for: (\d+)s`\)", seconds(critical["for"]))
    stated(
        r"group wait \(`(\d+)s` for a configured contact point\)",
        seconds(critical["notificationSettings"]["groupWait"]),
    )
    assert unchecked(doc, checked, (start, end)) == []
