"""What the cluster receives: every chart of a stack rendered as Helm v4 ``Chart`` renders
it, plus the objects the program writes itself.

The program runs under Pulumi's mocks (``harness.run_program``); each registered
``kubernetes:helm.sh/v4:Chart`` is then rendered by real Helm 3 from the same vendored
archive, with the same values (its values files first, then its values, as the provider
merges them), the same release name and namespace, hooks split off (Chart v4 never runs
them, pulumi-kubernetes ``provider/pkg/provider/helm/v4/chart.go``: ``DisableHooks = true``)
and namespaces defaulted as the provider defaults them. Each stack is rendered once per
test session.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from harness import ROOT, ProgramRun, Secret, environment_config, kubernetes_type, run_program
from tools import helm_version, require_helm

from components.charts import PINNED_CHARTS, PinnedChart

KUBERNETES_VERSION = "1.33"
# API groups that exist once kube-prometheus-stack's CRDs are installed: what a second
# `pulumi up` sees. The first one on a fresh cluster sees none of them.
CRD_API_VERSIONS = ("monitoring.coreos.com/v1",)
HOOK = "helm.sh/hook"
# `helm template`'s output, parsed, by what it depends on (helm_template).
RENDER_CACHE = ROOT / ".pytest_cache" / "helm-renders"

# The committed stacks, as the tests render them: (stack, config).
STACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", environment_config("dev")),
    "dev-tutorial": ("dev", {**environment_config("dev"), "profile": "tutorial"}),
    "prod": (
        "prod",
        {
            **environment_config("prod"),
            "lokiS3AccessKeyId": Secret("AKIAEXAMPLE"),
            "lokiS3SecretAccessKey": Secret("wJalrXUtnFEMI/EXAMPLEKEY"),
        },
    ),
}

CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "CSIDriver",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: the CRDs are megabytes
    """YAML 1.1 as Helm's output needs it: CRDs contain the `=` (value) tag as a plain string."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_documents(text: str) -> list[dict[str, Any]]:
    """Each document of a YAML stream such as `helm template` prints. A document seen before
    (the same text: a chart's CRDs, in every stack that installs them) is parsed once and then
    read back from JSON, several times faster than YAML; each caller gets objects of its own."""
    documents = []
    for part in re.split(r"^---[ \t]*$", text, flags=re.M):
        if not part.strip():
            continue
        digest = hashlib.sha256(part.encode()).digest()
        known = _PARSED.get(digest)
        if known is None:
            known = _PARSED[digest] = json.dumps([doc for doc in yaml.load_all(part, Loader=_Loader) if doc])
        documents += json.loads(known)
    return documents


_PARSED: dict[bytes, str] = {}


# -- renders shared by every test ------------------------------------------------------------

_SHARED = (
    "a cached render is shared by every test of the session: change a copy (copy.deepcopy gives a plain, "
    "mutable one), not the render"
)


class FrozenDict(dict):
    """A mapping of a cached render: reading works as on a dict (json, yaml, ==, isinstance),
    changing it raises; ``copy.deepcopy`` gives a plain dict to change."""

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(_SHARED)

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}


class FrozenList(list):
    """A list of a cached render: see ``FrozenDict``."""

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise TypeError(_SHARED)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse  # type: ignore[assignment]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(value, memo) for value in self]


def freeze(value: Any) -> Any:
    """``value`` with every dict and list in it frozen (a render, cached once per session, is
    read by every test; one that changed it would change what the tests after it see)."""
    if isinstance(value, dict):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    return value


for _dumper in {yaml.SafeDumper, getattr(yaml, "CSafeDumper", yaml.SafeDumper)}:
    _dumper.add_representer(FrozenDict, yaml.representer.SafeRepresenter.represent_dict)
    _dumper.add_representer(FrozenList, yaml.representer.SafeRepresenter.represent_list)


# -- releases and objects --------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    """One Chart registration, with everything Helm needs to render it as the provider does."""

    name: str
    namespace: str
    chart: PinnedChart
    values: dict[str, Any]
    values_files: tuple[str, ...]  # contents of valueYamlFiles, merged before `values`


