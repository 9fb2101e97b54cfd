"""HubConnection: what a spoke reads from its hub's stack, and keeps where its senders run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components import manifests
from components.loki_destination import CA_KEY, PASSWORD_KEY, USERNAME_KEY, HubCredentials
from components.namespaces import Namespace

# In each namespace that sends to the hub: the spoke's user and password, and the hub's CA.
SECRET = "fleet-hub"
# The hub's outputs a spoke reads (__main__.py exports them on a hub).
FLEET_OUTPUT = "fleet"
CREDENTIALS_OUTPUT = "fleetSpokeCredentials"


@dataclass(frozen=True)
class HubConnectionArgs:
    hub_stack: str  # fleet.hubStack
    cluster: str  # fleet.clusterName: the user the hub admits this spoke as
    falco_namespace: str  # must be the hub's: its alerts watch that namespace on every cluster
    senders: Sequence[Namespace]  # where the collector, Falcosidekick and the metrics agent run


class HubConnection(pulumi.ComponentResource):
    """Reads the hub's stack (``pulumi.StackReference``): the endpoints to push to, the CA
    that signed the hub's certificate, and this spoke's own password, which the hub issued
    when ``fleet.spokes`` admitted it. Nothing is copied by hand: a new hub certificate or a
    rotated password reaches the spoke on its next `pulumi up`. The password and the CA reach
    the senders only as a Secret in each of their namespaces.
    """

    def __init__(self, name: str, args: HubConnectionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:fleet:HubConnection", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        hub = pulumi.StackReference(f"{name}-hub", stack_name=args.hub_stack, opts=child)
        fleet: pulumi.Output[Any] = hub.require_output(FLEET_OUTPUT).apply(
            lambda value: admitted(value, args.hub_stack, args.cluster, args.falco_namespace)
        )
        passwords = hub.require_output(CREDENTIALS_OUTPUT)
        password: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(passwords, fleet).apply(lambda values: values[0][args.cluster])
        )
        self.logs_url: pulumi.Output[str] = fleet.apply(lambda value: value["endpoints"]["logs"])
        self.metrics_url: pulumi.Output[str] = fleet.apply(lambda value: value["endpoints"]["metrics"])
        self.hub_cluster: pulumi.Output[str] = fleet.apply(lambda value: value["clusterName"])
        ca: pulumi.Output[str] = fleet.apply(lambda value: value["caCertPem"])
        secrets = manifests.apply(
            f"{name}-credentials",
            [
                manifests.secret(
                    SECRET, namespace.ref, {USERNAME_KEY: args.cluster, PASSWORD_KEY: password, CA_KEY: ca}
                )
                for namespace in args.senders
            ],
            child,
        )
        self.credentials = HubCredentials(username=args.cluster, secret=SECRET, ready=secrets)
        self.register_outputs({"logsUrl": self.logs_url, "metricsUrl": self.metrics_url})


def admitted(fleet: Mapping[str, Any], hub_stack: str, cluster: str, falco_namespace: str) -> Mapping[str, Any]:
    """The hub's ``fleet`` output, once it is known to admit this spoke as its Falco watches it."""
    if fleet.get("role") != "hub":
        raise pulumi.RunError(f"runtime-defense:fleet.hubStack = {hub_stack!r} is no hub (its fleet.role is not hub)")
    if cluster not in fleet.get("spokes", []):
        raise pulumi.RunError(
            f"the hub {hub_stack} does not admit a spoke named {cluster!r} (runtime-defense:fleet.clusterName): "
            f"add it to the hub's fleet.spokes and `pulumi up` the hub first; it admits "
            f"{', '.join(fleet.get('spokes', [])) or 'no spoke yet'}"
        )
    if fleet.get("falcoNamespace") != falco_namespace:
        raise pulumi.RunError(
            f"runtime-defense:namespaces.falco = {falco_namespace!r}, but the hub {hub_stack} watches Falco in "
            f"namespace {fleet.get('falcoNamespace')!r} on every cluster: use the same "
            f"(`pulumi config set --path namespaces.falco {fleet.get('falcoNamespace')}`)"
        )
    return fleet
