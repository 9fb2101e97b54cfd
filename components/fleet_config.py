"""Configuration of the fleet: ``fleet.*`` (a standalone stack, a hub, or a spoke).

A hub receives the logs, Falco's events and the metrics of its spokes and shows them in one
Grafana; a spoke runs the sensors and ships everything to its hub, with credentials the hub
issued to it alone. ``standalone`` (the default) is the single-cluster stack, unchanged.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from components.config_reader import RFC1123_LABEL, RFC1123_SUBDOMAIN, ConfigReader
from components.logging_config import LoggingConfig
from components.monitoring_config import MonitoringConfig
from components.profile import Profile

KEYS = ("fleet",)
FleetRole = Literal["standalone", "hub", "spoke"]
ROLES: tuple[FleetRole, ...] = ("standalone", "hub", "spoke")
# A stack reference as the CLI takes it: org/project/stack, or project/stack on a file backend.
_STACK_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
STACK_REFERENCE = re.compile(rf"^{_STACK_NAME}/{_STACK_NAME}(/{_STACK_NAME})?$")
# The hub's sizing model takes the fleet's size (components/fleet_sizing.py).
DEFAULT_NODES_PER_CLUSTER = 3
# Each spoke's metrics reach the hub's Prometheus through a receiver of its own, on a port of
# its own (components/fleet_hub.py). The port follows from the spoke's name alone, so adding or
# removing a spoke never moves another's: a port handed to another spoke mid-rollout would
# label one spoke's series with another's name.
RECEIVER_PORTS = (20000, 59999)


def receiver_port(spoke: str) -> int:
    low, high = RECEIVER_PORTS
    return low + zlib.crc32(spoke.encode()) % (high - low + 1)


@dataclass(frozen=True)
class HubIngress:
    """Where spokes reach the hub: one DNS name, served by the cluster's ingress controller
    with a certificate the hub issues (its CA is a hub output every spoke trusts)."""

    host: str
    class_name: str | None  # the IngressClass; None: the cluster's default
    controller_namespace: str  # the ingress controller's namespace: the gateway admits only it


@dataclass(frozen=True)
class FleetConfig:
    role: FleetRole = "standalone"
    # The `cluster` label on everything this cluster sends (hub and spoke), and its Loki tenant.
    cluster_name: str | None = None
    hub_stack: str | None = None  # spoke: the hub's stack, read with pulumi.StackReference
    spokes: tuple[str, ...] = ()  # hub: the spokes it admits, each with credentials of its own
    ingress: HubIngress | None = None  # hub
    nodes_per_cluster: int = DEFAULT_NODES_PER_CLUSTER  # hub: the fleet's size, for sizing
    # hub: spoke -> the port of its metrics receiver
    receiver_ports: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_hub(self) -> bool:
        return self.role == "hub"

    @property
    def is_spoke(self) -> bool:
        return self.role == "spoke"

    @property
    def name(self) -> str:
        """This cluster's name (hub and spoke only: load() requires it there)."""
        if self.cluster_name is None:
            raise ValueError("a standalone stack has no cluster name")
        return self.cluster_name


_SUB_KEYS = ("role", "clusterName", "hubStack", "spokes", "ingress", "nodesPerCluster", "receiverPorts")
_ONLY = {
    "hubStack": "spoke",
    "spokes": "hub",
    "ingress": "hub",
    "nodesPerCluster": "hub",
    "receiverPorts": "hub",
}


def read_fleet(r: ConfigReader) -> FleetConfig:
    section = r.section("fleet", _SUB_KEYS)
    role = r.choice("fleet.role", section.get("role"), ROLES, "standalone")
    if role == "standalone":
        for key in _SUB_KEYS[1:]:
            if key in section:
                r.problem(f"fleet.{key}", section[key], "only applies with fleet.role hub or spoke")
        return FleetConfig()
    for key, only in _ONLY.items():
        if key in section and role != only:
            r.problem(f"fleet.{key}", section[key], f"only applies with fleet.role {only}")
    name = _cluster_name(r, section.get("clusterName"), role)
    if role == "spoke":
        return FleetConfig(role=role, cluster_name=name, hub_stack=_hub_stack(r, section.get("hubStack")))
    spokes = _spokes(r, section.get("spokes"), name)
    return FleetConfig(
        role=role,
        cluster_name=name,
        spokes=spokes,
        receiver_ports=_receiver_ports(r, section.get("receiverPorts"), spokes),
        ingress=_hub_ingress(r, section.get("ingress")),
        nodes_per_cluster=r.integer(
            "fleet.nodesPerCluster", section.get("nodesPerCluster"), DEFAULT_NODES_PER_CLUSTER, 1, 5000
        ),
    )


