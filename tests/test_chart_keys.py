"""Every Helm value the program sets is a key the pinned chart version knows."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from chart_keys import INDEX_DIR, chart_index, template_keys, unknown_keys
from harness import ROOT, Secret, run_program, stack_file_config

from components.charts import LOKI, PINNED_CHARTS, PinnedChart

sys.path.insert(0, str(ROOT / "scripts"))
import chart_key_index

SHARED_CHARTS = ROOT.parent / "shared" / "charts"
needs_shared = pytest.mark.skipif(
    not SHARED_CHARTS.is_dir(), reason="../shared/charts (upstream values of the pinned charts) is not beside the repo"
)

CONFIGS = {
    "current": {"profile": "current"},
    "prod": {**stack_file_config("prod"), "lokiS3AccessKeyId": Secret("id"), "lokiS3SecretAccessKey": Secret("key")},
    "tutorial": {"profile": "tutorial"},
    "current-existing-monitoring": {
        "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090", "serviceMonitors": True},
        "grafanaToken": Secret("glsa_token"),
        "logging": {"storageClass": "fast", "storageSize": "20Gi", "retention": "30d"},
    },
    "tutorial-existing-monitoring": {
        "profile": "tutorial",
        "monitoring": {"deploy": False, "prometheusUrl": "http://prometheus.metrics:9090"},
        "grafanaToken": Secret("glsa_token"),
    },
}


def pinned(chart_name: str, version: str) -> PinnedChart:
    return next(c for c in PINNED_CHARTS if c.name == chart_name and c.version == version)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request):
    return run_program(CONFIGS[request.param])


def test_every_value_set_is_a_key_of_the_pinned_chart(run):
    charts = run.charts()
    assert charts
    for release, chart in charts.items():
        spec = pinned(chart.plain("chart"), chart.plain("version"))
        assert unknown_keys(spec, chart.plain("values")) == [], release


def test_the_check_catches_misspelt_and_misshapen_keys():
    from components.charts import KUBE_PROMETHEUS_STACK

    values = {
        "alertmanager": {"enabeld": False},  # misspelt
        "grafana": {"service": {"nodePort": 30300}, "sidecar": {"dashboards": {"searchNamespace": "ALL"}}},
        "prometheus": {"prometheusSpec": {"retention": {"days": 7}}},  # a string in values.yaml
        "prometheusOperator": {"resources": {"requests": {"cpu": "1m"}}},  # free-form: fine
        "commonLabels": {"team": "security"},  # free-form: fine
        "crds": "yes",  # a map in values.yaml
    }
    assert unknown_keys(KUBE_PROMETHEUS_STACK, values) == [
        "kube-prometheus-stack-88.5.3: alertmanager.enabeld is not a key of the chart",
        "kube-prometheus-stack-88.5.3: prometheus.prometheusSpec.retention is a string in values.yaml, set as a map",
        "kube-prometheus-stack-88.5.3: crds is a map in values.yaml, set as str",
    ]


def test_subchart_keys_are_checked_against_the_subchart():
    from components.charts import KUBE_PROMETHEUS_STACK, LOKI_STACK

    assert "grafana.persistence.size" in chart_index(KUBE_PROMETHEUS_STACK)  # grafana 12.11.1 values.yaml
    assert "promtail.resources" in chart_index(LOKI_STACK)  # promtail 6.17.1 values.yaml
    assert unknown_keys(LOKI_STACK, {"promtail": {"resourcez": {}}}) == [
        "loki-stack-2.10.3: promtail.resourcez is not a key of the chart"
    ]


def test_every_pinned_chart_and_indexed_subchart_has_an_index():
    names = {c.key_index for c in PINNED_CHARTS} | {s for c in PINNED_CHARTS for s in c.subcharts.values()}
    assert names == {p.stem for p in INDEX_DIR.glob("*.keys")}


def test_template_keys_name_a_pinned_chart_and_a_template():
    pinned_names = {c.key_index for c in PINNED_CHARTS}
    for (chart, path), template in template_keys().items():
        assert chart in pinned_names, chart
        assert "templates/" in template and path, (chart, path)


@needs_shared
@pytest.mark.parametrize("index", sorted(p.stem for p in INDEX_DIR.glob("*.keys")))
def test_indexes_match_the_upstream_values(index):
    values = yaml.safe_load((SHARED_CHARTS / index / "values.yaml").read_text())
    regenerated = "".join(line + "\n" for line in sorted(chart_key_index.index_lines(values)))
    assert (INDEX_DIR / f"{index}.keys").read_text() == regenerated


@needs_shared
def test_loki_values_satisfy_the_charts_schema():
    import jsonschema

    chart_dir = SHARED_CHARTS / LOKI.key_index
    schema = json.loads((chart_dir / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for config in ({"profile": "current"}, CONFIGS["current-existing-monitoring"], CONFIGS["prod"]):
        values = run_program(config).chart_values("loki")
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(deep_merge(defaults, values)))
        assert errors == [], [e.message for e in errors]


def deep_merge(base: dict, override: dict) -> dict:
    """How Helm merges user values over the chart's defaults."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = deep_merge(base[key], value)
        else:
            merged[key] = value
    return merged


@needs_shared
@pytest.mark.parametrize("chart", PINNED_CHARTS, ids=lambda c: c.key_index)
def test_the_pinned_table_matches_the_charts_metadata(chart):
    metadata = yaml.safe_load((SHARED_CHARTS / chart.key_index / "Chart.yaml").read_text())
    assert (metadata["name"], metadata["version"], str(metadata["appVersion"])) == (
        chart.name,
        chart.version,
        chart.app_version,
    )


def test_index_script_writes_what_the_checker_reads(tmp_path: Path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text("a:\n  b.c: 1\n  d: {}\nlist: [1]\nnothing:\n")
    assert chart_key_index.main(["chart_key_index.py", str(values)]) == 0
    assert capsys.readouterr().out == "a\tmap\na.b\\.c\tnumber\na.d\t{}\nlist\tlist\nnothing\tnull\n"
