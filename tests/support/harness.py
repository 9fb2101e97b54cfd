"""Runs the whole Pulumi program under Pulumi's mocks and records what it registers.

The program (``__main__.py``) is executed with ``runpy`` exactly as the Pulumi CLI would
run it, after ``pulumi.runtime.set_mocks``. Every registration is recorded with its type,
name, inputs (secrets still marked, and, in a preview, values not yet known as
``pulumi.output.Unknown``), parent, provider, dependencies and transforms, and the stack's
exports are resolved with their secretness.

``run_program(..., preview=True)`` evaluates the program as `pulumi preview` does before a
first deploy: every resource is new, so what its provider computes (keys, certificates,
generated passwords, IDs) is unknown, and everything derived from it stays unknown.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import logging
import os
import runpy
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
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
    # The transforms themselves, to apply by hand (``ProgramRun.transformed``).
    transform_functions: list[Callable[[pulumi.ResourceTransformArgs], Any]] = field(default_factory=list)

    def plain(self, key: str) -> Any:
        """An input with every secret marker removed (see ``reveal``)."""
        return reveal(self.inputs.get(key))

    def secret(self, key: str) -> bool:
        return contains_secret(self.inputs.get(key))

    def plain_inputs(self) -> dict[str, Any]:
        return reveal(self.inputs)

    def unknown(self, key: str) -> list[str]:
        """Paths under the input ``key`` whose value is not known (only ever in a preview)."""
        return unknown_paths(self.inputs.get(key), key)


def kubernetes_type(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes object, as Chart v4 and ConfigGroup register it:
    ``v1``/``ConfigMap`` -> ``kubernetes:core/v1:ConfigMap``."""
    return f"kubernetes:{'core/' if '/' not in api_version else ''}{api_version}:{kind}"


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


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths of the unknown values inside ``value``."""
    if isinstance(value, Unknown):
        return [path]
    if rpc.is_rpc_secret(value):
        return unknown_paths(rpc.unwrap_rpc_secret(value), path)
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return []


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
    emulator is given, real keys and certificates for pulumi-tls resources).

    With ``preview`` every registered resource is new and its provider has not run: what it
    would compute, and its ID, are unknown (as the engine reports them in `pulumi preview`).
    """

    def __init__(
        self,
        emulators: Iterable[Emulator] = (),
        reads: Mapping[tuple[str, str], dict] | None = None,
        preview: bool = False,
    ):
        self.emulators = list(emulators)
        self.reads = dict(reads or {})  # (type, id) -> state of an existing resource read with .get()
        self.preview = preview

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id:
            return args.resource_id, self.reads[(args.typ, args.resource_id)]
        outputs = {key: _unknown_to_wire(value) for key, value in args.inputs.items()}
        computed: dict[str, Any] = {}
        for emulate in self.emulators:
            emulated = emulate(args)
            if emulated is not None:
                computed = emulated
                break
        else:
            if args.typ == "random:index/randomPassword:RandomPassword":
                digest = hashlib.sha256(args.name.encode()).hexdigest()
                result = digest[: int(args.inputs.get("length", 16))]
                computed = {"result": result, "bcryptHash": bcrypt_hash(result, args.name)}
            elif args.typ.startswith("tls:index/"):
                computed = fake_tls_outputs(args)
        if self.preview:
            return "", {**outputs, **dict.fromkeys(computed, rpc.UNKNOWN)}
        return f"{args.name}-id", {**outputs, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def bcrypt_hash(password: str, name: str) -> str:
    """A real bcrypt hash of ``password``, as the random provider's ``bcrypt_hash`` (cost 4, not
    the provider's 10, for speed; a salt from ``name``, so that runs repeat)."""
    import bcrypt

    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    seed = hashlib.sha256(name.encode()).digest()
    salt = "".join(alphabet[byte % 64] for byte in seed[:21]) + "O"  # 22 characters, the last of 4 bits
    return bcrypt.hashpw(password.encode(), f"$2b$04${salt}".encode()).decode()


def stack_reference(run: ProgramRun, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What ``pulumi.StackReference(name)`` reads when ``name`` is the stack ``run`` evaluated:
    its exports, those exported as secrets listed as such (for ``run_program(reads=...)``)."""
    return {
        ("pulumi:pulumi:StackReference", name): {
            "name": name,
            "outputs": {key: export.value for key, export in run.exports.items()},
            "secretOutputNames": [key for key, export in run.exports.items() if export.secret],
        }
    }


def _unknown_to_wire(value: Any) -> Any:
    """An input echoed as an output, its unknown parts as the engine's unknown sentinel."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _unknown_to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown_to_wire(v) for v in value]
    return value


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
                    transform_functions=pulumi_mocks._resolve_callbacks(request.transforms),
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

    def transformed(self, owner: Registration, type_: str, name: str, props: dict[str, Any]) -> dict[str, Any]:
        """``props`` of a child of ``owner`` (an object a Chart or ConfigGroup registers) after
        the transforms of ``owner`` and its ancestors, as the engine applies them; outputs in
        the result are resolved (``Unknown`` where unknown, as in a preview)."""
        return _sync_await(_resolve(self.apply_transforms(owner, type_, name, props)[0]))

    def apply_transforms(
        self, owner: Registration, type_: str, name: str, props: dict[str, Any], custom: bool = True
    ) -> tuple[dict[str, Any], pulumi.ResourceOptions]:
        """(props, options) of a resource registered below ``owner`` after the transforms of
        ``owner`` and its ancestors (the mock monitor does not run them)."""
        by_urn = {r.urn: r for r in self.resources}
        chain, registration = [], owner
        while registration is not None:
            chain.append(registration)
            registration = by_urn.get(registration.parent)
        opts = pulumi.ResourceOptions()
        for registration in chain:
            for transform in registration.transform_functions:
                args = pulumi.ResourceTransformArgs(custom=custom, type_=type_, name=name, props=props, opts=opts)
                result = transform(args)
                if result is not None:
                    props, opts = result.props, result.opts or opts
        return props, opts


async def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        return await value.future() if await value.is_known() else Unknown()
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [await _resolve(v) for v in value]
    return value


async def _settle() -> None:
    """Runs to its end what a failed program left pending (registrations waiting on the output
    that failed, other outputs), its own failures ignored (the program's error is the one
    reported), so that nothing of it is still running, or failing, in the next evaluation."""
    manager = settings._get_rpc_manager()
    while True:
        try:
            await wait_for_rpcs()
        except Exception:
            manager.unhandled_exception = None
            manager.exception_traceback = None
            continue
        return


class Secret(str):
    """A config value the test stores as a secret (`pulumi config set --secret`)."""


# What every test stack has unless the test says otherwise (None removes a key). Grafana's
# URL is not among them: the program derives the baseline's from the kubeconfig below. An
# existing Grafana's (monitoring.deploy false) cannot be derived: such a stack gets this one.
BASE_CONFIG: dict[str, Any] = {}
EXISTING_GRAFANA_URL = "https://grafana.example.com"

# The kubeconfig every evaluation reads through $KUBECONFIG unless a test gives another
# environment: minikube's, whose API server is at 192.168.49.2. No test reads yours.
KUBECONFIG = ROOT / "tests" / "support" / "minikube.kubeconfig"
BASE_ENVIRONMENT: dict[str, str | None] = {"KUBECONFIG": str(KUBECONFIG)}
ENVIRONMENTS = ("dev", "prod")


def environment_config(stack: str) -> dict[str, Any]:
    """The program's keys of an environment, without the prefix, from its committed
    Pulumi.<stack>.yaml (the CLI hands the program nothing else)."""
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.removeprefix(f"{PROJECT}:"): value for key, value in config.items() if key.startswith(f"{PROJECT}:")}


@contextlib.contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None unsets a variable) for the duration."""
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
    preview: bool = False,
    environ: Mapping[str, str | None] | None = None,
) -> ProgramRun:
    """Evaluate ``__main__.py`` with ``config`` (keys without the project prefix), in the
    environment ``BASE_ENVIRONMENT`` updated with ``environ``.

    With ``expect_error`` the program's exception is returned in ``error`` together with
    whatever was registered before it, instead of being raised. With ``preview`` the program
    runs as in `pulumi preview` of a stack with no resources yet (see ``ProgramMocks``).

    The same evaluation asked for again (same config, secrets, stack, reads and mode, in the
    base environment, with no emulator, whose keys are new each time) is answered with a copy
    of the first one's result: the program is deterministic there, and many tests start from
    the same stacks.
    """
    key = None
    if not emulators and environ is None and not expect_error:
        key = json.dumps(
            [_marked(config), sorted(secret_keys), stack, sorted(map(list, (reads or {}).items())), preview],
            sort_keys=True,
            default=repr,
        )
        if key in _EVALUATED:
            first, said = _EVALUATED[key]
            for level, message in said:  # what the program logged, logged again
                PROGRAM_LOG.log(level, message)
            return copy.deepcopy(first)
    said = []
    recording = _Recording(said)
    PROGRAM_LOG.addHandler(recording)
    try:
        run = _evaluate(config, secret_keys, stack, emulators, reads, expect_error, preview, environ)
    finally:
        PROGRAM_LOG.removeHandler(recording)
    if key is not None:
        _EVALUATED[key] = (copy.deepcopy(run), said)
    return run


_EVALUATED: dict[str, tuple[ProgramRun, list[tuple[int, str]]]] = {}
# Where the program's `pulumi.log` messages go under the mocks (the engine's diagnostics in a
# real run); they propagate to the root logger, where pytest's caplog sees them.
PROGRAM_LOG = logging.getLogger("pulumi.program")
PROGRAM_LOG.setLevel(logging.DEBUG)


class _Recording(logging.Handler):
    def __init__(self, said: list[tuple[int, str]]):
        super().__init__(logging.DEBUG)
        self.said = said

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append((record.levelno, record.getMessage()))


def _marked(value: Any) -> Any:
    """``value`` with each config value stored as a secret told apart from a plain one."""
    if isinstance(value, Secret):
        return {"__secret__": str(value)}
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_marked(v) for v in value]
    return value


def _evaluate(
    config: Mapping[str, Any],
    secret_keys: Iterable[str],
    stack: str,
    emulators: Iterable[Emulator],
    reads: Mapping[tuple[str, str], dict] | None,
    expect_error: bool,
    preview: bool,
    environ: Mapping[str, str | None] | None,
) -> ProgramRun:
    config = {**BASE_CONFIG, **config}
    monitoring = config.get("monitoring")
    if isinstance(monitoring, dict) and str(monitoring.get("deploy")).lower() == "false" and "grafana" not in config:
        config["grafana"] = {"url": EXISTING_GRAFANA_URL}
    config = {k: v for k, v in config.items() if v is not None}
    secret_keys = [*secret_keys, *(k for k, v in config.items() if isinstance(v, Secret))]
    settings.ROOT.set(None)
    set_all_config(stack_config(config), [f"{PROJECT}:{k}" for k in secret_keys])
    monitor = RecordingMonitor(ProgramMocks(emulators, reads, preview=preview))
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor, logger=PROGRAM_LOG
    )

    try:
        with environment({**BASE_ENVIRONMENT, **(environ or {})}):
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    except Exception as error:
        _sync_await(_settle())
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
