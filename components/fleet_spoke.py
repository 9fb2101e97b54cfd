"""HubLink and HubConnection: what a spoke reads from its hub's stack, and keeps where its senders run."""

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
# On a spoke's namespaces: the hub it reports to (set once the hub admits it).
FLEET_HUB_ANNOTATION = "runtime-defense/fleet-hub"


@dataclass(frozen=True)
class HubLinkArgs:
    hub_stack: str  # fleet.hubStack
    cluster: str  # fleet.clusterName: the user the hub admits this spoke as
    falco_namespace: str  # must be the hub's: its alerts watch that namespace on every cluster


class HubLink(pulumi.ComponentResource):
    """Reads the hub's stack (``pulumi.StackReference``): the endpoints to push to, the CA
    that signed the hub's certificate, and this spoke's own password, which the hub issued
    when ``fleet.spokes`` admitted it. Nothing is copied by hand: a new hub certificate or a
    rotated password reaches the spoke on its next `pulumi up`. ``admission`` resolves only
    once the hub is known to admit this spoke, as its Falco is watched: whatever waits for it
    (the spoke's namespaces, so everything) is never deployed otherwise.
    """

    def __init__(self, name: str, args: HubLinkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("runtime-defense:fleet:HubLink", name, None, opts)
        hub_stack, cluster, falco_namespace = args.hub_stack, args.cluster, args.falco_namespace
        hub = pulumi.StackReference(f"{name}-hub", stack_name=hub_stack, opts=pulumi.ResourceOptions(parent=self))
        # get_output, not require_output: a stack without the output (a standalone one) is told
        # apart by admitted(), where require_output would fail with a bare KeyError.
        fleet: pulumi.Output[Any] = hub.get_output(FLEET_OUTPUT).apply(
            lambda value: admitted(value, hub_stack, cluster, falco_namespace)
        )
        passwords = hub.get_output(CREDENTIALS_OUTPUT)
        self.cluster = cluster
        self.admission: pulumi.Output[str] = fleet.apply(lambda value: value["clusterName"])  # the hub's name
        self.password: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(passwords, fleet).apply(lambda values: values[0][cluster])
        )
        self.logs_url: pulumi.Output[str] = fleet.apply(lambda value: value["endpoints"]["logs"])
        self.metrics_url: pulumi.Output[str] = fleet.apply(lambda value: value["endpoints"]["metrics"])
        self.ca_cert_pem: pulumi.Output[str] = fleet.apply(lambda value: value["caCertPem"])
        self.register_outputs({"hubCluster": self.admission, "logsUrl": self.logs_url, "metricsUrl": self.metrics_url})


@dataclass(frozen=True)
class HubConnectionArgs:
    link: HubLink
    senders: Sequence[Namespace]  # where the collector, Falcosidekick and the agent run


class HubConnection(pulumi.ComponentResource):
    """Keeps what a spoke's senders need of its hub (its user, password and the hub's CA) as
    a Secret in each of their namespaces: the collector's, Falcosidekick's, the agent's."""

    def __init__(self, name: str, args: HubConnectionArgs, opts: pulumi.ResourceOptions | None = None):
        link, senders = args.link, args.senders
        super().__init__("runtime-defense:fleet:HubConnection", name, None, opts)
        data: dict[str, pulumi.Input[str]] = {
            USERNAME_KEY: link.cluster,
            PASSWORD_KEY: link.password,
            CA_KEY: link.ca_cert_pem,
        }
        secrets = manifests.apply(
            f"{name}-credentials",
            [manifests.secret(SECRET, namespace.ref, data) for namespace in senders],
            pulumi.ResourceOptions(parent=self),
        )
        self.credentials = HubCredentials(username=link.cluster, secret=SECRET, ready=secrets)
        self.register_outputs({})


def admitted(fleet: Mapping[str, Any] | None, hub_stack: str, cluster: str, falco_namespace: str) -> Mapping[str, Any]:
    """The hub's ``fleet`` output, once it is known to admit this spoke as its Falco watches it."""
    if fleet is None:
        raise pulumi.RunError(
            f"runtime-defense:fleet.hubStack = {hub_stack!r} is no hub: it exports no `{FLEET_OUTPUT}` output "
            "(a standalone stack, or a stack never deployed); name the hub's stack"
        )
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
