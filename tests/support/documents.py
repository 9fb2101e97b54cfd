"""The documentation set as the tests read it: README.md, CONTRIBUTING.md and docs/*.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from harness import ROOT

FENCE = re.compile(r"^(```|~~~)")
RULE = re.compile(r"^\|[-:| ]+\|$")


# Drafts under review: no document links them yet, and they are not part of the set the
# docs tests read. Each has tests of its own for its figures (docs/fleet-sizing.md:
# tests/fleet/test_sizing.py); once the README links it, it leaves this list.
DRAFTS: tuple[str, ...] = ()


def documents() -> list[Path]:
    """The published documents: README.md, CONTRIBUTING.md and docs/*.md but the drafts."""
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert all(path.is_file() for path in found), found
    gone = [draft for draft in DRAFTS if not (ROOT / draft).is_file()]
    assert gone == [], f"drafts that are no longer there: drop them from DRAFTS in {__name__}"
    return [path for path in found if name(path) not in DRAFTS]


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@cache
def text(relative: str) -> str:
    return (ROOT / relative).read_text()


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    text: str
    in_code_block: bool


def lines(relative: str) -> list[Line]:
    """The document's lines, each marked as inside a fenced code block or not."""
    found, fenced = [], False
    for number, line in enumerate(text(relative).splitlines(), 1):
        if FENCE.match(line.lstrip()):
            found.append(Line(number, line, True))
            fenced = not fenced
            continue
        found.append(Line(number, line, fenced))
    return found


def headings(relative: str) -> Iterator[tuple[int, str]]:
    """(level, text) of each heading outside code blocks."""
    for line in lines(relative):
        match = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line.text)
        if match and not line.in_code_block:
            yield len(match[1]), match[2]


def section_span(relative: str, heading: str) -> tuple[int, int]:
    """Where the text under ``heading`` (e.g. "## Latency budget") lies: up to the next
    heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    whole = text(relative)
    found = re.search(rf"^{re.escape(heading)}\n", whole, re.M)
    assert found, f"{relative} has no heading {heading!r}"
    offset = 0
    for line in lines(relative):
        if offset > found.start() and not line.in_code_block and re.match(rf"^#{{1,{level}}} ", line.text):
            return found.end(), offset
        offset += len(line.text) + 1
    return found.end(), len(whole)


def section(relative: str, heading: str) -> str:
    start, end = section_span(relative, heading)
    return text(relative)[start:end]


def table_rows(block: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``block``, header and rule rows left out."""
    candidates = block.splitlines()
    rows = []
    for index, line in enumerate(candidates):
        if not line.startswith("|") or RULE.match(line):
            continue
        following = candidates[index + 1] if index + 1 < len(candidates) else ""
        if RULE.match(following):
            continue  # a header
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


LINK_TARGET = re.compile(r"\]\([^)]*\)")
LIST_MARKER = re.compile(r"^\s*\d+\. ", re.M)


def blank(value: str, pattern: re.Pattern[str]) -> str:
    """``value`` with every match of ``pattern`` replaced by as many spaces (offsets kept)."""
    return pattern.sub(lambda m: " " * len(m[0]), value)


def figures(relative: str) -> list[tuple[int, int, str]]:
    """(start, end, figure) of every figure the document states: digits, dotted (a version,
    an address) or not, link targets and the numbers of ordered lists left out. Digits
    inside a word belong to a name (e2e, k8s, sha256, python3, ECDSA-P256, apps/v1); a `v`
    before a dotted version (v1.33) is part of the figure."""
    scanned = blank(blank(text(relative), LINK_TARGET), LIST_MARKER)
    found = []
    for match in re.finditer(r"\d+(?:\.\d+)*", scanned):
        before = scanned[match.start() - 1] if match.start() else " "
        if before == "v" and "." in match[0]:
            before = scanned[match.start() - 2] if match.start() > 1 else " "
        if before.isalnum() or before in "_.":
            continue
        found.append((match.start(), match.end(), match[0]))
    return found


def line_of(relative: str, offset: int) -> int:
    return text(relative).count("\n", 0, offset) + 1


Span = tuple[int, int]


def group_spans(match: re.Match[str]) -> list[Span]:
    """The spans of a match's groups: the figures a check compared."""
    return [match.span(index) for index in range(1, (match.re.groups or 0) + 1) if match.span(index) != (-1, -1)]


def unchecked(relative: str, checked: list[Span], within: Span | None = None) -> list[str]:
    """The figures of a document (or of its part ``within``) that lie in no checked span,
    as `file:line: figure`."""
    low, high = within or (0, len(text(relative)))
    return [
        f"{relative}:{line_of(relative, start)}: {figure}"
        for start, end, figure in figures(relative)
        if low <= start < high and not any(a <= start and end <= b for a, b in checked)
    ]


FIGURE = r"(?<![\d.,])(\d+(?:[.,]\d+)*)"  # 58, 1,299, 99.5, 0.44.1


def figure_phrase(template: str) -> re.Pattern[str]:
    """A phrase with ``{}`` where each figure stands, as a pattern whose groups are those
    figures; its words may wrap (any whitespace between them)."""
    words = [r"\s+".join(re.escape(word) for word in re.split(r"\s+", part)) for part in template.split("{}")]
    return re.compile(FIGURE.join(words))
