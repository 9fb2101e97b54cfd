"""Every object a stack applies passes strict schema validation for Kubernetes 1.33: the
built-in kinds against Kubernetes' own schemas, custom resources against the CRDs the
stack installs. A misspelt field is an error here, not a field the API server drops."""

from rendering import Obj
from schemas import schema_errors


def test_every_object_validates_strictly(stack):
    assert schema_errors(stack.objects) == []


def test_a_misspelt_field_of_a_built_in_kind_is_an_error():
    secret = Obj("test", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringdata": {}})
    assert schema_errors([secret]) == [
        "Secret x (test): : Additional properties are not allowed ('stringdata' was unexpected)"
    ]


def test_a_misspelt_field_of_a_custom_resource_is_an_error(stack):
    crds = stack.of_kind("CustomResourceDefinition")
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x", "namespace": "falco"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
    }
    assert schema_errors([*crds, Obj("test", monitor)]) == [
        "ServiceMonitor falco/x (test): spec.endpoints.0: Additional properties are not allowed "
        "('intervall' was unexpected)"
    ]


def test_a_custom_resource_without_its_crd_is_an_error():
    rule = Obj("test", {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})
    assert schema_errors([rule]) == ["Widget x (test): no schema for example.com/v1 Widget in Kubernetes 1.33"]
