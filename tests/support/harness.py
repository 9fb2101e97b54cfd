"""Runs the whole Pulumi program under Pulumi's mocks and records what it registers.

The program (``__main__.py``) is executed with ``runpy`` exactly as the Pulumi CLI would
run it, after ``pulumi.runtime.set_mocks``. Every registration is recorded with its type,
name, inputs (secrets still marked), parent, provider and dependencies, and the stack's
exports are resolved with their secretness.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "runtime-defense"
CHART = "kubernetes:helm.sh/v4:Chart"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    parent: str
    provider: str
    providers: dict[str, str]
    dependencies: list[str]
    custom: bool
    transforms: int = 0  # transforms registered on the resource (the mock monitor does not run them)

    def plain(self, key: str) -> Any:
        """An input with every secret marker removed (see ``reveal``)."""
        return reveal(self.inputs.get(key))

    def secret(self, key: str) -> bool:
        return contains_secret(self.inputs.get(key))

    def plain_inputs(self) -> dict[str, Any]:
        return reveal(self.inputs)


def reveal(value: Any) -> Any:
    """``value`` without secret markers, and with text assets as their text."""
    if rpc.is_rpc_secret(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, pulumi.StringAsset):
        return value.text
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if rpc.is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


Emulator = Callable[[pulumi.runtime.MockResourceArgs], "dict[str, Any] | None"]


class ProgramMocks(pulumi.runtime.Mocks):
    """Echoes inputs as outputs, plus what providers compute (password results, and, when an
    emulator is given, real keys and certificates for pulumi-tls resources)."""

    def __init__(self, emulators: Iterable[Emulator] = (), reads: Mapping[tuple[str, str], dict] | None = None):
        self.emulators = list(emulators)
        self.reads = dict(reads or {})  # (type, id) -> state of an existing resource read with .get()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id:
            return args.resource_id, self.reads[(args.typ, args.resource_id)]
        outputs = dict(args.inputs)
        for emulate in self.emulators:
            computed = emulate(args)
            if computed is not None:
                outputs.update(computed)
                break
        else:
            if args.typ == "random:index/randomPassword:RandomPassword":
                digest = hashlib.sha256(args.name.encode()).hexdigest()
                outputs["result"] = digest[: int(args.inputs.get("length", 16))]
            elif args.typ.startswith("tls:index/"):
                outputs.update(fake_tls_outputs(args))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def fake_tls_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """Stable stand-ins for pulumi-tls outputs, for tests that do not need real PKI."""
    tag = f"{args.typ.rsplit(':', 1)[-1]} {args.name}"
    pem = lambda kind: f"-----BEGIN {kind}-----\n{tag}\n-----END {kind}-----\n"  # noqa: E731
    if args.typ == "tls:index/privateKey:PrivateKey":
        return {"privateKeyPem": pem("PRIVATE KEY"), "publicKeyPem": pem("PUBLIC KEY")}
    if args.typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": pem("CERTIFICATE REQUEST")}
    # Issued at a fixed moment, valid for the hours asked, as RFC 3339 like the provider.
    issued = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    hours = int(reveal(args.inputs.get("validityPeriodHours", 0)))
    return {
        "certPem": pem("CERTIFICATE"),
        "validityStartTime": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "validityEndTime": (issued + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: ProgramMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    provider=request.provider,
                    providers=dict(request.providers),
                    dependencies=list(request.dependencies),
                    custom=request.custom,
                    transforms=len(request.transforms),
                )
            )
        return response

    def ReadResource(self, request):
        """A read of an existing resource (``Resource.get``), recorded like a registration."""
        response = super().ReadResource(request)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs={"id": request.id},
                parent=request.parent,
                provider=request.provider,
                providers={},
                dependencies=list(request.dependencies),
                custom=True,
            )
        )
        return response


@dataclass
class Export:
    value: Any
    secret: bool


@dataclass
class ProgramRun:
    resources: list[Registration]
    exports: dict[str, Export] = field(default_factory=dict)
    error: BaseException | None = None

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registration:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def charts(self) -> dict[str, Registration]:
        return {r.plain("name"): r for r in self.of_type(CHART)}

    def chart_values(self, release: str) -> dict[str, Any]:
        return self.charts()[release].plain("values")

    def manifests(self) -> list[dict[str, Any]]:
        return [obj for group in self.of_type(CONFIG_GROUP) for obj in group.plain("objs")]

    def manifest(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.manifests() if m["kind"] == kind and m["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
        return found[0]


class Secret(str):
    """A config value the test stores as a secret (`pulumi config set --secret`)."""


# What every test stack has unless the test says otherwise (None removes a key).
BASE_CONFIG: dict[str, Any] = {"grafana": {"url": "http://192.168.49.2:30300"}}


def stack_file_config(stack: str) -> dict[str, Any]:
    """The program's keys of a committed stack file (Pulumi.<stack>.yaml), without the prefix."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items() if key.startswith(f"{PROJECT}:")}


def stack_config(values: Mapping[str, Any]) -> dict[str, str]:
    """Config as the CLI hands it to a program: namespaced keys, objects as JSON."""
    return {f"{PROJECT}:{key}": value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def run_program(
    config: Mapping[str, Any],
    *,
    secret_keys: Iterable[str] = (),
    stack: str = "dev",
    emulators: Iterable[Emulator] = (),
    reads: Mapping[tuple[str, str], dict] | None = None,
    expect_error: bool = False,
) -> ProgramRun:
    """Evaluate ``__main__.py`` with ``config`` (keys without the project prefix).

    With ``expect_error`` the program's exception is returned in ``error`` together with
    whatever was registered before it, instead of being raised.
    """
    config = {k: v for k, v in {**BASE_CONFIG, **config}.items() if v is not None}
    secret_keys = [*secret_keys, *(k for k, v in config.items() if isinstance(v, Secret))]
    settings.ROOT.set(None)
    set_all_config(stack_config(config), [f"{PROJECT}:{k}" for k in secret_keys])
    monitor = RecordingMonitor(ProgramMocks(emulators, reads))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    except Exception as error:
        if not expect_error:
            raise
        return ProgramRun(resources=monitor.registrations, error=error)
    assert not expect_error, "the program was expected to fail"
    stack_resource = settings.get_root_resource()
    assert stack_resource is not None
    exports = {}
    for key, value in stack_resource.outputs.items():
        output = pulumi.Output.from_input(value)
        exports[key] = Export(
            value=_sync_await(output.future()),
            secret=bool(_sync_await(output.is_secret())),
        )
    return ProgramRun(resources=monitor.registrations, exports=exports)
