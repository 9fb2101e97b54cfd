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
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from harness import ProgramRun
from tools import PROMTOOL

RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup"
OPERATORS = {"gt": ">", "lt": "<"}


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


FAILED_TEST = re.compile(r"^\s*name: \[(\d+)\]", re.MULTILINE)


def failures_by_test(output: str) -> dict[int, str]:
    """promtool's report split per failed test group: every failure of each (each starts with
    the group's name, ``[<number>] ...``)."""
    starts = list(FAILED_TEST.finditer(output))
    reported: dict[int, str] = defaultdict(str)
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else None
        reported[int(match.group(1))] += output[match.start() : end]
    return dict(reported)


def run_scenarios(
    scenarios: Sequence[Any],
    inputs: Sequence[dict[str, str]],
    groups: Sequence[dict[str, Any]],
    to_test: Callable[[Any, dict[str, Any], str, dict[str, str]], dict[str, Any] | None],
    directory: Path,
) -> dict[str, str]:
    """Every scenario (with its input series) against every rule group, one ``promtool test
    rules`` per group: what failed, per scenario id. ``to_test`` writes one scenario's test
    of one group (None where the scenario checks nothing of it); a scenario that checks
    nothing at all fails."""
    binary = PROMTOOL.find().path
    assert binary is not None, PROMTOOL.missing()
    failures: dict[str, str] = defaultdict(str)
    ran: set[str] = set()
    for index, group in enumerate(groups):
        tests = []
        for number, (scenario, series) in enumerate(zip(scenarios, inputs, strict=True)):
            test = to_test(scenario, group, f"[{number}] {scenario.what}", series)
            if test is not None:
                tests.append(test)
                ran.add(scenario.id)
        if not tests:
            continue
        where = directory / str(index)
        where.mkdir()
        result = run_promtool(binary, where, group, tests)
        if result.passed:
            continue
        reported = failures_by_test(result.output)
        for number, scenario in enumerate(scenarios):
            if number in reported or not reported:
                failures[scenario.id] += f"{group['name']}:\n{reported.get(number, result.output)}\n"
    for scenario in scenarios:
        if scenario.id not in ran:
            failures[scenario.id] += "the scenario checks nothing"
    return dict(failures)