@dataclass(frozen=True)
class Obj:
    """A Kubernetes object the stack applies, and where it comes from."""

    source: str  # the release that renders it, or "program" for the program's own manifests
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.body["metadata"].get("namespace")

    @property
    def key(self) -> tuple[str, str | None, str]:
        return self.kind, self.namespace, self.name

    @property
    def labels(self) -> dict[str, str]:
        return self.body["metadata"].get("labels") or {}

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.source})"


def releases(run: ProgramRun) -> dict[str, Release]:
    by_archive = {str(chart.archive): chart for chart in PINNED_CHARTS}
    found = {}
    for name, registration in run.charts().items():
        found[name] = Release(
            name=name,
            namespace=registration.plain("namespace"),
            chart=by_archive[registration.plain("chart")],
            values=registration.plain("values") or {},
            values_files=tuple(registration.plain("valueYamlFiles") or ()),
        )
    return found


@cache
def cached_helm_version(binary: str) -> str:
    return helm_version(binary)


def helm_template(
    release: Release, api_versions: tuple[str, ...] = CRD_API_VERSIONS, crds: bool = True
) -> list[dict[str, Any]]:
    """`helm template` of one release, hooks included (callers split them off); without a
    usable Helm the calling test is skipped (failed under CI=true, tests/support/tools.py).

    Each rendering is kept on disk (``RENDER_CACHE``), keyed by everything it depends on: the
    Helm binary's version, the archive's sha256, the release, namespace, Kubernetes and API
    versions and every values file. The test workers, which each render the stacks they need,
    then render each release once between them, and a second run renders nothing again."""
    helm = require_helm()
    texts = (*release.values_files, json.dumps(release.values))
    key = hashlib.sha256(
        json.dumps(
            [
                cached_helm_version(helm),
                release.chart.sha256,
                release.name,
                release.namespace,
                KUBERNETES_VERSION,
                list(api_versions),
                crds,
                list(texts),
            ]
        ).encode()
    ).hexdigest()
    cached = RENDER_CACHE / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            helm,
            "template",
            release.name,
            str(ROOT / release.chart.archive),
            "--namespace",
            release.namespace,
            "--kube-version",
            KUBERNETES_VERSION,
            "--include-crds" if crds else "--skip-crds",
        ]
        for api in api_versions:
            args += ["--api-versions", api]
        for index, text in enumerate(texts):
            path = Path(tmp) / f"values-{index}.yaml"
            path.write_text(text)
            args += ["--values", str(path)]
        out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"helm template {release.name} ({release.chart.label}) failed:\n{out.stderr}")
    documents = load_documents(out.stdout)
    RENDER_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(documents))
    os.replace(partial, cached)  # whole or not at all, whichever worker writes it
    return documents


def is_hook(body: Mapping[str, Any]) -> bool:
    return HOOK in ((body.get("metadata") or {}).get("annotations") or {})


def normalize(bodies: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """Default the namespace of namespaced objects, as the provider does (yaml/v2 Normalize)."""
    cluster_scoped = CLUSTER_SCOPED | {
        b["spec"]["names"]["kind"]
        for b in bodies
        if b["kind"] == "CustomResourceDefinition" and b["spec"].get("scope") == "Cluster"
    }
    for body in bodies:
        metadata = body.setdefault("metadata", {})
        if body["kind"] in cluster_scoped:
            metadata.pop("namespace", None)
        else:
            metadata.setdefault("namespace", namespace)
    return bodies


@dataclass
class RenderedStack:
    name: str
    run: ProgramRun
    releases: dict[str, Release]
    objects: list[Obj]  # what the cluster receives
    hooks: list[Obj]  # rendered by the charts as Helm hooks: never applied by Chart v4
    # (kind, namespace, name) of each release's objects on a fresh cluster, before any CRD exists.
    first_deploy: dict[str, frozenset[tuple[str, str | None, str]]] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)  # the program's keys it was rendered with

    @property
    def profile(self) -> str:
        return self.run.exports["profile"].value

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o.kind in kinds]

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        found = [o for o in self.objects if o.kind == kind and o.name == name and namespace in (None, o.namespace)]
        assert len(found) == 1, f"expected one {kind} {name}, found {[str(o) for o in found]}"
        return found[0]

    def from_release(self, release: str) -> list[Obj]:
        return [o for o in self.objects if o.source == release]

    def workloads(self) -> Iterator[Workload]:
        """Every pod template the cluster will run, those the Prometheus operator makes included."""
        for obj in self.objects:
            workload = Workload.of(obj)
            if workload is not None:
                yield workload
        yield from operated_prometheus(self.objects)


