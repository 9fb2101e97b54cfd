"""Every LogQL query the documents show (a code span or a code-block line that starts with a
stream selector) parses with Grafana's own LogQL grammar, as Explore would take it."""

from __future__ import annotations

import re

import pytest
from documents import documents, lines, name
from queries import logql_errors

CODE_SPAN = re.compile(r"`([^`\n]+)`")
SELECTOR = re.compile(r'^\{\s*\w+\s*(?:=|!=|=~|!~)\s*"')


def shown_queries() -> list[str]:
    found = []
    for path in documents():
        for line in lines(name(path)):
            candidates = [line.text.strip()] if line.in_code_block else CODE_SPAN.findall(line.text)
            found += [c.replace("\\|", "|") for c in candidates if SELECTOR.match(c)]  # a table escapes |
    return found


@pytest.mark.usefixtures("needs_node_logql")
def test_every_logql_query_shown_parses():
    queries = shown_queries()
    assert any("rule=" in q for q in queries), queries  # the README's Falco event, at least
    assert logql_errors(queries) == {q: [] for q in queries}
