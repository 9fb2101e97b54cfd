"""What each log source of a rendered stack writes to Loki: the stream labels it produces,
read from the collector configuration the cluster receives (Alloy's pipeline, Promtail's
config), and Falcosidekick's, read from its source."""

from __future__ import annotations

import re

import yaml
from rendering import RenderedStack

# Falcosidekick 2.32.0 outputs/loki.go newLokiPayload: the stream labels of every event it
# pushes (plus custom, templated and extra fields, none configured here).
FALCOSIDEKICK_LOKI_LABELS = frozenset({"rule", "source", "priority", "k8s_ns_name", "k8s_pod_name", "hostname", "tags"})


def alloy_config(stack: RenderedStack) -> str | None:
    """Alloy's pipeline as its ConfigMap carries it, or None without Alloy."""
    found = [o for o in stack.of_kind("ConfigMap") if o.source == "alloy"]
    return found[0].body["data"]["config.alloy"] if found else None


def alloy_labels(config: str) -> set[str]:
    """Labels Alloy's relabel rules write (`target_label = "x"`), hidden `__` ones aside."""
    return {label for label in re.findall(r'target_label\s*=\s*"([^"]+)"', config) if not label.startswith("__")}


def alloy_env_reads(config: str) -> set[str]:
    return set(re.findall(r'sys\.env\(\s*"([^"]+)"\s*\)', config))


def promtail_config(stack: RenderedStack) -> dict | None:
    found = [o for o in stack.of_kind("Secret") if o.source == "loki" and o.name.endswith("-promtail")]
    return yaml.safe_load(found[0].body["stringData"]["promtail.yaml"]) if found else None


def promtail_labels(config: dict) -> set[str]:
    """Labels Promtail's relabel rules write, hidden `__` ones aside."""
    return {
        rule["target_label"]
        for job in config["scrape_configs"]
        for rule in job.get("relabel_configs") or []
        if "target_label" in rule and not rule["target_label"].startswith("__")
    }


def log_sources(stack: RenderedStack) -> dict[str, set[str]]:
    """Each source that pushes to Loki in this stack, and the stream labels it produces."""
    sources: dict[str, set[str]] = {}
    alloy = alloy_config(stack)
    if alloy is not None:
        sources["alloy"] = alloy_labels(alloy)
    promtail = promtail_config(stack)
    if promtail is not None:
        sources["promtail"] = promtail_labels(promtail)
    if any(o.source == "falcosidekick" and o.kind == "Deployment" for o in stack.objects):
        sources["falcosidekick"] = set(FALCOSIDEKICK_LOKI_LABELS)
    return sources