@dataclass(frozen=True)
class Workload:
    """A pod template and how many pods it runs on a one-node cluster."""

    owner: Obj
    pod: dict[str, Any]  # the pod spec
    labels: dict[str, str]
    replicas: int
    annotations: dict[str, str] = field(default_factory=dict)  # the pod template's

    POD_SPEC_PATHS: ClassVar[dict[str, tuple[str, ...]]] = {
        "Deployment": ("spec", "template"),
        "StatefulSet": ("spec", "template"),
        "DaemonSet": ("spec", "template"),
        "ReplicaSet": ("spec", "template"),
        "Job": ("spec", "template"),
        "CronJob": ("spec", "jobTemplate", "spec", "template"),
    }

    @classmethod
    def of(cls, obj: Obj) -> Workload | None:
        if obj.kind == "Pod":
            return cls(obj, obj.body["spec"], obj.labels, 1)
        path = cls.POD_SPEC_PATHS.get(obj.kind)
        if path is None:
            return None
        template: Any = obj.body
        for key in path:
            template = template[key]
        replicas = 1 if obj.kind in ("DaemonSet", "Job", "CronJob") else obj.body["spec"].get("replicas", 1)
        metadata = template.get("metadata") or {}
        return cls(
            obj, template["spec"], metadata.get("labels") or {}, int(replicas), dict(metadata.get("annotations") or {})
        )

    def containers(self, init: bool = True) -> list[dict[str, Any]]:
        return (self.pod.get("initContainers") or [] if init else []) + self.pod["containers"]


def _operator_flags(objects: list[Obj]) -> dict[str, str]:
    for obj in objects:
        workload = Workload.of(obj)
        for container in workload.containers() if workload else []:
            args = container.get("args") or []
            if any(str(a).startswith("--prometheus-config-reloader=") for a in args):
                return dict(str(a)[2:].split("=", 1) for a in args if "=" in str(a))
    return {}


