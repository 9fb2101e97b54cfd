"""The sensor-health alerts read only the stack's own Falco: another team's Falco, exporter
or Falcosidekick in another namespace of the cluster must neither raise them nor hide a
broken one of ours. Every series they select, except the node list (kube_node_info, which
has no namespace), is matched on the namespace the stack deploys Falco into."""

import json

import promql_parser
import pytest
from harness import Secret, run_program
from queries import promql_selectors

HEALTH_GROUP = "Falco sensor health"
NODE_LEVEL = {"kube_node_info"}
NAMESPACE = "runtime-security"  # not the default, so that a hard-coded "falco" shows


def namespace_matchers(selector) -> tuple[str, ...]:
    """The selector's matchers on the namespace label, as PromQL writes them."""
    matchers = selector.matchers.matchers if selector.matchers else []
    operators = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
    return tuple(f"{operators[str(m.op)]}{m.value}" for m in matchers if m.name == "namespace")


@pytest.mark.parametrize(
    "config",
    [{"alertWebhookUrl": Secret("https://hooks.example.com/x")}, {"profile": "tutorial"}],
    ids=["current", "tutorial"],
)
def test_the_health_alerts_select_only_the_stacks_falco_namespace(config):
    run = run_program({**config, "namespaces": {"falco": NAMESPACE}})
    (group,) = [g for g in run.of_type("grafana:alerting/ruleGroup:RuleGroup") if g.plain("name") == HEALTH_GROUP]
    read = {}
    for rule in group.plain("rules"):
        for data in rule["datas"]:
            model = json.loads(data["model"])
            if model.get("expr"):
                for selector in promql_selectors(promql_parser.parse(model["expr"])):
                    read.setdefault(rule["name"], set()).add((selector.name, namespace_matchers(selector)))
    assert len(read) >= 4, read  # the rules that read series: coverage, targets, system calls...
    unscoped = {
        title: sorted(
            f"{name} {matchers}"
            for name, matchers in series
            if name not in NODE_LEVEL and matchers != (f"={NAMESPACE}",)
        )
        for title, series in read.items()
    }
    assert {title: s for title, s in unscoped.items() if s} == {}