def _cluster_name(r: ConfigReader, value: Any, role: str) -> str | None:
    example = "hub" if role == "hub" else "spoke-a"
    if value is None:
        r.missing(
            "fleet.clusterName",
            f"a {role} names its cluster: it becomes the `cluster` label of everything the cluster sends, "
            f"e.g. `pulumi config set --path fleet.clusterName {example}`",
        )
        return None
    if not isinstance(value, str) or len(value) > 63 or not RFC1123_LABEL.match(value):
        r.problem(
            "fleet.clusterName",
            value,
            "must be a DNS label: at most 63 lower-case letters, digits and '-', starting and ending with a "
            "letter or digit",
        )
        return None
    return value


def _hub_stack(r: ConfigReader, value: Any) -> str | None:
    if value is None:
        r.missing(
            "fleet.hubStack",
            "a spoke reads its hub's endpoints, CA and credentials from the hub's stack, e.g. "
            "`pulumi config set --path fleet.hubStack acme/runtime-defense/hub` "
            "(on a file backend: `organization/runtime-defense/hub`)",
        )
        return None
    if not isinstance(value, str) or not STACK_REFERENCE.match(value):
        r.problem(
            "fleet.hubStack",
            value,
            "must name the hub's stack as org/project/stack, or project/stack, e.g. acme/runtime-defense/hub",
        )
        return None
    return value


