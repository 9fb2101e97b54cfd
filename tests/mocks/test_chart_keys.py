"""Every Helm value the program sets is a key the vendored chart version knows."""

import pytest
from chart_keys import archive_files, chart_index, template_keys, unknown_keys
from harness import Secret, environment_config, run_program

from components.charts import KUBE_PROMETHEUS_STACK, LOKI, LOKI_STACK, PINNED_CHARTS

CONFIGS = {
    "current": {"profile": "current"},
    "prod": {**environment_config("prod"), "lokiS3AccessKeyId": Secret("id"), "lokiS3SecretAccessKey": Secret("key")},
    "tutorial": {"profile": "tutorial", "logging": {"storageClass": "fast"}},
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
BY_ARCHIVE = {str(chart.archive): chart for chart in PINNED_CHARTS}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def run(request):
    return run_program(CONFIGS[request.param])


def test_every_value_set_is_a_key_of_the_pinned_chart(run):
    charts = run.charts()
    assert charts
    for release, chart in charts.items():
        assert unknown_keys(BY_ARCHIVE[chart.plain("chart")], chart.plain("values")) == [], release


def test_the_check_catches_misspelt_and_misshapen_keys():
    values = {
        "alertmanager": {"enabeld": False},  # misspelt
        "grafana": {"persistence": {"size": "1Gi"}, "sidecar": {"dashboards": {"searchNamespace": "ALL"}}},
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


def test_subchart_keys_are_checked_against_the_bundled_subchart():
    assert "grafana.persistence.size" in chart_index(KUBE_PROMETHEUS_STACK)  # grafana 12.11.1
    assert "kube-state-metrics.resources" in chart_index(KUBE_PROMETHEUS_STACK)  # kube-state-metrics 8.4.0
    assert "promtail.resources" in chart_index(LOKI_STACK)  # promtail 6.17.1
    assert "rollout_operator.enabled" in chart_index(LOKI)  # under its alias, as Helm passes it
    assert unknown_keys(LOKI_STACK, {"promtail": {"resourcez": {}}}) == [
        "loki-stack-2.10.3: promtail.resourcez is not a key of the chart"
    ]


def test_each_template_key_is_really_read_by_its_template():
    """The list of keys read only by templates stays honest: each is really absent from the
    chart's values.yaml, or there a map with example keys that the template takes whole (else
    it does not belong here), and really read where it says."""
    labels = {chart.label: chart for chart in PINNED_CHARTS}
    for (label, path), (template, expression) in template_keys().items():
        chart = labels[label]
        kind = chart_index(chart).get(path)
        assert kind in (None, "map"), f"{label}: {path} is a {kind} in values.yaml; drop it from template-keys.tsv"
        assert expression in archive_files(chart)[f"{chart.name}/{template}"].decode(), f"{label}: {template}"
