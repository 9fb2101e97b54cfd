"""The program's Grafana alert rules as Prometheus rule files, and promtool to run them.

Each Grafana rule the program registers is query A (PromQL, instant), B = last(A) per
series, C = B compared with a threshold, held for the rule's "for". The Prometheus rule
``alert: <name>, expr: (<A>) <op> <threshold>, for: <for>`` fires for the same series at
the same moments, since Grafana treats an empty result as healthy (no_data_state OK, which
``as_prometheus_groups`` checks). The rule files are built from the registered resources,
so ``promtool test rules`` tests the queries that are deployed, not a copy of them.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from harness import ProgramRun
from tools import PROMTOOL

RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
OPERATORS = {"gt": ">", "lt": "<"}


def promtool() -> tuple[str | None, str]:
    """(path of promtool, or None; why not): tests/support/tools.py's finder."""
    return PROMTOOL.find().path, PROMTOOL.missing() or ""


def alert_name(title: str) -> str:
    """A Prometheus alert name (a metric name) for a Grafana rule title."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", title))


def as_prometheus_groups(run: ProgramRun) -> list[dict[str, Any]]:
    """Every Grafana rule group of ``run`` as a Prometheus rule group with the same query,
    condition, pending period, labels and evaluation interval."""
    groups = []
    for group in run.of_type(RULE_GROUP):
        rules = []
        for rule in group.plain("rules"):
            datas = {data["refId"]: data for data in rule["datas"]}
            query = json.loads(datas["A"]["model"])
            reduce = json.loads(datas["B"]["model"])
            threshold = json.loads(datas["C"]["model"])
            assert rule["condition"] == "C" and rule["noDataState"] == "OK", rule["name"]
            assert query["instant"] is True, rule["name"]
            assert (reduce["type"], reduce["expression"], reduce["reducer"]) == ("reduce", "A", "last"), rule["name"]
            assert threshold["type"] == "threshold" and threshold["expression"] == "B", rule["name"]
            ((condition,),) = [threshold["conditions"]]
            evaluator = condition["evaluator"]
            (value,) = evaluator["params"]
            rules.append(
                {
                    "alert": alert_name(rule["name"]),
                    "expr": f"({query['expr']}) {OPERATORS[evaluator['type']]} {value:g}",
                    "for": rule["for"],
                    "labels": dict(rule.get("labels") or {}),
                }
            )
        interval = f"{int(group.plain('intervalSeconds'))}s"
        groups.append({"name": group.plain("name"), "interval": interval, "rules": rules})
    return groups


@dataclass(frozen=True)
class PromtoolResult:
    passed: bool
    output: str


def run_promtool(binary: str, directory: Path, group: dict[str, Any], tests: list[dict[str, Any]]) -> PromtoolResult:
    """``promtool check rules`` then ``promtool test rules`` on one rule ``group`` with
    ``tests``, evaluated at the group's interval (promtool evaluates every group of a test
    file at the file's ``evaluation_interval``, whatever the group's own interval)."""
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [group]}, sort_keys=False))
    check = subprocess.run([binary, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        return PromtoolResult(False, check.stdout + check.stderr)
    test_file = directory / "tests.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rules.name], "evaluation_interval": group["interval"], "tests": tests}, sort_keys=False
        )
    )
    result = subprocess.run(
        [binary, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120, cwd=directory
    )
    return PromtoolResult(result.returncode == 0, result.stdout + result.stderr)