def operated_prometheus(objects: list[Obj]) -> Iterator[Workload]:
    """The pods the Prometheus operator (v0.93) runs for each Prometheus (or PrometheusAgent) resource: Prometheus
    with the resources and image of the resource, its config reloader (also as an init
    container) sized by the operator's flags, the labels of
    pkg/prometheus/server/operator.go makeSelectorLabels plus spec.podMetadata.labels, the
    pod security context of the resource and the container security context the operator
    gives both (pkg/prometheus/server/statefulset.go, pkg/operator/config_reloader.go)."""
    flags = _operator_flags(objects)
    for obj in objects:
        if obj.kind not in ("Prometheus", "PrometheusAgent"):
            continue
        agent = obj.kind == "PrometheusAgent"
        spec = obj.body["spec"]
        # The operator's --config-reloader-* flags; a limit of 0 means none.
        requests = {k: flags[f"config-reloader-{k}-request"] for k in ("cpu", "memory")}
        limits = {k: v for k in ("cpu", "memory") if (v := flags.get(f"config-reloader-{k}-limit", "0")) != "0"}
        hardened = {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
        reloader = {
            "name": "config-reloader",
            "image": flags.get("prometheus-config-reloader", ""),
            "resources": {"requests": requests, "limits": limits},
            "ports": [{"name": "reloader-web", "containerPort": 8080}],  # pkg/operator/config_reloader.go
            "securityContext": hardened,
        }
        pod = {
            "serviceAccountName": spec.get("serviceAccountName", "default"),
            "securityContext": spec.get("securityContext") or {},
            "initContainers": [{**reloader, "name": "init-config-reloader", "ports": []}],
            "containers": [
                {
                    "name": "prometheus",
                    "image": spec["image"],
                    "resources": spec.get("resources") or {},
                    "ports": [{"name": spec.get("portName", "web"), "containerPort": 9090}],
                    "securityContext": hardened,
                },
                reloader,
            ],
        }
        labels = {
            **((spec.get("podMetadata") or {}).get("labels") or {}),
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "app.kubernetes.io/name": "prometheus",
            "app.kubernetes.io/instance": obj.name,
            "operator.prometheus.io/name": obj.name,
            "operator.prometheus.io/shard": "0",
            "prometheus": obj.name,
        }
        if agent:  # pkg/prometheus/agent/operator.go makeSelectorLabels
            del labels["prometheus"]
            labels["app.kubernetes.io/name"] = "prometheus-agent"
        yield Workload(obj, pod, labels, int(spec.get("replicas", 1)))


def _render_release(release: Release) -> tuple[list[dict[str, Any]], set[tuple[str, str | None, str]]]:
    bodies = normalize(helm_template(release), release.namespace)
    # CRDs (a chart's crds/ files) do not depend on the cluster's API versions.
    fresh = normalize(helm_template(release, api_versions=(), crds=False), release.namespace)
    first = {(b["kind"], b["metadata"].get("namespace"), b["metadata"]["name"]) for b in fresh if not is_hook(b)}
    return bodies, first


def render_stack(name: str) -> RenderedStack:
    """One of the committed stacks (STACKS), rendered once per session."""
    stack, config = STACKS[name]
    return render_config(name, stack, config)


_RENDERED: dict[str, RenderedStack] = {}


def render_config(
    name: str,
    stack: str,
    config: dict[str, Any],
    only: tuple[str, ...] | None = None,
    reads: Mapping[tuple[str, str], dict] | None = None,
) -> RenderedStack:
    """The program with ``config`` as a stack named ``stack``, rendered once per ``name``
    (all its releases, or ``only`` those)."""
    if name not in _RENDERED:
        _RENDERED[name] = _render(name, stack, config, only, reads)
    return _RENDERED[name]


def _render(
    name: str,
    stack: str,
    config: dict[str, Any],
    only: tuple[str, ...] | None,
    reads: Mapping[tuple[str, str], dict] | None = None,
) -> RenderedStack:
    require_helm()  # before the program runs, and here rather than in the rendering threads
    run = run_program(config, stack=stack, reads=reads)
    found = {release: r for release, r in releases(run).items() if only is None or release in only}
    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = dict(zip(found, pool.map(_render_release, found.values()), strict=True))
    charts = run.charts()
    objects, hooks = [], []
    for release, (bodies, _) in rendered.items():
        for body in bodies:
            if is_hook(body):
                hooks.append(Obj(release, freeze(body)))
                continue
            # The Chart's transforms (and its ancestors'), as the engine applies them to each object.
            metadata = body["metadata"]
            where = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else metadata["name"]
            type_ = kubernetes_type(body["apiVersion"], body["kind"])
            transformed = run.transformed(charts[release], type_, f"{release}:{where}", body)
            objects.append(Obj(release, freeze(transformed)))
    objects += [Obj("program", freeze(body)) for body in run.manifests()]
    return RenderedStack(
        name=name,
        run=run,
        releases={
            release: Release(r.name, r.namespace, r.chart, freeze(r.values), r.values_files)
            for release, r in found.items()
        },
        objects=FrozenList(objects),
        hooks=FrozenList(hooks),
        first_deploy={release: frozenset(first) for release, (_, first) in rendered.items()},
        config=freeze(config),
    )


# -- quantities ------------------------------------------------------------------------------

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": 10**-3}


def millicores(quantity: str | int | float) -> int:
    text = str(quantity)
    return int(text[:-1]) if text.endswith("m") else round(float(text) * 1000)


def mebibytes(quantity: str | int | float) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    assert match, quantity
    number, unit = float(match.group(1)), match.group(2)
    factor = _BINARY.get(unit) or _DECIMAL.get(unit) or 1
    return number * factor / 2**20
