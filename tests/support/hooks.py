"""Helm hooks in the vendored chart archives, and what the program does instead of each.

Helm v4 ``Chart`` never runs a hook: an object only a hook creates never exists, and a step
only a hook performs never happens. ``scan`` finds every template file of every archive in
``charts/`` (subcharts included, packed or not) that sets a ``helm.sh/hook`` annotation;
``chart-keys/hooks.tsv`` records, for each, the decision taken (``DECISIONS``).
"""

from __future__ import annotations

import csv
import fnmatch
import io
import re
import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness import ROOT

HOOKS_TABLE = ROOT / "chart-keys" / "hooks.tsv"
DECISIONS = {
    "disabled": "a chart value keeps it from rendering",
    "replaced": "a resource or check of the program's does its work",
    "manual": "a step the documentation gives",
}
# The annotation itself, not helm.sh/hook-weight or helm.sh/hook-delete-policy.
HOOK_ANNOTATION = re.compile(r"""^\s*["']?helm\.sh/hook["']?\s*:\s*(?P<value>.+?)\s*$""", re.M)
KIND = re.compile(r"^kind:\s*(?P<kind>\w+)\s*$", re.M)


@dataclass(frozen=True)
class HookTemplate:
    """A template file that sets the hook annotation."""

    chart: str  # the archive's name: <chart>-<version>
    path: str  # inside the archive, nested archives as <archive path>/<member path>
    hooks: frozenset[str]  # the annotation's values as written (templated values verbatim)
    kinds: frozenset[str]  # the kinds the file declares


@dataclass(frozen=True)
class Decision:
    chart: str
    templates: str  # a glob over HookTemplate.path
    hooks: frozenset[str]
    decision: str
    instead: str

    def covers(self, template: HookTemplate) -> bool:
        return template.chart == self.chart and fnmatch.fnmatchcase(template.path, self.templates)


def archives() -> list[Path]:
    found = sorted((ROOT / "charts").glob("*.tgz"))
    assert found, "no chart archive in charts/"
    return found


def _scan_archive(chart: str, data: bytes, prefix: str = "") -> list[HookTemplate]:
    found = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            name = prefix + member.name
            handle = archive.extractfile(member)
            assert handle is not None
            content = handle.read()
            if member.name.endswith(".tgz") and "/charts/" in f"/{member.name}":
                found += _scan_archive(chart, content, f"{name}/")
                continue
            if "/templates/" not in f"/{member.name}":
                continue
            text = content.decode(errors="replace")
            hooks = frozenset(m["value"] for m in HOOK_ANNOTATION.finditer(text))
            if hooks:
                kinds = frozenset(m["kind"] for m in KIND.finditer(text))
                found.append(HookTemplate(chart, name, hooks, kinds))
    return found


@cache
def scan() -> tuple[HookTemplate, ...]:
    """Every hook template in every vendored archive."""
    found = []
    for path in archives():
        found += _scan_archive(path.name.removesuffix(".tgz"), path.read_bytes())
    return tuple(found)


def decisions() -> list[Decision]:
    lines = [line for line in HOOKS_TABLE.read_text().splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows, f"{HOOKS_TABLE} is empty"
    found = []
    for row in rows:
        assert len(row) == 5, f"{HOOKS_TABLE}: five tab-separated columns, found {row}"
        chart, templates, hooks, decision, instead = (cell.strip() for cell in row)
        assert decision in DECISIONS, f"{HOOKS_TABLE}: decision {decision!r} is not one of {sorted(DECISIONS)}"
        assert instead, f"{HOOKS_TABLE}: {chart} {templates} says nothing of what is done instead"
        found.append(Decision(chart, templates, frozenset(h.strip() for h in hooks.split(";")), decision, instead))
    return found


def template_of(chart: str, body: dict, templates: tuple[HookTemplate, ...]) -> HookTemplate:
    """The template file that rendered the hook object `body` of a release of `chart`: the one
    declaring its kind and its hook annotation (or a templated one), in the (sub)chart its
    `helm.sh/chart` label names."""
    metadata = body["metadata"]
    hook = metadata["annotations"]["helm.sh/hook"]
    subchart = (metadata.get("labels") or {}).get("helm.sh/chart", "").rsplit("-", 1)[0]
    candidates = [
        t
        for t in templates
        if t.chart == chart and body["kind"] in t.kinds and any(h == hook or "{{" in h for h in t.hooks)
    ]
    if len(candidates) > 1 and subchart:
        candidates = [t for t in candidates if f"/charts/{subchart}/" in t.path or t.path.startswith(f"{subchart}/")]
    assert len(candidates) == 1, f"{body['kind']} {metadata['name']} ({hook}): templates {candidates}"
    return candidates[0]
