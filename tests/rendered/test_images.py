"""Every container the cluster runs uses exactly the image its chart's pin names
(components/charts.py): a chart default that drifts from the pin, or a value that fails to
reach the template, shows here."""

from components.charts import FALCO_EXPORTER, FALCOSIDEKICK


def running_images(stack):
    for workload in stack.workloads():
        for container in workload.containers():
            yield workload, container["image"]


def test_every_image_is_its_charts_pin(stack):
    unpinned = []
    for workload, image in running_images(stack):
        release = stack.releases.get(workload.owner.source)
        pins = release.chart.images if release else ()
        if image not in pins:
            unpinned.append(f"{workload.owner}: {image} (pinned: {', '.join(pins) or 'nothing'})")
    assert unpinned == []


def test_falcosidekick_and_falco_exporter_run_the_versions_the_metric_notes_cite(stack):
    images = {image for _, image in running_images(stack)}
    if stack.profile == "current":
        assert "docker.io/falcosecurity/falcosidekick:2.32.0" in images
        assert FALCOSIDEKICK.tag("docker.io/falcosecurity/falcosidekick") == "2.32.0"
    else:
        assert "docker.io/falcosecurity/falco-exporter:0.8.7" in images
        assert FALCO_EXPORTER.tag("docker.io/falcosecurity/falco-exporter") == "0.8.7"
