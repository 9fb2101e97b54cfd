"""Kubernetes objects this program writes itself, applied as one ConfigGroup per concern.

They are plain manifests (validated offline by the tests) applied through
``pulumi_kubernetes.yaml.v2.ConfigGroup``: each object still shows as its own resource in
``pulumi preview``, and importing the typed ``core.v1`` SDK module, which costs more
start-up time than the rest of the program together, is avoided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi_kubernetes.yaml.v2 import ConfigGroup

PART_OF = {"app.kubernetes.io/part-of": "runtime-defense", "app.kubernetes.io/managed-by": "pulumi"}


def metadata(name: str, namespace: pulumi.Input[str] | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**PART_OF, **labels}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace(
    name: str, labels: Mapping[str, str], annotations: Mapping[str, pulumi.Input[str]] | None = None
) -> dict[str, Any]:
    meta = metadata(name, **labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def secret(
    name: str,
    namespace: pulumi.Input[str],
    string_data: Mapping[str, pulumi.Input[str]],
    labels: Mapping[str, str] | None = None,
    type_: str = "Opaque",
) -> dict[str, Any]:
    """A Secret whose whole payload is a Pulumi secret, in state and in previews."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, namespace, **(labels or {})),
        "type": type_,
        "stringData": pulumi.Output.secret(dict(string_data)),
    }


def config_map(name: str, namespace: pulumi.Input[str], data: Mapping[str, pulumi.Input[str]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(name, namespace), "data": dict(data)}


def apply(name: str, objs: Sequence[Mapping[str, Any]], opts: pulumi.ResourceOptions) -> ConfigGroup:
    return ConfigGroup(name, objs=list(objs), opts=opts)
