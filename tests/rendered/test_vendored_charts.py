"""The charts the program deploys are the vendored archives the pin table names, byte for byte."""

import hashlib

import pytest
from chart_keys import chart_metadata
from harness import ROOT

from components.charts import PINNED_CHARTS, VENDORED


@pytest.mark.parametrize("chart", PINNED_CHARTS, ids=lambda c: c.label)
def test_each_archive_has_the_pinned_digest(chart):
    assert hashlib.sha256((ROOT / chart.archive).read_bytes()).hexdigest() == chart.sha256


@pytest.mark.parametrize("chart", PINNED_CHARTS, ids=lambda c: c.label)
def test_each_archive_is_the_pinned_chart_and_version(chart):
    metadata = chart_metadata(chart)
    assert (metadata["name"], metadata["version"]) == (chart.name, chart.version)


def test_every_vendored_archive_is_pinned():
    assert sorted(p.name for p in (ROOT / VENDORED).glob("*.tgz")) == sorted(c.archive.name for c in PINNED_CHARTS)


def test_the_program_deploys_every_chart_from_its_archive_without_a_repository(stack):
    charts = stack.run.charts()
    assert charts
    for release, registration in charts.items():
        inputs = registration.plain_inputs()
        assert inputs["chart"] == str(stack.releases[release].chart.archive)
        assert "repositoryOpts" not in inputs and "version" not in inputs, release
