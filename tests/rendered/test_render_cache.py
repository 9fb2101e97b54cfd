"""A stack is rendered once per test session and read by every test after: no test can
change it for the others (a change to a shared render made one test's result depend on
which tests ran before it, tests/rules/test_latency_budget.py with six workers)."""

import copy
import json

import pytest
import yaml
from rendering import render_stack


def test_a_cached_render_refuses_changes_and_copies_to_plain_objects():
    stack = render_stack("dev")
    deployment = stack.get("Deployment", "falcosidekick")
    (container,) = deployment.body["spec"]["template"]["spec"]["containers"]
    changes = [
        lambda: container.__setitem__("env", []),
        lambda: container["env"].append({"name": "X", "value": "1"}),
        lambda: deployment.body["metadata"].update(name="other"),
        lambda: deployment.body["metadata"].pop("name"),
        lambda: stack.objects.append(deployment),
        lambda: stack.releases["falco"].values.setdefault("driver", {}),
    ]
    for change in changes:
        with pytest.raises(TypeError, match="shared by every test"):
            change()
    assert deployment.name == "falcosidekick" and container["env"]
    mine = copy.deepcopy(deployment.body)
    assert type(mine) is dict and type(mine["spec"]["template"]["spec"]["containers"]) is list
    mine["metadata"]["name"] = "changed"
    assert deployment.name == "falcosidekick"
    # Read as any dict: JSON, YAML, equality.
    assert json.loads(json.dumps(deployment.body)) == deployment.body
    assert yaml.safe_load(yaml.safe_dump(deployment.body)) == deployment.body
