"""docs/alerting.md states each deployed rule's pending period and severity, and the
thresholds the drops alert uses, as the program registers them."""

from __future__ import annotations

import json
import re

import pytest
from harness import ROOT, Secret, run_program

from components.falco_metrics import DROPPED_SHARE, DROPS_WINDOW

DOC = ROOT / "docs" / "alerting.md"


def table_rows(text: str) -> dict[str, list[str]]:
    """The rows of the rule table, by rule title (without its "(`current`)" qualifier)."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("rule", "---"):
            rows[re.sub(r" \(`[^)]*\)$", "", cells[0])] = cells
    return rows


@pytest.mark.parametrize("profile", ["current", "tutorial"])
def test_the_rule_table_states_each_rules_pending_period_and_severity(profile):
    run = run_program({"profile": profile, "alertWebhookUrl": Secret("https://hooks.example.com/x")})
    rows = table_rows(DOC.read_text())
    rules = [rule for group in run.of_type("grafana:alerting/ruleGroup:RuleGroup") for rule in group.plain("rules")]
    health = [rule for rule in rules if rule["name"] != "Falco event of priority Critical or above"]
    assert health
    for rule in health:
        assert rule["name"] in rows, f"docs/alerting.md has no row for {rule['name']!r}"
        _, _, pending, severity = rows[rule["name"]]
        assert (pending, severity) == (rule["for"], rule["labels"]["severity"]), rule["name"]


def test_the_drop_threshold_is_the_deployed_one():
    run = run_program({})
    (rule,) = [
        rule
        for group in run.of_type("grafana:alerting/ruleGroup:RuleGroup")
        for rule in group.plain("rules")
        if rule["name"] == "Falco drops system calls"
    ]
    (condition,) = json.loads({d["refId"]: d for d in rule["datas"]}["C"]["model"])["conditions"]
    assert condition["evaluator"]["params"] == [DROPPED_SHARE]
    minutes = int(DROPS_WINDOW.removesuffix("m"))
    row = table_rows(DOC.read_text())["Falco drops system calls"][1]
    assert f"{DROPPED_SHARE:.0%}".replace("%", " %") in row and f"{minutes} minutes" in row, row
