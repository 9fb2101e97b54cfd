"""Parsing the PromQL and LogQL the program writes into dashboards and alert rules."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import promql_parser
from tools import require_node_logql

LOGQL_CHECK = Path(__file__).resolve().parent / "logql"

# Grafana expands these before a query reaches Prometheus or Loki.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "6h",
    "$namespace": ".*",
}


def expand(query: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    assert not re.search(r"\$\w", query), f"unexpanded variable in {query}"
    return query


def promql_children(node) -> list:
    """The sub-expressions of a parsed PromQL node (promql_parser's AST)."""
    found = [
        child
        for attribute in ("expr", "lhs", "rhs", "param", "vector_selector")
        if (child := getattr(node, attribute, None)) is not None and not isinstance(child, (str, int, float))
    ]
    return found + list(getattr(node, "args", None) or [])


def promql_selectors(node) -> list[promql_parser.VectorSelector]:
    """Every series selector of a parsed PromQL expression, in the order written."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node]
    return [selector for child in promql_children(node) for selector in promql_selectors(child)]


def promql_metrics(query: str) -> set[str]:
    """The metric names a PromQL query selects; raises ValueError if it does not parse."""
    return {selector.name for selector in promql_selectors(promql_parser.parse(expand(query)))}


def _logql(queries: list[str]) -> list[dict]:
    """Without Node.js and the grammar, the calling test is skipped (failed under CI=true)."""
    result = subprocess.run(
        [require_node_logql(), str(LOGQL_CHECK / "check.mjs")],
        input=json.dumps([expand(q) for q in queries]),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(result.stdout)


def logql_errors(queries: list[str]) -> dict[str, list[int]]:
    """Syntax error offsets per LogQL query, from Grafana's own LogQL grammar."""
    return {query: item["errors"] for query, item in zip(queries, _logql(queries), strict=True)}


def logql_stream_selectors(queries: list[str]) -> dict[str, list[list[tuple[str, str, str]]]]:
    """Each query's stream selectors, each as its matchers (label, operator, quoted value)."""
    return {
        query: [[(name, op, value) for name, op, value in selector] for selector in item["selectors"]]
        for query, item in zip(queries, _logql(queries), strict=True)
    }


def logql_stream_labels(queries: list[str]) -> dict[str, set[str]]:
    """The label names each query's stream selectors match on, as Grafana's grammar parses them."""
    return {query: set(item["labels"]) for query, item in zip(queries, _logql(queries), strict=True)}
