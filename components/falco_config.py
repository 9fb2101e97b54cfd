"""Configuration of Falco: ``falco.*`` (driver, custom rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from components.config_reader import ConfigReader
from components.profile import Profile

KEYS = ("falco",)
# Falco drivers each profile's chart accepts; the first is the default. Chart 9 (current)
# removed the legacy `ebpf` probe; chart 8 (tutorial) still has it, the walk-through's choice.
FALCO_DRIVERS: dict[Profile, tuple[str, ...]] = {
    "current": ("modern_ebpf", "kmod", "auto"),
    "tutorial": ("ebpf", "modern_ebpf", "kmod"),
}
# The top-level keys of a Falco rules file.
FALCO_RULE_ITEMS = ("rule", "macro", "list", "required_engine_version", "required_plugin_versions")


@dataclass(frozen=True)
class FalcoConfig:
    driver: str
    custom_rules: Mapping[str, str]  # rules file name -> rules YAML


def read_falco(r: ConfigReader, profile: Profile) -> FalcoConfig:
    section = r.section("falco", ("driver", "customRules"))
    drivers = FALCO_DRIVERS[profile]
    driver = section.get("driver")
    if driver is not None and driver not in drivers:
        why = " (falco chart 9 removed the legacy probe; modern_ebpf needs no download)" if driver == "ebpf" else ""
        r.problem(
            "falco.driver",
            driver,
            f"not a driver of profile {profile}{why}; allowed: {', '.join(drivers)}",
        )
        driver = None
    return FalcoConfig(driver=driver or drivers[0], custom_rules=_custom_rules(r, section.get("customRules")))


def _custom_rules(r: ConfigReader, value: Any) -> Mapping[str, str]:
    """A map of rules file name to rules text, each parsed as Falco reads it."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        r.problem("falco.customRules", value, "must be a map of file name (e.g. my-rules.yaml) to rules YAML")
        return MappingProxyType({})
    rules: dict[str, str] = {}
    for name, text in value.items():
        key = f"falco.customRules.{name}"
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$", name):
            r.problem(key, name, "the file name must end in .yaml or .yml and use letters, digits, '.', '_', '-'")
            continue
        if not isinstance(text, str):
            r.problem(key, text, "must be the rules file's text")
            continue
        lines = text.splitlines() or [""]
        try:
            items = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = mark.line if mark else 0
            r.problem(
                key,
                _excerpt(lines[min(line, len(lines) - 1)]),
                f"is not valid YAML (line {line + 1}: {getattr(error, 'problem', None) or error})",
            )
            continue
        if not isinstance(items, list) or not all(
            isinstance(item, dict) and any(k in item for k in FALCO_RULE_ITEMS) for item in items
        ):
            r.problem(
                key,
                _excerpt(lines[0]),
                f"must be a YAML list whose items each have one of: {', '.join(FALCO_RULE_ITEMS)}",
            )
            continue
        rules[name] = text
    return MappingProxyType(rules)


def _excerpt(line: str) -> str:
    return line if len(line) <= 60 else line[:57] + "..."
