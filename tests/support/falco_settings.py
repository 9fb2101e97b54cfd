"""What Falco is configured with, read from the rendered objects, and Falco's priorities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from rendering import Obj

# Falco's priorities, most severe first, as Falco and Falcosidekick spell them in settings
# (falcosecurity/libs, Falcosidekick types/priority.go); Falco numbers them 0 to 7 in this order.
PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")


def read_falco_yaml(config_map: Mapping[str, Any]) -> dict[str, Any]:
    """The falco.yaml a ConfigMap's body holds."""
    return yaml.safe_load(config_map["data"]["falco.yaml"]) or {}


def falco_yaml(objects: Iterable[Obj]) -> dict[str, Any]:
    """falco.yaml in the ConfigMap the falco chart renders, among ``objects``."""
    config_maps = [o for o in objects if o.kind == "ConfigMap" and o.source == "falco"]
    (config_map,) = [o for o in config_maps if "falco.yaml" in (o.body.get("data") or {})]
    return read_falco_yaml(config_map.body)
