"""Configuration of the namespaces the stack creates: ``namespaces.*``."""

from __future__ import annotations

from dataclasses import dataclass

from components.config_reader import ConfigReader

KEYS = ("namespaces",)


@dataclass(frozen=True)
class Namespaces:
    monitoring: str  # used only when the stack deploys the monitoring baseline
    logging: str
    falco: str


def read_namespaces(r: ConfigReader) -> Namespaces:
    section = r.section("namespaces", ("monitoring", "logging", "falco"))
    return Namespaces(
        monitoring=r.namespace("namespaces.monitoring", section.get("monitoring"), "monitoring"),
        logging=r.namespace("namespaces.logging", section.get("logging"), "logging"),
        falco=r.namespace("namespaces.falco", section.get("falco"), "falco"),
    )
