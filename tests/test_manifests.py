"""The Kubernetes manifests the program writes itself are valid for the cluster version."""

import kubernetes_validate
import pytest
from harness import run_program

KUBERNETES_VERSION = "1.33"  # minikube's default at the design's footprint measurements

CONFIGS = [{"profile": "current"}, {"profile": "tutorial"}]


# Kinds from CRDs, which the offline schemas do not cover; checked by the tests of what uses them.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["profile"])
def test_manifests_validate_strictly(config):
    manifests = run_program(config).manifests()
    assert manifests
    for manifest in manifests:
        if (manifest["apiVersion"], manifest["kind"]) not in CUSTOM_KINDS:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field():
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringdata": {}},
            KUBERNETES_VERSION,
            strict=True,
        )
