"""Helm v4 Chart never runs Helm hooks. Every hook of every vendored chart has a decision
(chart-keys/hooks.tsv): a chart upgrade that brings a new hook fails here until someone
decides what the program does instead, and what the decisions say is checked on the
rendered stacks and against the table in docs/operations.md."""

import io
import re
import tarfile

from harness import ROOT
from hooks import DECISIONS, _scan_archive, archives, decisions, scan, template_of

from components.charts import PINNED_CHARTS

OPERATIONS = ROOT / "docs" / "operations.md"
BEGIN, END = "<!-- helm-hooks:begin -->", "<!-- helm-hooks:end -->"


def test_every_vendored_archive_is_scanned():
    names = {path.name for path in archives()}
    assert {chart.archive.name for chart in PINNED_CHARTS} <= names
    assert {t.chart for t in scan()} <= {name.removesuffix(".tgz") for name in names}


def test_every_hook_of_every_chart_has_one_decision():
    templates, table = scan(), decisions()
    assert templates and table
    undecided = [f"{t.chart} {t.path} {sorted(t.hooks)}" for t in templates if not any(d.covers(t) for d in table)]
    assert undecided == [], "decide in chart-keys/hooks.tsv what the program does instead of each"
    twice = [f"{t.chart} {t.path}" for t in templates if sum(d.covers(t) for d in table) > 1]
    assert twice == []
    stale = [f"{d.chart} {d.templates}" for d in table if not any(d.covers(t) for t in templates)]
    assert stale == [], "rows of chart-keys/hooks.tsv that match no hook any more"
    hooks = {(d.chart, d.templates): set().union(*(t.hooks for t in templates if d.covers(t))) for d in table}
    assert hooks == {(d.chart, d.templates): set(d.hooks) for d in table}


def test_a_hook_a_value_disables_never_renders(stack):
    """What Chart v4 would drop from this stack is only what the table says may render."""
    assert stack.hooks, "each stack renders a `helm test` Pod (Falcosidekick's or falco-exporter's)"
    table = decisions()
    rendered = {}
    for hook in stack.hooks:
        template = template_of(stack.releases[hook.source].chart.label, hook.body, scan())
        (decision,) = [d for d in table if d.covers(template)]
        rendered[str(hook)] = (template.path, decision.decision)
    assert {name: d for name, (_, d) in rendered.items() if d == "disabled"} == {}, rendered


def packed(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_scanner_finds_a_hook_in_a_packed_subchart():
    """A chart upgrade may bring its subcharts packed: their hooks are found all the same,
    and only the annotation itself counts (not hook-weight, not a values.yaml mention)."""
    job = b'kind: Job\nmetadata:\n  annotations:\n    "helm.sh/hook": pre-upgrade\n    "helm.sh/hook-weight": "1"\n'
    sub = packed({"sub/templates/job.yaml": job, "sub/values.yaml": b'note: "helm.sh/hook: x"\n'})
    top = packed({"top/charts/sub-1.0.0.tgz": sub, "top/templates/cm.yaml": b"kind: ConfigMap\n"})
    (found,) = _scan_archive("top-1.0.0", top)
    assert (found.path, set(found.hooks), set(found.kinds)) == (
        "top/charts/sub-1.0.0.tgz/sub/templates/job.yaml",
        {"pre-upgrade"},
        {"Job"},
    )


def docs_rows() -> list[tuple[str, str, frozenset[str], str, str]]:
    """The table between the helm-hooks markers of docs/operations.md, cells unescaped."""
    text = OPERATIONS.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"{OPERATIONS.name} needs one {BEGIN} ... {END} section"
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    rows = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    assert len(rows) > 2, "a header, its rule and a row per decision"
    found = []
    for line in rows[2:]:
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5, line
        chart, templates, hooks, decision, instead = cells
        bare = [c.replace("`", "") for c in (chart, templates, hooks, decision)]
        found.append((bare[0], bare[1], frozenset(h.strip() for h in bare[2].split(";")), bare[3], instead))
    return found


def test_the_operations_guide_shows_the_decisions():
    table = [(d.chart, d.templates, d.hooks, d.decision, d.instead) for d in decisions()]
    assert docs_rows() == table
    assert {d for _, _, _, d, _ in table} <= set(DECISIONS)
