"""Where the logs go and how long they stay, as the rendered Loki and collectors have it."""

import base64
import re

import pytest
import yaml
from queries import logql_errors
from rendering import render_stack

# From the committed stack files: dev (and dev with the tutorial profile) keep a week on 5Gi,
# prod 30 days on 20Gi volumes.
KEPT = {"dev": ("5Gi", "168h"), "dev-tutorial": ("5Gi", "168h"), "prod": ("20Gi", "30d")}
DOCKER_LINE = (
    '{"log":"2026-11-27 17:00:00 I | mvcc: finished scheduled compaction\\n",'
    '"stream":"stderr","time":"2026-11-27T17:00:00.1Z"}'
)
CRI_LINE = '2026-11-27T17:00:00.100000000Z stderr F {"level":"info","msg":"finished scheduled compaction"}'


def loki_config(stack) -> dict:
    if stack.profile == "tutorial":
        return yaml.safe_load(base64.b64decode(stack.get("Secret", "loki", "logging").body["data"]["loki.yaml"]))
    return yaml.safe_load(stack.get("ConfigMap", "loki", "logging").body["data"]["config.yaml"])


def test_loki_keeps_logs_on_volumes_of_the_configured_size(stack):
    size, _ = KEPT[stack.name]
    statefulsets = [o for o in stack.from_release("loki") if o.kind == "StatefulSet" and not o.name.endswith("-cache")]
    claims = {
        o.name: [t["spec"]["resources"]["requests"]["storage"] for t in o.body["spec"].get("volumeClaimTemplates", [])]
        for o in statefulsets
    }
    expected = ["loki-backend", "loki-write"] if stack.name == "prod" else ["loki"]
    assert {name: sizes for name, sizes in claims.items() if sizes} == {name: [size] for name in expected}


def test_loki_deletes_logs_after_the_configured_retention(stack):
    _, retention = KEPT[stack.name]
    config = loki_config(stack)
    assert config["compactor"]["retention_enabled"] is True
    assert config["limits_config"]["retention_period"] == retention


def promtail_stages(stack):
    promtail = stack.get("Secret", "loki-promtail", "falco").body["stringData"]["promtail.yaml"]
    (pods,) = [job for job in yaml.safe_load(promtail)["scrape_configs"] if job["job_name"] == "kubernetes-pods"]
    return [stage["match"] for stage in pods["pipeline_stages"]]


def parsers_for(stages, line):
    """The parsing stages a line reaches: those whose selector's line filter matches it."""
    chosen = []
    for match in stages:
        (pattern,) = re.findall(r"\|~ `([^`]*)`", match["selector"])
        if re.search(pattern, line):
            chosen += [next(iter(stage)) for stage in match["stages"]]
    return chosen


@pytest.mark.parametrize(("line", "parser"), [(DOCKER_LINE, "docker"), (CRI_LINE, "cri")], ids=["docker", "cri"])
def test_promtail_parses_each_runtimes_log_format(line, parser):
    """minikube's docker runtime writes Docker JSON; containerd and CRI-O write CRI lines."""
    assert parsers_for(promtail_stages(render_stack("dev-tutorial")), line) == [parser]


@pytest.mark.usefixtures("needs_node_logql")
def test_promtails_match_selectors_are_valid_logql():
    selectors = [match["selector"] for match in promtail_stages(render_stack("dev-tutorial"))]
    assert logql_errors(selectors) == {s: [] for s in selectors}
