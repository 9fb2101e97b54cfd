"""Checks chart values against the keys the vendored chart archive knows.

A Helm value whose key the chart does not know is silently ignored, so every key the
program sets must be in the chart's values.yaml (or a bundled subchart's, under its name
or alias), read from ``charts/<chart>-<version>.tgz`` itself, or be listed in
``chart-keys/template-keys.tsv`` with the template that reads it although values.yaml
leaves it out.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import yaml
from harness import ROOT

from components.charts import PinnedChart

TEMPLATE_KEYS = ROOT / "chart-keys" / "template-keys.tsv"
FREE_FORM = {"{}", "null"}


def escape(key: object) -> str:
    return str(key).replace(".", "\\.")


def kind_of(value: object) -> str:
    """``map`` for a map with keys; ``{}`` (empty map) and ``null`` are free-form."""
    if isinstance(value, dict):
        return "map" if value else "{}"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def index_entries(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in values.items():
        path = f"{prefix}{escape(key)}"
        yield path, kind_of(value)
        if isinstance(value, dict):
            yield from index_entries(value, path + ".")


@cache
def archive_files(chart: PinnedChart) -> dict[str, bytes]:
    """The archive's Chart.yaml, values.yaml and templates (of the chart and its subcharts)."""
    with tarfile.open(ROOT / chart.archive) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and member.name.endswith((".yaml", ".yml", ".tpl", ".json", ".txt"))
        }


def chart_metadata(chart: PinnedChart) -> dict[str, Any]:
    return yaml.safe_load(archive_files(chart)[f"{chart.name}/Chart.yaml"])


@cache
def chart_index(chart: PinnedChart) -> dict[str, str]:
    """dotted key path -> kind, for the chart and each bundled subchart under the key Helm
    passes its values by (the dependency's alias, else its name)."""
    files = archive_files(chart)
    aliases = {d["name"]: d.get("alias") or d["name"] for d in chart_metadata(chart).get("dependencies") or []}
    kinds = dict(index_entries(yaml.safe_load(files[f"{chart.name}/values.yaml"]) or {}))
    for path, content in files.items():
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "charts" and parts[3] == "values.yaml":
            prefix = escape(aliases.get(parts[2], parts[2]))
            for key, kind in index_entries(yaml.safe_load(content) or {}, prefix + "."):
                # Where parent and subchart both define a key, the looser definition wins.
                if key not in kinds or kind in FREE_FORM:
                    kinds[key] = kind
    return kinds


@cache
def template_keys() -> dict[tuple[str, str], tuple[str, str]]:
    """(chart label, dotted key) -> (file in the chart archive, the expression that reads it)."""
    keys = {}
    for line in TEMPLATE_KEYS.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        chart, path, template, expression = line.split("\t")
        keys[(chart, path)] = (template, expression)
    return keys


def unknown_keys(chart: PinnedChart, values: Mapping[str, Any]) -> list[str]:
    """Every key in ``values`` the pinned chart does not define, with why."""
    kinds = chart_index(chart)
    extra = {path for (label, path) in template_keys() if label == chart.label}
    problems: list[str] = []

    def visit(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = prefix + escape(key)
            if path in extra:
                continue
            kind = kinds.get(path)
            if kind is None:
                problems.append(f"{chart.label}: {path} is not a key of the chart")
            elif kind in FREE_FORM:
                continue
            elif isinstance(value, Mapping):
                if kind == "map":
                    visit(value, path + ".")
                else:
                    problems.append(f"{chart.label}: {path} is a {kind} in values.yaml, set as a map")
            elif kind == "map":
                problems.append(f"{chart.label}: {path} is a map in values.yaml, set as {type(value).__name__}")

    visit(values, "")
    return problems
