"""Every relative link and #anchor in README.md, CONTRIBUTING.md and docs/*.md resolves: the
file or folder exists in the repository, and the anchor is a heading of the target as
GitHub slugs it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from documents import DRAFTS, documents, headings, lines, name
from harness import ROOT

# A Markdown link or image: [text](target), the text possibly holding `code`.
LINK = re.compile(r"!?\[(?:[^\[\]`]|`[^`]*`)*\]\(([^)\s]+)\)")
EXTERNAL = ("http://", "https://", "mailto:")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (github-slugger): the text as rendered (links become
    their text, code and emphasis marks go), lower case, every character but letters,
    digits, `-`, `_` and spaces dropped, each space a hyphen."""
    rendered = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", rendered.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a document: repeated headings get -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, heading in headings(name(path)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every link outside code blocks."""
    return [
        (line.number, match[1])
        for line in lines(name(path))
        if not line.in_code_block
        for match in LINK.finditer(line.text)
    ]


def test_the_slugs_are_githubs():
    assert slug("The scale-out environment (`prod`)") == "the-scale-out-environment-prod"
    assert slug("Falco's driver") == "falcos-driver"
    assert slug("Tearing down: the details") == "tearing-down-the-details"
    assert slug("`falco_events` and **more**") == "falco_events-and-more"


@pytest.mark.parametrize("path", documents(), ids=name)
def test_every_relative_link_and_anchor_resolves(path):
    found = links(path)
    assert found, f"{name(path)} links nowhere"
    broken = []
    for number, target in found:
        if target.startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{name(path)}:{number}: {target}"
        if not destination.is_relative_to(ROOT) or not destination.exists():
            broken.append(f"{where}: no such file")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
            broken.append(f"{where}: no such heading")
    assert broken == []


def test_the_readme_links_every_document():
    """Every published document (the drafts are not: tests/support/documents.py DRAFTS)."""
    targets = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    assert {path for path in documents() if path.name != "README.md"} <= targets


def test_no_document_links_a_draft():
    """A draft the documentation links is published: take it out of DRAFTS, so that these
    tests read it."""
    drafts = {(ROOT / draft).resolve() for draft in DRAFTS}
    linked = [
        f"{name(path)}:{number}: {target}"
        for path in documents()
        for number, target in links(path)
        if not target.startswith(EXTERNAL) and (path.parent / target.partition("#")[0]).resolve() in drafts
    ]
    assert linked == []
