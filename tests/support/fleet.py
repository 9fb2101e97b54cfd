"""The committed fleet, as the clusters receive it: the hub (Pulumi.hub.yaml) and its two spokes
(Pulumi.spoke-a.yaml, Pulumi.spoke-b.yaml), each spoke's StackReference answered with the hub's
real exports (secret ones marked secret), each stack rendered once per session."""

from __future__ import annotations

from typing import Any

from harness import Secret, environment_config, stack_reference
from rendering import RenderedStack, render_config

HUB_STACK = "organization/runtime-defense/hub"  # what the spokes' fleet.hubStack names
SPOKES = ("spoke-a", "spoke-b")


def hub_config() -> dict[str, Any]:
    return {
        **environment_config("hub"),
        "lokiS3AccessKeyId": Secret("AKIAEXAMPLE"),
        "lokiS3SecretAccessKey": Secret("wJalrXUtnFEMI/EXAMPLEKEY"),
    }


def hub() -> RenderedStack:
    return render_config("hub", "hub", hub_config())


def spoke(name: str) -> RenderedStack:
    return render_config(name, name, environment_config(name), reads=stack_reference(hub().run, HUB_STACK))
