"""The policy pack as the Pulumi engine drives it, without the CLI.

Each resource reaches the pack's own analyzer service (``pulumi_policy``'s gRPC servicer, the
one ``PolicyPack`` serves to the engine) as an ``AnalyzeRequest``: its type token, its
properties as a protobuf ``Struct`` with secrets as signature objects and values unknown at
preview as the engine's unknown sentinel, its URN and name. What a Helm v4 Chart and a
ConfigGroup register is modelled on pulumi-kubernetes (``provider/pkg/provider/helm/v4/chart.go``,
``provider/pkg/provider/yaml/v2/yaml.go``): the component itself with no inputs, then each
rendered object as a resource of its own whose inputs are the manifest, ``data`` and
``stringData`` of a Secret marked secret.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from harness import CHART, CONFIG_GROUP, ROOT, ProgramRun, kubernetes_type
from pulumi.output import Unknown
from pulumi.runtime import proto, rpc
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer

sys.path.insert(0, str(ROOT / "policy"))
import rules

SECRET_SIG = {rpc._special_sig_key: rpc._special_secret_sig}
MANDATORY, ADVISORY = proto.MANDATORY, proto.ADVISORY


@dataclass(frozen=True)
class Resource:
    """One resource as the engine registers it."""

    type: str
    name: str
    props: dict[str, Any]

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::runtime-defense::{self.type}::{self.name}"


@dataclass(frozen=True)
class Finding:
    policy: str
    level: int
    message: str
    urn: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.message.splitlines()[-1]}"


def on_the_wire(value: Any) -> Any:
    """A value as the engine marshals it for an analyzer."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if rpc.is_rpc_secret(value):
        return {**SECRET_SIG, "value": on_the_wire(rpc.unwrap_rpc_secret(value))}
    if isinstance(value, dict):
        return {k: on_the_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [on_the_wire(v) for v in value]
    return value


def secret(value: Any) -> dict[str, Any]:
    return {**SECRET_SIG, "value": value}


def kubernetes_object(body: dict[str, Any], prefix: str) -> Resource:
    """A rendered object as Chart v4 or ConfigGroup registers it."""
    body = copy.deepcopy(body)
    if body.get("apiVersion") == "v1" and body.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if key in body and not rpc.is_rpc_secret(body[key]):
                body[key] = secret(body[key])
    metadata = body.get("metadata") or {}
    where = f"{metadata['namespace']}/" if isinstance(metadata.get("namespace"), str) else ""
    return Resource(kubernetes_type(body["apiVersion"], body["kind"]), f"{prefix}:{where}{metadata.get('name')}", body)


def stack_resources(run: ProgramRun, rendered: Iterable[Any] = ()) -> list[Resource]:
    """Everything a stack registers: its Charts and ConfigGroups with no inputs, the objects
    they register (``rendered``: Obj of tests/support/rendering.py, chart objects; the
    ConfigGroups' objects come from ``run``, unknowns and secrets kept), and every other
    resource with its inputs."""
    resources = []
    for registration in run.resources:
        if registration.type in (CHART, CONFIG_GROUP):
            resources.append(Resource(registration.type, registration.name, {}))
            if registration.type == CONFIG_GROUP:
                objs = registration.inputs.get("objs")
                objs = rpc.unwrap_rpc_secret(objs) if rpc.is_rpc_secret(objs) else objs
                resources += [kubernetes_object(obj, registration.name) for obj in objs]
        else:
            resources.append(Resource(registration.type, registration.name, registration.inputs))
    resources += [kubernetes_object(obj.body, obj.source) for obj in rendered if obj.source != "program"]
    return resources


def servicer() -> _PolicyAnalyzerServicer:
    return _PolicyAnalyzerServicer("runtime-defense", "0.0.1", rules.POLICIES, EnforcementLevel.ADVISORY)


def _struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(on_the_wire(props))
    return struct


def _findings(response: Any) -> list[Finding]:
    return [Finding(d.policyName, d.enforcementLevel, d.message, d.urn) for d in response.diagnostics]


def analyze(
    resource: Resource, pack: _PolicyAnalyzerServicer | None = None, properties: struct_pb2.Struct | None = None
) -> list[Finding]:
    """What the pack reports on one resource (``Analyze``), with the URN filled in."""
    request = proto.AnalyzeRequest(
        type=resource.type,
        properties=properties or _struct(resource.props),
        urn=resource.urn,
        name=resource.name,
    )
    return [
        Finding(f.policy, f.level, f.message, f.urn or resource.urn)
        for f in _findings((pack or servicer()).Analyze(request, None))
    ]


# What the pack reported on each CRD: the same chart's CRDs, megabytes each, reach every stack
# alike, and a resource's findings depend on nothing but its type, name and properties.
_CRD_FINDINGS: dict[tuple[str, str, bytes], list[Finding]] = {}


def _analyzed(resource: Resource, pack: _PolicyAnalyzerServicer, properties: struct_pb2.Struct) -> list[Finding]:
    if not resource.type.endswith(":CustomResourceDefinition"):
        return analyze(resource, pack, properties)
    key = (resource.type, resource.name, properties.SerializeToString(deterministic=True))
    if key not in _CRD_FINDINGS:
        _CRD_FINDINGS[key] = [
            Finding(f.policy, f.level, f.message, "" if f.urn == resource.urn else f.urn)
            for f in analyze(resource, pack, properties)
        ]
    return [Finding(f.policy, f.level, f.message, f.urn or resource.urn) for f in _CRD_FINDINGS[key]]


def analyze_stack(
    resources: list[Resource], pack: _PolicyAnalyzerServicer | None = None, stack_only: bool = False
) -> list[Finding]:
    """What the pack reports on a whole stack: each resource, then the stack policies (only
    those with ``stack_only``)."""
    pack = pack or servicer()
    # Each resource's properties marshalled once, for both requests (CRDs are megabytes).
    structs = [_struct(r.props) for r in resources]
    found = [] if stack_only else [f for r, s in zip(resources, structs, strict=True) for f in _analyzed(r, pack, s)]
    request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(type=r.type, properties=s, urn=r.urn, name=r.name)
            for r, s in zip(resources, structs, strict=True)
        ]
    )
    return found + _findings(pack.AnalyzeStack(request, None))


def mandatory(findings: list[Finding]) -> list[str]:
    return sorted(str(f) for f in findings if f.level == MANDATORY)
