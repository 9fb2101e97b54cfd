"""docs/operations.md's stack outputs table names every output the program exports, in every
committed stack and with an existing Prometheus and Grafana, and no output it does not."""

from __future__ import annotations

import re

from documents import section, table_rows
from harness import Secret, environment_config, run_program

BUCKET_CREDENTIALS = {"lokiS3AccessKeyId": Secret("a"), "lokiS3SecretAccessKey": Secret("b")}
EXISTING = {
    "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.observability:9090"},
    "grafana": {"url": "https://grafana.example.internal"},
    "grafanaToken": Secret("token"),
}


def documented() -> set[str]:
    rows = table_rows(section("docs/operations.md", "## Stack outputs"))
    assert rows
    return {name for cell, _ in rows for name in re.findall(r"`([^`]+)`", cell)}


def test_the_stack_outputs_table_names_every_output():
    runs = [
        run_program(environment_config("dev")),
        run_program({**environment_config("dev"), "profile": "tutorial"}),
        run_program(environment_config("prod") | BUCKET_CREDENTIALS, stack="prod"),
        run_program(EXISTING),
    ]
    exported = {key for run in runs for key in run.exports}
    assert exported
    assert documented() == exported
