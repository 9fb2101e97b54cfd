"""Checks chart values against the key index of the pinned chart version.

A Helm value whose key the chart does not know is silently ignored, so every key the
program sets must be in ``chart-keys/<chart>-<version>.keys`` (generated from the chart's
values.yaml by ``scripts/chart_key_index.py``) or in ``chart-keys/template-keys.tsv``
(keys the templates read although values.yaml leaves them out).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from harness import ROOT

from components.charts import PinnedChart

INDEX_DIR = ROOT / "chart-keys"
FREE_FORM = {"{}", "null"}


def escape(key: str) -> str:
    return key.replace(".", "\\.")


@cache
def key_index(name: str) -> dict[str, str]:
    kinds = {}
    for line in (INDEX_DIR / f"{name}.keys").read_text().splitlines():
        path, kind = line.split("\t")
        kinds[path] = kind
    return kinds


@cache
def template_keys() -> dict[tuple[str, str], str]:
    keys = {}
    for line in (INDEX_DIR / "template-keys.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        chart, path, template = line.split("\t")
        keys[(chart, path)] = template
    return keys


def chart_index(chart: PinnedChart) -> dict[str, str]:
    """The chart's own keys plus those of its indexed subcharts under their prefixes."""
    kinds = dict(key_index(chart.key_index))
    for prefix, sub in chart.subcharts.items():
        for path, kind in key_index(sub).items():
            full = f"{escape(prefix)}.{path}"
            # Where both define a key, the looser definition (free-form) wins.
            if full not in kinds or kind in FREE_FORM:
                kinds[full] = kind
    return kinds


def unknown_keys(chart: PinnedChart, values: Mapping[str, Any]) -> list[str]:
    """Every key in ``values`` the pinned chart does not define, with why."""
    kinds = chart_index(chart)
    extra = {path for (name, path) in template_keys() if name == chart.key_index}
    problems: list[str] = []

    def visit(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            path = prefix + escape(str(key))
            if path in extra:
                continue
            kind = kinds.get(path)
            if kind is None:
                problems.append(f"{chart.key_index}: {path} is not a key of the chart")
            elif kind in FREE_FORM:
                continue
            elif isinstance(value, Mapping):
                if kind == "map":
                    visit(value, path + ".")
                else:
                    problems.append(f"{chart.key_index}: {path} is a {kind} in values.yaml, set as a map")
            elif kind == "map":
                problems.append(f"{chart.key_index}: {path} is a map in values.yaml, set as {type(value).__name__}")

    visit(values, "")
    return problems