def _spokes(r: ConfigReader, value: Any, hub: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.problem("fleet.spokes", value, "must be a list of spoke cluster names, e.g. [spoke-a, spoke-b]")
        return ()
    names: list[str] = []
    for index, name in enumerate(value):
        key = f"fleet.spokes[{index}]"
        if not isinstance(name, str) or len(name) > 63 or not RFC1123_LABEL.match(name):
            r.problem(key, name, "must be a spoke's fleet.clusterName: a DNS label")
        elif name == hub:
            r.problem(key, name, "is the hub's own fleet.clusterName: a spoke needs a name of its own")
        elif name in names:
            r.problem(key, name, "is listed twice: each spoke gets one set of credentials")
        else:
            names.append(name)
    return tuple(names)


def _receiver_ports(r: ConfigReader, value: Any, spokes: tuple[str, ...]) -> Mapping[str, int]:
    """Each spoke's receiver port: from its name, unless fleet.receiverPorts says otherwise (for
    the rare two names that would share one)."""
    key = "fleet.receiverPorts"
    low, high = RECEIVER_PORTS
    admitted = ", ".join(spokes) or "none yet"
    chosen: dict[str, Any] = {}
    if isinstance(value, dict):
        chosen = value
        for spoke in [name for name in chosen if name not in spokes]:
            r.problem(f"{key}.{spoke}", chosen[spoke], f"names no spoke of fleet.spokes (it admits {admitted})")
    elif value is not None:
        r.problem(key, value, f"must be a map of admitted spokes to ports from {low} to {high}")
    ports: dict[str, int] = {}
    for spoke in spokes:
        port = r.integer(f"{key}.{spoke}", chosen.get(spoke), receiver_port(spoke), low, high)
        ports[spoke] = port
    by_port: dict[int, list[str]] = {}
    for spoke, port in ports.items():
        by_port.setdefault(port, []).append(spoke)
    for port, sharing in by_port.items():
        if len(sharing) > 1:
            moved = sharing[1]
            r.problem(
                f"{key}.{moved}",
                port,
                f"spokes {', '.join(sharing)} would share receiver port {port}: give one a free port from "
                f"{low} to {high}, e.g. `pulumi config set --path {key}.{moved} {_free_port(ports)}`",
            )
    return MappingProxyType(ports)


def _free_port(taken: Mapping[str, int]) -> int:
    low, high = RECEIVER_PORTS
    used = set(taken.values())
    return next(port for port in range(low, high + 1) if port not in used)


def _hub_ingress(r: ConfigReader, value: Any) -> HubIngress | None:
    key = "fleet.ingress"
    if value is None:
        r.missing(
            key,
            "a hub takes its spokes' logs, events and metrics through an Ingress with TLS: set "
            "fleet.ingress.host (the DNS name spokes dial) and fleet.ingress.controllerNamespace, e.g. "
            "`pulumi config set --path fleet.ingress.host telemetry.example.com`",
        )
        return None
    if not isinstance(value, dict):
        r.problem(key, value, "must be a map with keys host, className, controllerNamespace")
        return None
    value = r.mapping(key, value, ("host", "className", "controllerNamespace"))
    host, class_name, controller = value.get("host"), value.get("className"), value.get("controllerNamespace")
    if host is None:
        r.missing(f"{key}.host", "the DNS name spokes dial, e.g. telemetry.example.com")
    elif not isinstance(host, str) or not RFC1123_SUBDOMAIN.match(host) or "." not in host:
        r.problem(f"{key}.host", host, "must be a DNS name such as telemetry.example.com (lower case, no scheme)")
        host = None
    if class_name is not None and (not isinstance(class_name, str) or not RFC1123_SUBDOMAIN.match(class_name)):
        r.problem(f"{key}.className", class_name, "must be the name of an IngressClass, e.g. nginx")
        class_name = None
    if controller is None:
        r.missing(
            f"{key}.controllerNamespace",
            "where your ingress controller runs: the hub's gateway admits only it, e.g. ingress-nginx",
        )
    elif not isinstance(controller, str) or not RFC1123_LABEL.match(controller):
        r.problem(f"{key}.controllerNamespace", controller, "must be a namespace name, e.g. ingress-nginx")
        controller = None
    if not (host and controller):
        return None
    return HubIngress(host=host, class_name=class_name, controller_namespace=controller)


def check_roles(
    r: ConfigReader,
    fleet: FleetConfig,
    profile: Profile,
    monitoring: MonitoringConfig,
    logging: LoggingConfig,
) -> None:
    """What a hub and a spoke need of the other sections."""
    if fleet.role == "standalone":
        return
    role = f"a {fleet.role}"
    if profile != "current":
        r.problem("profile", profile, f"{role} runs the current profile (loki-stack and falco-exporter have no fleet)")
    if not monitoring.deploy:
        r.problem(
            "monitoring.deploy",
            False,
            f"{role} deploys its own Prometheus"
            + (" to receive its spokes' metrics" if fleet.is_hub else " agent to ship its metrics"),
        )
    if fleet.is_hub and logging.mode != "scalable":
        r.problem(
            "logging.mode",
            logging.mode,
            "a hub keeps a fleet's logs in Loki's scalable shape on object storage: "
            "`pulumi config set --path logging.mode scalable` and set logging.objectStorage",
        )
    if fleet.is_hub:
        for key in ("replicas", "storageSize"):
            if key in r.present("logging"):
                r.problem(
                    f"logging.{key}",
                    r.present("logging")[key],
                    "a hub's Loki follows the fleet's size (components/fleet_sizing.py): set fleet.nodesPerCluster",
                )
    if fleet.is_spoke:
        # A spoke's collector still reads its pod logs one way or the other (logging.podLogs).
        for key in sorted(set(r.present("logging")) - {"podLogs"}):
            r.problem(f"logging.{key}", "<set>", "a spoke runs no Loki: its logs go to the hub")
        for key, why in (
            ("grafana", "a spoke runs no Grafana: the hub's shows the fleet"),
            ("grafanaToken", "a spoke runs no Grafana: the hub's shows the fleet"),
        ):
            if r.raw(key) is not None:
                r.problem(key, "<set>", why)
        for key in ("grafanaNodePort", "grafanaIngress", "controlPlaneMetrics"):
            if key in r.present("monitoring"):
                r.problem(f"monitoring.{key}", "<set>", "a spoke runs no Grafana, only a Prometheus agent")
        alerting = r.present("alerting")
        for key in ("email", "certificateWarningHours"):
            if key in alerting:
                r.problem(f"alerting.{key}", alerting[key], "the hub's Grafana alerts for the fleet: set it there")
