"""`pulumi preview` before a first deploy, and after a certificate renewal: every value a
provider computes is unknown, yet every chart must render in full.

Helm v4 ``Chart`` renders nothing during preview while any of its values is unknown
("Input properties have unknown values. Preview is incomplete."): a reviewer would see none
of that chart's objects, exactly when certificates change.
"""

import pytest
from harness import run_program
from pulumi.output import Unknown
from rendering import STACKS


@pytest.fixture(scope="module", params=sorted(STACKS))
def preview(request):
    stack, config = STACKS[request.param]
    return run_program(config, stack=stack, preview=True)


def test_the_preview_knows_nothing_a_provider_computes(preview):
    """The preview mode is real: certificates, keys and generated passwords are unknown."""
    secrets = preview.named("falco-mtls-secrets")
    assert secrets.unknown("objs"), "the mTLS Secrets' content is unknown before the certificates exist"
    assert preview.exports["mtlsCaCertPem"].value is None
    assert preview.exports["grafanaAdminPassword"].value is None


def test_every_chart_renders_in_a_preview(preview):
    charts = preview.charts()
    assert len(charts) >= 4
    for release, chart in charts.items():
        for key in ("chart", "name", "namespace", "values", "valueYamlFiles"):
            assert chart.unknown(key) == [], f"{release}: unknown at preview, Chart v4 would render nothing"


def test_the_restart_annotation_is_what_the_preview_leaves_open(preview):
    """The checksum rides on the rendered workload instead: unknown in this preview, so the
    workload shows as created (or, on renewal, updated) with the annotation to be computed."""
    falco = preview.charts()["falco"]
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "falco"},
        "spec": {"template": {"metadata": {}, "spec": {"containers": []}}},
    }
    props = preview.transformed(falco, "kubernetes:apps/v1:DaemonSet", "falco:falco/falco", daemon_set)
    assert list(props["spec"]["template"]["metadata"]["annotations"]) == ["checksum/mtls"]
    assert isinstance(props["spec"]["template"]["metadata"]["annotations"]["checksum/mtls"], Unknown)
