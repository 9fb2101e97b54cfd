"""Configuration of Falco: ``falco.*`` (driver, capabilities, container runtime, custom rules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from components.config_reader import ConfigReader
from components.falco_host import (
    CAPABILITY_SETS,
    DEFAULT_CAPABILITIES,
    DEFAULT_RUNTIMES,
    LEAST_PRIVILEGED_DRIVER,
    RUNTIMES,
)
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
    capabilities: str  # a key of falco_host.CAPABILITY_SETS (applies to modern_ebpf)
    container_runtimes: tuple[str, ...]  # keys of falco_host.RUNTIMES


def read_falco(r: ConfigReader, profile: Profile) -> FalcoConfig:
    section = r.section("falco", ("driver", "capabilities", "containerRuntime", "customRules"))
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
    driver = driver or drivers[0]
    return FalcoConfig(
        driver=driver,
        custom_rules=_custom_rules(r, section.get("customRules")),
        capabilities=_capabilities(r, section.get("capabilities"), driver),
        container_runtimes=_container_runtimes(r, section.get("containerRuntime")),
    )


def _capabilities(r: ConfigReader, value: Any, driver: str) -> str:
    """Falco's capabilities on modern_ebpf: least, or with SYS_ADMIN for kernels that need it."""
    if value is None:
        return DEFAULT_CAPABILITIES
    if value not in CAPABILITY_SETS:
        r.problem(
            "falco.capabilities",
            value,
            "allowed: least (BPF, PERFMON, SYS_RESOURCE, SYS_PTRACE) or sysAdmin (those and SYS_ADMIN, which "
            "Debian and Ubuntu kernels require when kernel.perf_event_paranoid is above 2)",
        )
        return DEFAULT_CAPABILITIES
    if value == "least" and driver != LEAST_PRIVILEGED_DRIVER:
        r.problem(
            "falco.capabilities",
            value,
            f"driver {driver} runs Falco privileged; only driver modern_ebpf runs on the least capabilities",
        )
    return value


def _container_runtimes(r: ConfigReader, value: Any) -> tuple[str, ...]:
    """The runtime(s) of the cluster's nodes: a name, or a list where nodes differ."""
    if value is None:
        return DEFAULT_RUNTIMES
    allowed = ", ".join(RUNTIMES)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        r.problem(
            "falco.containerRuntime",
            value,
            f"must be the nodes' container runtime, one of {allowed}, or a list of them where nodes differ",
        )
        return DEFAULT_RUNTIMES
    unknown = [n for n in names if n not in RUNTIMES]
    for name in unknown:
        key = "falco.containerRuntime" if isinstance(value, str) else f"falco.containerRuntime[{names.index(name)}]"
        r.problem(
            key,
            name,
            f"not a runtime Falco can ask for container metadata; allowed: {allowed} "
            "(`kubectl get nodes -o wide` shows each node's CONTAINER-RUNTIME)",
        )
    if len(set(names)) != len(names):
        r.problem("falco.containerRuntime", value, f"names a runtime twice; list each of {allowed} at most once")
    return DEFAULT_RUNTIMES if unknown else tuple(dict.fromkeys(names))


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
