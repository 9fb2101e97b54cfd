"""Configuration of what receives Falco's events: ``eventExport.*``."""

from __future__ import annotations

from dataclasses import dataclass

from components.config_reader import ConfigReader
from components.profile import Profile

KEYS = ("eventExport",)


@dataclass(frozen=True)
class EventExportConfig:
    replicas: int  # Falcosidekick replicas (current profile)


def read_event_export(r: ConfigReader, profile: Profile) -> EventExportConfig:
    section = r.section("eventExport", ("replicas",))
    if profile == "tutorial" and "replicas" in section:
        r.problem(
            "eventExport.replicas",
            section["replicas"],
            "only applies with profile current (falco-exporter runs one pod per node)",
        )
    return EventExportConfig(replicas=r.integer("eventExport.replicas", section.get("replicas"), 1, 1, 10))
