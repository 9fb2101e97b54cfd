"""The fleet as the hub's Grafana sees it: which clusters there are, and how each is told apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The label that names a series' cluster on the hub.
CLUSTER = "cluster"
# A cluster's name is a Prometheus label value and a Loki tenant id: Loki's tenant characters
# less those PromQL, LogQL and Grafana's regex variables would need escaped, and never `|`,
# which separates the tenants of a multi-tenant query.
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,149}")


@dataclass(frozen=True)
class FleetView:
    """The hub's Grafana shows the metrics and logs of every cluster of the fleet: the hub's
    own and each spoke's. Metrics: every series on the hub carries the label ``cluster``,
    which the hub enforces (a spoke's remote-written series get the authenticated spoke's
    name, the hub's own scrapes the hub's), so queries group and match by ``cluster`` and
    never add up two clusters' nodes of the same name. Logs: each cluster is its own Loki
    tenant (tenant id = cluster name); Grafana queries all of them at once
    (``X-Scope-OrgID: hub|a|b``) and a query picks clusters with ``__tenant_id__``."""

    hub: str
    spokes: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in self.clusters:
            if not CLUSTER_NAME.fullmatch(name):
                raise ValueError(
                    f"fleet cluster name {name!r}: must be 1 to 150 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit"
                )
        duplicates = sorted({name for name in self.clusters if self.clusters.count(name) > 1})
        if duplicates:
            raise ValueError(f"fleet cluster names must be unique: {', '.join(duplicates)} named twice")

    @property
    def clusters(self) -> tuple[str, ...]:
        """Every cluster whose series and logs the hub admits: the hub first, then the spokes."""
        return (self.hub, *self.spokes)

    @property
    def loki_tenants(self) -> str:
        """The ``X-Scope-OrgID`` of a query over every cluster's logs."""
        return "|".join(self.clusters)
