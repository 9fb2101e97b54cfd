"""Every reference between the objects a stack applies resolves: what a pod mounts, reads or
runs as, what a Service, ServiceMonitor, NetworkPolicy or budget selects, what a binding
grants. Nothing the stack relies on exists only as a Helm hook, which Chart v4 never runs."""

import copy

from references import dangling
from rendering import Obj


def test_every_reference_resolves(stack):
    assert dangling(stack) == []


def test_a_mount_of_a_missing_secret_is_reported(stack):
    broken = copy.copy(stack)
    daemonset = next(o for o in stack.objects if o.kind == "DaemonSet" and o.source == "falco")
    body = copy.deepcopy(daemonset.body)
    body["spec"]["template"]["spec"]["volumes"].append({"name": "x", "secret": {"secretName": "nobody-creates-this"}})
    broken.objects = [o for o in stack.objects if o is not daemonset] + [Obj("falco", body)]
    assert any("Secret falco/nobody-creates-this is not created by the stack" in p for p in dangling(broken))


def test_a_service_selecting_no_pod_is_reported(stack):
    broken = copy.copy(stack)
    service = next(o for o in stack.objects if o.kind == "Service" and o.source == "falco")
    body = copy.deepcopy(service.body)
    body["spec"]["selector"] = {"app.kubernetes.io/name": "falko"}
    broken.objects = [o for o in stack.objects if o is not service] + [Obj("falco", body)]
    assert any("selects no pod" in p for p in dangling(broken))


def test_objects_rendered_only_as_hooks_are_named_as_such(stack):
    for hook in stack.hooks:
        assert hook.key not in {o.key for o in stack.objects}, f"{hook} is both a hook and a plain object"


def test_a_first_deploy_creates_what_later_ones_do(stack):
    """Chart v4 renders with the cluster's API versions: on a fresh cluster the CRDs of
    kube-prometheus-stack do not exist yet. A template gated on them would appear only on the
    second `pulumi up`, a surprise diff in every first preview."""
    for release, first in stack.first_deploy.items():
        later = {o.key for o in stack.from_release(release) if o.kind != "CustomResourceDefinition"}
        first = {key for key in first if key[0] != "CustomResourceDefinition"}
        assert later == first, f"{release}: {sorted(later ^ first)}"
