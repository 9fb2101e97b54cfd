"""Strict schema validation of rendered objects, as the API server would apply them.

Built-in kinds are checked against the Kubernetes OpenAPI schemas that kubernetes-validate
ships (its ``-strict`` variants reject unknown fields, as ``kubectl --validate=strict``
does); custom resources against the ``openAPIV3Schema`` of the CRD rendered in the same
stack, made strict the same way. Validators are built once per kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import referencing
from rendering import KUBERNETES_VERSION, Obj

_SCHEMAS = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}.0-local-strict"


@cache
def _definitions() -> referencing.Registry:
    """The shared definitions, crawled once (an uncrawled registry re-crawls on every $ref)."""
    definitions = referencing.Resource.from_contents(json.loads((_SCHEMAS / "_definitions.json").read_text()))
    return referencing.Registry().with_resource("file://" + str(_SCHEMAS / "_definitions.json"), definitions).crawl()


@cache
def builtin_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """None for a kind the Kubernetes schemas do not define (a custom resource)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _SCHEMAS / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = (referencing.Resource.from_contents(schema) @ _definitions()).crawl()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def strict_structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema that rejects fields it does not declare.

    Kubernetes prunes undeclared fields silently (or warns); failing on them catches a
    misspelt key in a custom resource as strict validation of a built-in kind would.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: strict_structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = strict_structural(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict_structural(sub) for sub in value]
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "format"):
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_validators(crds: Iterable[Obj]) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for crd in crds:
        spec = crd.body["spec"]
        for version in spec["versions"]:
            schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
            validator = jsonschema.Draft7Validator(strict_structural(schema))
            validators[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = validator
    return validators


def schema_errors(objects: list[Obj]) -> list[str]:
    """Every schema violation of every object, or a note that its kind has no schema at all."""
    custom = crd_validators(o for o in objects if o.kind == "CustomResourceDefinition")
    problems = []
    for obj in objects:
        api_version = obj.body["apiVersion"]
        validator = builtin_validator(api_version, obj.kind) or custom.get((api_version, obj.kind))
        if validator is None:
            problems.append(f"{obj}: no schema for {api_version} {obj.kind} in Kubernetes {KUBERNETES_VERSION}")
            continue
        for error in validator.iter_errors(obj.body):
            path = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{obj}: {path}: {error.message[:300]}")
    return problems
