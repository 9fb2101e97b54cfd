"""The stack's configuration: read once, validated, frozen.

Every key lives under the project's namespace (``runtime-defense:``). ``load()`` reads
them all, checks every one, and raises a single ``ConfigError`` listing every problem
(key, bad value, what is allowed) before any resource is registered. Components never
read configuration themselves: they receive these objects. Each section is read beside
the component it configures (``components/<section>_config.py``); this module only puts
them together and checks what concerns more than one section.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from components import (
    alerting_config,
    cluster_config,
    event_export_config,
    falco_config,
    fleet_config,
    grafana_config,
    logging_config,
    monitoring_config,
    namespaces_config,
    pki_config,
)
from components.alerting_config import AlertingConfig
from components.cluster_config import KubernetesTarget
from components.config_reader import ConfigError, ConfigReader
from components.event_export_config import EventExportConfig
from components.falco_config import FalcoConfig
from components.fleet_config import FleetConfig
from components.grafana_config import GrafanaConfig
from components.logging_config import LoggingConfig
from components.monitoring_config import MonitoringConfig
from components.namespaces_config import Namespaces
from components.pki_config import PkiConfig
from components.profile import PROFILES, Profile

__all__ = ["ConfigError", "StackConfig", "load"]

SECTIONS = (
    cluster_config,
    namespaces_config,
    monitoring_config,
    logging_config,
    falco_config,
    pki_config,
    event_export_config,
    grafana_config,
    alerting_config,
    fleet_config,
)
TOP_LEVEL_KEYS = ("profile", *(key for section in SECTIONS for key in section.KEYS))


@dataclass(frozen=True)
class StackConfig:
    profile: Profile
    kubernetes: KubernetesTarget
    namespaces: Namespaces
    monitoring: MonitoringConfig
    logging: LoggingConfig
    falco: FalcoConfig
    pki: PkiConfig
    event_export: EventExportConfig
    grafana: GrafanaConfig | None  # None on a spoke, which runs no Grafana
    alerting: AlertingConfig
    fleet: FleetConfig


def _own_namespaces_only(r: ConfigReader, namespaces: Namespaces, monitoring: MonitoringConfig) -> None:
    """The stack creates its namespaces and deletes them, with all they hold, on destroy: it
    must never deploy into one that belongs to the installation it plugs into."""
    existing = monitoring.existing
    if existing is None:
        return
    theirs = {
        existing.prometheus_namespace: "your Prometheus's namespace (from monitoring.prometheusUrl)",
        existing.grafana_namespace: "your Grafana's namespace (from grafana.adminSecret.namespace)"
        if existing.grafana_namespace != existing.prometheus_namespace
        else "your Prometheus's namespace (from monitoring.prometheusUrl)",
    }
    for key, namespace in (("namespaces.logging", namespaces.logging), ("namespaces.falco", namespaces.falco)):
        if namespace in theirs:
            r.problem(
                key,
                namespace,
                f"is {theirs[namespace]}: the stack deletes its namespaces, and what is in them, on destroy, "
                "so it deploys only into namespaces it creates; choose another",
            )


def load() -> StackConfig:
    """Read and validate the whole stack configuration, or raise ConfigError with every problem."""
    r = ConfigReader()
    r.unknown_top_level_keys(TOP_LEVEL_KEYS)
    profile = r.choice("profile", r.raw("profile"), PROFILES, "current")
    kubernetes = cluster_config.read_kubernetes(r)
    namespaces = namespaces_config.read_namespaces(r)
    monitoring = monitoring_config.read_monitoring(r)
    logging = logging_config.read_logging(r, profile)
    falco = falco_config.read_falco(r, profile)
    pki = pki_config.read_pki(r)
    event_export = event_export_config.read_event_export(r, profile)
    fleet = fleet_config.read_fleet(r)
    fleet_config.check_roles(r, fleet, profile, monitoring, logging)
    grafana = None if fleet.is_spoke else grafana_config.read_grafana(r, monitoring, kubernetes)
    if monitoring.existing is not None and grafana is not None and grafana.admin_secret is not None:
        # An existing Grafana runs where its admin password is kept.
        existing = replace(monitoring.existing, grafana_namespace=grafana.admin_secret.namespace)
        monitoring = replace(monitoring, existing=existing)
    _own_namespaces_only(r, namespaces, monitoring)
    config = StackConfig(
        profile=profile,
        kubernetes=kubernetes,
        namespaces=namespaces,
        monitoring=monitoring,
        logging=logging,
        falco=falco,
        pki=pki,
        event_export=event_export,
        grafana=grafana,
        alerting=alerting_config.read_alerting(r, pki),
        fleet=fleet,
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config
