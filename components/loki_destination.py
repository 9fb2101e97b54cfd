"""Where a cluster's logs and Falco's events go, and how each push says who sent it.

A standalone stack pushes to its own Loki. A hub's own collectors push to its Loki under the
hub's tenant. A spoke pushes to its hub through the hub's gateway, over TLS (the hub's CA) and
with the credentials the hub issued to it, which alone decide the tenant its lines land in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pulumi

# In the Secret a spoke keeps in each namespace that sends to the hub (components/fleet_spoke.py).
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
CA_KEY = "ca.crt"
# Where the sending containers mount that Secret.
MOUNT = "/etc/fleet-hub"
CA_FILE = f"{MOUNT}/{CA_KEY}"


def rendered(value: pulumi.Input[str], render: Callable[[str], str]) -> pulumi.Input[str]:
    """``render(value)``, for a value known now or only later (a spoke's hub URL, read from the
    hub's stack): a plain string stays a plain string."""
    if isinstance(value, str):
        return render(value)
    return pulumi.Output.from_input(cast(pulumi.Output[str], value)).apply(render)


@dataclass(frozen=True)
class HubCredentials:
    """A spoke's identity at its hub: a user named after the spoke, its password and the hub's
    CA, in a Secret of that name in every namespace that sends."""

    username: str
    secret: str
    ready: pulumi.Resource  # the Secrets: mount only once they exist


@dataclass(frozen=True)
class LokiDestination:
    push_url: pulumi.Input[str]
    cluster: str | None = None  # fleet: the `cluster` label on every line
    tenant: str | None = None  # a hub's own pushes: its tenant (X-Scope-OrgID)
    credentials: HubCredentials | None = None  # a spoke: through the hub's gateway

    @property
    def remote(self) -> bool:
        return self.credentials is not None
