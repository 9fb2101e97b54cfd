"""Restarting the pods a chart renders when something they read only at start changes.

Charts restart their pods on a change of their own configuration through a checksum
annotation on the pod template. For what a chart does not see (the certificates it mounts,
a Secret of the program's), the program puts such an annotation on the rendered workload
with a transform, not a chart value: the checksum may be unknown in a preview (a new
certificate), and Helm v4 Chart renders nothing while any of its values is unknown. The
engine applies the transform to the rendered object, which then previews as an update of
that one annotation; a first deploy creates the pods with it already set.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi


def sha256_of(*texts: pulumi.Input[str]) -> pulumi.Output[str]:
    """The sha256 of the texts joined, secret if any of them is."""
    return pulumi.Output.all(*texts).apply(lambda parts: hashlib.sha256("".join(parts).encode()).hexdigest())


def restart_when_changed(
    kind: str, name: str, annotation: str, checksum: pulumi.Input[str]
) -> pulumi.ResourceTransform:
    """A transform for the Chart that renders the apps/v1 ``kind``/``name``: it sets
    ``annotation`` to ``checksum`` on that workload's pod template."""
    type_ = f"kubernetes:apps/v1:{kind}"

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        props = dict(args.props)
        metadata = props.get("metadata")
        if args.type_ != type_ or not isinstance(metadata, dict) or metadata.get("name") != name:
            return None
        return pulumi.ResourceTransformResult(props=with_pod_annotation(props, annotation, checksum), opts=args.opts)

    return transform


def with_pod_annotation(workload: dict[str, Any], annotation: str, value: pulumi.Input[str]) -> dict[str, Any]:
    """``workload`` (an apps/v1 object) with ``annotation`` set on its pod template."""
    spec = workload["spec"]
    template = spec.get("template") or {}
    metadata = template.get("metadata") or {}
    annotations = {**(metadata.get("annotations") or {}), annotation: value}
    return {
        **workload,
        "spec": {**spec, "template": {**template, "metadata": {**metadata, "annotations": annotations}}},
    }
