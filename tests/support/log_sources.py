"""What each log source of a rendered stack writes to Loki, found by running a line through
the configuration the cluster receives.

The collectors' pipelines are read from their rendered configuration (Alloy's ConfigMap,
Promtail's Secret) and executed here by a mirror of the upstream code that runs them:
Prometheus relabelling (model/relabel/relabel.go Process), Alloy 1.18's log sources
(loki.source.kubernetes; local.file_match and loki.source.file on the files the kubelet
names), its ``loki.process`` stages (internal/component/loki/process/stages: match, json,
labels, structured_metadata, static_labels, label_drop, label_keep, cri, docker) and
Promtail 3.5's (clients/pkg/logentry/stages, the same stages, its own cri and docker).
Falcosidekick's Loki output is mirrored from its 2.32.0
source (outputs/loki.go newLokiPayload), fed with its rendered environment. A stage or
relabel action the mirror does not know raises, so a pipeline this module cannot follow
fails the tests instead of being half understood.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import jmespath
import yaml
from alloy_syntax import Block, Ref, calls, evaluate, parse
from rendering import RenderedStack, Workload

# -- entries -----------------------------------------------------------------------------------


@dataclass
class Entry:
    """One log line on its way through a pipeline, as the stages see it."""

    labels: dict[str, str]
    line: str
    extracted: dict[str, Any] = field(default_factory=dict)
    structured_metadata: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """What a LogQL label filter sees without a parser: labels and structured metadata."""
        return {**self.structured_metadata, **self.labels}


# -- LogQL selectors (match stages) ------------------------------------------------------------

_SELECTOR_TOKEN = re.compile(
    r"\s*(?:(?P<punct>[{},])|(?P<sym>\|=|\|~|!=|!~|=~|=|\|)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
    r'|(?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`))'
)


@dataclass(frozen=True)
class Selector:
    """A LogQL stream selector with line filters, as a match stage or a query uses it."""

    matchers: tuple[tuple[str, str, str], ...]
    line_filters: tuple[tuple[str, str], ...]
    label_filters: tuple[tuple[str, str, str], ...] = ()

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(_label_matches(labels.get(name, ""), op, value) for name, op, value in self.matchers)

    def matches_line(self, line: str) -> bool:
        for op, value in self.line_filters:
            found = (value in line) if op in ("|=", "!=") else re.search(value, line) is not None
            if found != (op in ("|=", "|~")):
                return False
        return True

    def matches(self, entry: Entry) -> bool:
        """Stream selector, then line filters, then label filters (on labels and metadata)."""
        fields = entry.fields()
        return (
            self.matches_labels(entry.labels)
            and self.matches_line(entry.line)
            and all(_label_matches(fields.get(name, ""), op, value) for name, op, value in self.label_filters)
        )


def _label_matches(actual: str, op: str, value: str) -> bool:
    if op in ("=", "!="):
        return (actual == value) == (op == "=")
    return (re.fullmatch(value, actual) is not None) == (op == "=~")


def _go_string(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    return json.loads(token)  # Go's and JSON's escapes agree on what a LogQL string uses


def parse_selector(text: str) -> Selector:
    """`{name op "value", ...}` then `|= "x"`, `|~ "re"`, `!= "x"`, `!~ "re"` line filters and
    `| name op "value"` label filters. Anything else raises ValueError."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while text[position:].strip():
        match = _SELECTOR_TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read the selector {text!r} at offset {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()

    def take(kind: str, *values: str) -> str:
        if not tokens or tokens[0][0] != kind or (values and tokens[0][1] not in values):
            raise ValueError(f"selector {text!r}: expected {values or kind}, found {tokens[:1]}")
        return tokens.pop(0)[1]

    def matcher() -> tuple[str, str, str]:
        return take("ident"), take("sym", "=", "!=", "=~", "!~"), _go_string(take("string"))

    matchers = []
    take("punct", "{")
    while tokens and tokens[0] != ("punct", "}"):
        matchers.append(matcher())
        if tokens and tokens[0] == ("punct", ","):
            tokens.pop(0)
    take("punct", "}")
    line_filters, label_filters = [], []
    while tokens:
        op = take("sym", "|=", "|~", "!=", "!~", "|")
        if op == "|":
            label_filters.append(matcher())
        else:
            line_filters.append((op, _go_string(take("string"))))
    return Selector(tuple(matchers), tuple(line_filters), tuple(label_filters))


# -- relabelling (prometheus model/relabel/relabel.go) -----------------------------------------

_RELABEL_DEFAULTS = {"separator": ";", "regex": "(.*)", "replacement": "$1", "action": "replace"}
_GO_TEMPLATE = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.ExpandString: $1, ${1}, $name, $$."""

    def group(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(2)
        if name is None:
            return "$"
        try:
            value = match.group(int(name)) if name.isdigit() else match.group(name)
        except IndexError:  # no such group: Go expands it to nothing
            return ""
        return value or ""

    return _GO_TEMPLATE.sub(group, template)


def relabel(labels: Mapping[str, str], rules: Iterable[Mapping[str, Any]]) -> dict[str, str] | None:
    """The target's labels after the rules, or None when a rule drops it."""
    result = dict(labels)
    for raw in rules:
        rule = {**_RELABEL_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
        action = str(rule["action"]).lower()
        regex = re.compile(f"^(?:{rule['regex']})$")
        value = str(rule["separator"]).join(result.get(name, "") for name in rule.get("source_labels") or [])
        if action == "replace":
            match = regex.match(value)
            if match is None:
                continue
            target = _expand(rule["target_label"], match)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", target):
                continue
            replacement = _expand(str(rule["replacement"]), match)
            if replacement:
                result[target] = replacement
            else:
                result.pop(target, None)
        elif action in ("keep", "drop"):
            if (regex.match(value) is not None) != (action == "keep"):
                return None
        elif action in ("labeldrop", "labelkeep"):
            result = {k: v for k, v in result.items() if (regex.match(k) is not None) == (action == "labelkeep")}
        elif action == "labelmap":
            for name, label_value in list(result.items()):
                match = regex.match(name)
                if match is not None:
                    result[_expand(str(rule["replacement"]), match)] = label_value
        elif action in ("lowercase", "uppercase"):
            result[rule["target_label"]] = value.lower() if action == "lowercase" else value.upper()
        else:
            raise NotImplementedError(f"relabel action {action} is not mirrored here")
    return result


# The controller that owns a workload's pods (what __meta_kubernetes_pod_controller_kind reads).
CONTROLLER_OF = {"Deployment": "ReplicaSet", "CronJob": "Job", "Prometheus": "StatefulSet"}


def pod_targets(stack: RenderedStack, node: str = "minikube") -> list[tuple[Workload, dict[str, str]]]:
    """A discovery target (`role = "pod"`, one per container) for every container of every
    workload the stack renders, as Kubernetes service discovery labels it on `node`
    (prometheus discovery/kubernetes/pod.go)."""
    targets = []
    for workload in stack.workloads():
        owner = workload.owner
        controller = CONTROLLER_OF.get(owner.kind, owner.kind)
        pod = f"{owner.name}-7d9f8c6b5-x2x4z" if controller == "ReplicaSet" else f"{owner.name}-x2x4z"
        init = workload.pod.get("initContainers") or []
        for container in workload.containers():
            meta = {
                "__address__": "10.244.0.17",
                "__meta_kubernetes_namespace": owner.namespace or "",
                "__meta_kubernetes_pod_name": pod,
                "__meta_kubernetes_pod_uid": "5f0c2a4e-9a7d-4d8e-b0f1-2c3d4e5f6a7b",
                "__meta_kubernetes_pod_node_name": node,
                "__meta_kubernetes_pod_host_ip": "192.168.49.2",
                "__meta_kubernetes_pod_ip": "10.244.0.17",
                "__meta_kubernetes_pod_ready": "true",
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_controller_kind": controller,
                "__meta_kubernetes_pod_controller_name": owner.name,
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_image": container.get("image", ""),
                "__meta_kubernetes_pod_container_init": str(container in init).lower(),
            }
            for name, value in workload.labels.items():
                key = re.sub(r"[^A-Za-z0-9_]", "_", name)
                meta[f"__meta_kubernetes_pod_label_{key}"] = value
                meta[f"__meta_kubernetes_pod_labelpresent_{key}"] = "true"
            for name, value in workload.annotations.items():
                key = re.sub(r"[^A-Za-z0-9_]", "_", name)
                meta[f"__meta_kubernetes_pod_annotation_{key}"] = value
                meta[f"__meta_kubernetes_pod_annotationpresent_{key}"] = "true"
            targets.append((workload, meta))
    return targets


def public(labels: Mapping[str, str]) -> dict[str, str]:
    """A target's labels as its log lines carry them: the `__` ones are internal."""
    return {k: v for k, v in labels.items() if not k.startswith("__")}


# -- stages (Alloy loki.process, Promtail pipeline_stages) ---------------------------------------


def _simplify(value: Any) -> tuple[Any, bool]:
    """jsonStage.simplifyType / Promtail's json switch: JSON numbers are float64 in Go."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value, True
    if isinstance(value, (int, float)):
        return float(value), True
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False), True


def get_string(value: Any) -> str | None:
    """util.go getString: None where Go returns an error (nil, lists, maps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")  # strconv.FormatFloat(f, 'f', -1, 64)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, (int, str)):
        return str(value)
    return None


def json_stage(entry: Entry, expressions: Mapping[str, str], source: str | None, drop_malformed: bool) -> bool:
    """Returns False when the entry is dropped."""
    text: Any = entry.line
    if source is not None:
        if source not in entry.extracted:
            return True
        text = get_string(entry.extracted[source])
        if text is None:
            return True
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")  # Go unmarshals into a map
    except ValueError:
        return not drop_malformed
    for name, expression in expressions.items():
        value, ok = _simplify(jmespath.search(expression or name, data))
        if ok:
            entry.extracted[name] = value
    return True


def _sources(values: Mapping[str, Any]) -> dict[str, str]:
    """A labels-like stage's `name: source`; an empty source means the name itself."""
    return {name: (source or name) for name, source in values.items()}


def labels_stage(entry: Entry, values: Mapping[str, Any]) -> None:
    for name, source in _sources(values).items():
        if source in entry.extracted:
            text = get_string(entry.extracted[source])
            if text is not None:
                entry.labels[name] = text


def structured_metadata_stage(entry: Entry, values: Mapping[str, Any]) -> None:
    """Alloy's structured_metadata stage: from extracted values, then from labels (which it moves)."""
    config = _sources(values)
    for name, source in config.items():
        if source in entry.extracted:
            text = get_string(entry.extracted[source])
            if text is not None:
                entry.structured_metadata[name] = text
    for name, source in config.items():
        if source in entry.labels:
            entry.structured_metadata[name] = entry.labels.pop(source)


CRI_LINE = re.compile(r"^(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$", re.DOTALL)


def cri_stage(entry: Entry) -> None:
    """Promtail's cri stage (extensions.go NewCRI) for full lines: regex, `stream` label, output."""
    match = CRI_LINE.match(entry.line)
    if match is None:
        return
    if match["flags"] == "P":
        raise NotImplementedError("partial CRI lines are not mirrored here")
    entry.extracted |= match.groupdict()
    entry.labels["stream"] = match["stream"]
    entry.line = match["content"]


def docker_stage(entry: Entry) -> None:
    """Promtail's docker stage (extensions.go NewDocker): json log/stream/time, `stream` label, output."""
    if json_stage(entry, {"output": "log", "stream": "stream", "timestamp": "time"}, None, False):
        labels_stage(entry, {"stream": None})
        if isinstance(entry.extracted.get("output"), str):
            entry.line = entry.extracted["output"]


def alloy_cri_stage(entry: Entry) -> None:
    """Alloy's stage.cri (stages/cri.go, cri/parse.go ParseCRI) for full lines. Laxer than
    Promtail's regex: the timestamp is not checked and the flag may be missing."""
    line = entry.line
    space = re.search(r"\s", line)
    timestamp, rest = ("", line) if space is None else (line[: space.start()], line[space.start() :])
    if not rest.startswith(" "):
        return
    rest = rest[1:]
    stream = next((name for name in ("stdout", "stderr") if rest.startswith(name)), None)
    if stream is None:
        return
    rest = rest[len(stream) :]
    if not rest.startswith(" "):
        return
    rest = rest[1:]
    flag = rest[:1] if rest[:1] in ("P", "F") else "F"
    rest = rest[1:] if rest[:1] in ("P", "F") else rest
    rest = rest.removeprefix(" ")
    if flag == "P":
        raise NotImplementedError("partial CRI lines (merged across entries) are not mirrored here")
    entry.extracted |= {"flags": flag, "stream": stream, "content": rest, "time": timestamp}
    entry.line = rest
    entry.labels["stream"] = stream


def alloy_docker_stage(entry: Entry) -> None:
    """Alloy's stage.docker (stages/docker.go): the line unmarshalled into {log, stream,
    time}; not a Docker line when that fails or `log` is empty. (Go matches JSON keys case-
    insensitively as well; the runtimes write them lower-case.)"""
    try:
        data = json.loads(entry.line)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    fields = {key: data.get(key) for key in ("log", "stream", "time")}
    if any(value is not None and not isinstance(value, str) for value in fields.values()):
        return  # json.Unmarshal fails on a field of another type
    log, stream, time = (fields[key] or "" for key in ("log", "stream", "time"))
    if log == "":
        return
    entry.extracted |= {"output": log, "stream": stream, "timestamp": time}
    entry.line = log
    entry.labels["stream"] = stream


def run_alloy_stages(entry: Entry, stages: list[Block]) -> Entry | None:
    for stage in stages:
        kind, config = stage.name.removeprefix("stage."), stage.attributes
        if kind == "match":
            selector = parse_selector(config["selector"])
            action = config.get("action", "keep")
            if selector.matches_labels(entry.labels) and selector.matches_line(entry.line):
                if action == "drop":
                    return None
                result = run_alloy_stages(entry, stage.blocks)
                if result is None:
                    return None
                entry = result
        elif kind == "json":
            if not json_stage(entry, config["expressions"], config.get("source"), config.get("drop_malformed", False)):
                return None
        elif kind == "labels":
            if config.get("source_type", "extracted") != "extracted":
                raise NotImplementedError("labels from structured metadata are not mirrored here")
            labels_stage(entry, config["values"])
        elif kind == "structured_metadata":
            if config.get("regex"):
                raise NotImplementedError("structured_metadata by regex is not mirrored here")
            structured_metadata_stage(entry, config["values"])
        elif kind == "static_labels":
            entry.labels |= {k: str(v) for k, v in config["values"].items()}
        elif kind in ("label_drop", "label_keep"):
            keep = kind == "label_keep"
            entry.labels = {k: v for k, v in entry.labels.items() if (k in config["values"]) == keep}
        elif kind in ("cri", "docker"):
            if config or stage.blocks:
                raise NotImplementedError(f"stage.{kind} arguments are not mirrored here")
            (alloy_cri_stage if kind == "cri" else alloy_docker_stage)(entry)
        else:
            raise NotImplementedError(f"the Alloy stage {stage.name} is not mirrored here")
    return entry


def run_promtail_stages(entry: Entry, stages: list[Mapping[str, Any]]) -> Entry | None:
    for stage in stages:
        ((kind, config),) = stage.items()
        config = config or {}
        if kind == "match":
            selector = parse_selector(config["selector"])
            if selector.matches_labels(entry.labels) and selector.matches_line(entry.line):
                if config.get("action", "keep") == "drop":
                    return None
                result = run_promtail_stages(entry, config.get("stages") or [])
                if result is None:
                    return None
                entry = result
        elif kind == "cri":
            cri_stage(entry)
        elif kind == "docker":
            docker_stage(entry)
        elif kind == "json":
            if not json_stage(entry, config["expressions"], config.get("source"), config.get("drop_malformed", False)):
                return None
        elif kind == "labels":
            labels_stage(entry, config)
        elif kind == "static_labels":
            entry.labels |= {k: str(v) for k, v in config.items()}
        elif kind == "labeldrop":
            entry.labels = {k: v for k, v in entry.labels.items() if k not in config}
        elif kind == "labelallow":
            entry.labels = {k: v for k, v in entry.labels.items() if k in config}
        else:
            raise NotImplementedError(f"the Promtail stage {kind} is not mirrored here")
    return entry


# -- Alloy ---------------------------------------------------------------------------------------


def alloy_config(stack: RenderedStack) -> str | None:
    """Alloy's pipeline as its ConfigMap carries it, or None without Alloy."""
    found = [o for o in stack.of_kind("ConfigMap") if o.source == "alloy"]
    return found[0].body["data"]["config.alloy"] if found else None


def alloy_env_reads(config: str) -> set[str]:
    """The environment variables the pipeline reads (`sys.env("...")`)."""
    return {call.args[0] for block in parse(config) for call in calls(block) if call.function == "sys.env"}


@dataclass(frozen=True)
class Shipped:
    """A line as Loki receives it, and which client pushed it."""

    url: str
    entry: Entry


def _component(components: dict[str, Block], ref: Any, export: str) -> Block:
    if not isinstance(ref, Ref) or not ref.path.endswith(f".{export}"):
        raise ValueError(f"expected a reference to a component's {export}, found {ref!r}")
    name = ref.path.removesuffix(f".{export}")
    if name not in components:
        raise ValueError(f"{ref.path} names no component of the pipeline")
    return components[name]


def _field_selector_admits(selector: str, meta: Mapping[str, str]) -> bool:
    """A discovery field selector, for the field the pipeline uses (spec.nodeName)."""
    for clause in selector.split(","):
        key, _, value = clause.partition("=")
        if key != "spec.nodeName":
            raise NotImplementedError(f"the field selector {key} is not mirrored here")
        if meta["__meta_kubernetes_pod_node_name"] != value:
            return False
    return True


# Where the kubelet has the runtime write a container's log (pkg/kubelet/kuberuntime/helpers.go
# BuildContainerLogsDirectory, buildContainerLogsPath; /var/log/pods is the kubelet's default
# podLogsDir). A static pod's files go under the UID the kubelet gave it, which its mirror pod
# in the API carries as the kubernetes.io/config.mirror annotation (pkg/kubelet/types).
POD_LOGS_DIRECTORY = "/var/log/pods"
MIRROR_ANNOTATION = "__meta_kubernetes_pod_annotation_kubernetes_io_config_mirror"


def node_log_file(meta: Mapping[str, str], restarts: int = 0) -> str:
    """The file on the node holding the log of the container `meta` describes."""
    uid = meta.get(MIRROR_ANNOTATION) or meta["__meta_kubernetes_pod_uid"]
    pod = "_".join((meta["__meta_kubernetes_namespace"], meta["__meta_kubernetes_pod_name"], uid))
    return f"{POD_LOGS_DIRECTORY}/{pod}/{meta['__meta_kubernetes_pod_container_name']}/{restarts}.log"


def glob_matches(pattern: str, path: str) -> bool:
    """Go's filepath.Match for the patterns a pipeline uses (`*`, `?`, classes; no `**`)."""
    if "**" in pattern or "{" in pattern:
        raise NotImplementedError(f"the glob {pattern} is not mirrored here")
    translated = "".join(
        "[^/]*" if part == "*" else "[^/]" if part == "?" else part if part.startswith("[") else re.escape(part)
        for part in re.findall(r"\[[^\]]*\]|[*?]|[^*?\[]+", pattern)
    )
    return re.fullmatch(translated, path) is not None


def _discovered(components: dict[str, Block], ref: Any, meta: dict[str, str], env: dict[str, str]) -> dict | None:
    """The target `meta` as the component `ref` points to exports it (None: not discovered or
    dropped). local.file_match exports it once per file on the node its glob matches: here the
    one file the kubelet names for the container."""
    component = _component(components, ref, "output" if ".relabel." in ref.path else "targets")
    if component.name == "local.file_match":
        if set(component.attributes) != {"path_targets"}:
            raise NotImplementedError(f"local.file_match arguments {sorted(component.attributes)}")
        upstream = _discovered(components, component.attributes["path_targets"], meta, env)
        if upstream is None:
            return None
        if "__path_exclude__" in upstream:
            raise NotImplementedError("__path_exclude__ is not mirrored here")
        file = node_log_file(meta)
        return {**upstream, "__path__": file} if glob_matches(upstream.get("__path__", ""), file) else None
    if component.name == "discovery.kubernetes":
        if component.attributes.get("role") != "pod":
            raise NotImplementedError(f"discovery.kubernetes role {component.attributes.get('role')}")
        for selector in component.children("selectors"):
            if "label" in selector.attributes:
                raise NotImplementedError("label selectors are not mirrored here")
            if "field" in selector.attributes and not _field_selector_admits(
                evaluate(selector.attributes["field"], env), meta
            ):
                return None
        return dict(meta)
    if component.name == "discovery.relabel":
        upstream = _discovered(components, component.attributes["targets"], meta, env)
        if upstream is None:
            return None
        return relabel(upstream, [rule.attributes for rule in component.children("rule")])
    raise NotImplementedError(f"targets from {component.name} are not mirrored here")


@cache
def _components(config: str) -> dict[str, Block]:
    return {f"{b.name}.{b.label}": b for b in parse(config)}


def alloy_ship(config: str, meta: dict[str, str], line: str) -> list[Shipped]:
    """What Loki receives from Alloy (one per node, NODE_NAME set to its node) for one line
    written by the container `meta` describes: read through the Kubernetes API, decoded, or
    from the node's file, in each runtime's format (runtime_lines)."""
    return _alloy_ship(config, meta, line, runtime_lines(line))


def alloy_ship_file_line(config: str, meta: dict[str, str], raw_line: str) -> list[Shipped]:
    """What Loki receives from Alloy for one line of the container's file on the node, as the
    runtime wrote it (`raw_line`); nothing from a source reading through the API."""
    return _alloy_ship(config, meta, None, [raw_line])


def _alloy_ship(config: str, meta: dict[str, str], decoded: str | None, raw_lines: list[str]) -> list[Shipped]:
    components = _components(config)
    env = {"NODE_NAME": meta["__meta_kubernetes_pod_node_name"]}
    sources = [c for c in components.values() if c.name.startswith("loki.source.")]
    assert sources, "the pipeline has no log source"
    shipped: list[Shipped] = []

    def deliver(entry: Entry, receivers: list[Any]) -> None:
        for receiver in receivers:
            component = _component(components, receiver, "receiver")
            copied = copy.deepcopy(entry)
            if component.name == "loki.process":
                result = run_alloy_stages(copied, component.blocks)
                if result is not None:
                    # Extracted values live only within one loki.process component.
                    result.extracted = {}
                    deliver(result, component.attributes["forward_to"])
            elif component.name == "loki.write":
                for endpoint in component.children("endpoint"):
                    shipped.append(Shipped(evaluate(endpoint.attributes["url"], env), copied))
            else:
                raise NotImplementedError(f"forwarding to {component.name} is not mirrored here")

    for source in sources:
        if source.name == "loki.source.kubernetes":
            target = _discovered(components, source.attributes["targets"], meta, env)
            if target is not None and decoded is not None:
                deliver(Entry(public(target), decoded), source.attributes["forward_to"])
        elif source.name == "loki.source.file":
            # file.go: non-reserved labels; tailer.go adds the file's path as `filename`.
            if set(source.attributes) != {"targets", "forward_to"} or source.blocks:
                raise NotImplementedError(f"loki.source.file arguments {sorted(source.attributes)}")
            target = _discovered(components, source.attributes["targets"], meta, env)
            if target is not None:
                labels = public(target) | {"filename": target["__path__"]}
                for raw in raw_lines:
                    deliver(Entry(dict(labels), raw), source.attributes["forward_to"])
        else:
            raise NotImplementedError(f"{source.name} is not mirrored here")
    return shipped


# -- Promtail ------------------------------------------------------------------------------------


def promtail_config(stack: RenderedStack) -> dict | None:
    found = [o for o in stack.of_kind("Secret") if o.source == "loki" and o.name.endswith("-promtail")]
    return yaml.safe_load(found[0].body["stringData"]["promtail.yaml"]) if found else None


def promtail_ship(config: dict, meta: dict[str, str], raw_line: str) -> list[Shipped]:
    """What Loki receives from Promtail for one line of the container `meta` describes, as the
    runtime wrote it in the node's log file (`raw_line`, CRI or Docker JSON)."""
    jobs = config["scrape_configs"]
    assert jobs, "Promtail has no scrape job"
    shipped = []
    for job in jobs:
        if [sd.get("role") for sd in job.get("kubernetes_sd_configs") or []] != ["pod"]:
            raise NotImplementedError(f"job {job['job_name']}: only a pod discovery is mirrored here")
        target = relabel(meta, job.get("relabel_configs") or [])
        if target is None or "__path__" not in target:
            continue
        entry = run_promtail_stages(Entry(public(target), raw_line), job.get("pipeline_stages") or [])
        if entry is not None:
            shipped += [Shipped(client["url"], copy.deepcopy(entry)) for client in config["clients"]]
    return shipped


# -- Loki ----------------------------------------------------------------------------------------


def loki_config(stack: RenderedStack) -> dict:
    """Loki's configuration as its pods read it (loki-stack: a Secret; loki 18: a ConfigMap)."""
    found = [o for o in stack.of_kind("Secret", "ConfigMap") if o.source == "loki" and o.name == "loki"]
    assert len(found) == 1, [str(o) for o in found]
    data = found[0].body.get("data") or {}
    if found[0].kind == "Secret":
        return yaml.safe_load(base64.b64decode(data["loki.yaml"]))
    return yaml.safe_load(data["config.yaml"])


# -- Falco and Falcosidekick ---------------------------------------------------------------------

# The output fields the container plugin 0.7.1 (the one Falco 0.44.1 bundles, CMakeLists.txt
# CONTAINER_VERSION) marks as suggested (plugins/container/src/caps/extract/extract.cpp): with
# `append_output: [{suggested_output: true}]` Falco adds them to every event of a source the
# plugin extracts from (syscall), in its output and in output_fields.
CONTAINER_PLUGIN_SUGGESTED = (
    "container.id",
    "container.name",
    "container.image.repository",
    "container.image.tag",
    "k8s.pod.name",
    "k8s.ns.name",
)
# Falcosidekick 2.32.0 types/priority.go: the priority's name, whatever its case in the event.
PRIORITY_NAMES = ("Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug")


def falco_yaml(stack: RenderedStack) -> dict:
    (config,) = [o for o in stack.of_kind("ConfigMap") if o.source == "falco" and "falco.yaml" in o.body["data"]]
    return yaml.safe_load(config.body["data"]["falco.yaml"])


def falco_appended_fields(falco: Mapping[str, Any], source: str = "syscall") -> set[str]:
    """Output fields Falco's configuration adds to every event of `source` (append_output)."""
    fields: set[str] = set()
    for entry in falco.get("append_output") or []:
        match = entry.get("match") or {}
        if set(match) - {"source"} or match.get("source", source) != source:
            continue  # only entries for every rule of this source count for every event
        if entry.get("suggested_output") and "container" in (falco.get("load_plugins") or []):
            fields |= set(CONTAINER_PLUGIN_SUGGESTED)
        for extra in entry.get("extra_fields") or []:
            fields |= set(extra) if isinstance(extra, dict) else {extra}
    return fields


def falco_event(sample: Mapping[str, Any], falco: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Falco 0.44 writes for the event `sample` describes under the configuration
    `falco`: the rule's own output fields, plus those append_output adds (valued as in the
    sample, null where the sample has none), the properties the json_include_* keys select
    (userspace/engine/formats.cpp)."""
    suggested = set(CONTAINER_PLUGIN_SUGGESTED)
    rule_fields = {k: v for k, v in sample["output_fields"].items() if k not in suggested}
    appended = {name: sample["output_fields"].get(name) for name in falco_appended_fields(falco, sample["source"])}
    event: dict[str, Any] = {k: sample[k] for k in ("time", "rule", "priority", "source", "hostname")}
    if falco.get("json_include_output_property", True):
        event["output"] = sample["output"]
    if falco.get("json_include_tags_property", True):
        event["tags"] = list(sample.get("tags") or [])
    if falco.get("json_include_output_fields_property", True):
        event["output_fields"] = {**rule_fields, **appended}
    return event


def falco_json_line(event: Mapping[str, Any]) -> str:
    """nlohmann::json dump(-1): keys sorted, no spaces."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def sidekick_env(stack: RenderedStack) -> dict[str, str] | None:
    """Falcosidekick's environment as its container receives it (its Secret through envFrom,
    then `env`), or None without Falcosidekick."""
    deployments = [o for o in stack.of_kind("Deployment") if o.source == "falcosidekick"]
    if not deployments:
        return None
    (container,) = deployments[0].body["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        secret = (source.get("secretRef") or {}).get("name")
        for obj in stack.of_kind("Secret"):
            if obj.name == secret and obj.namespace == deployments[0].namespace:
                env |= {k: base64.b64decode(v).decode() for k, v in (obj.body.get("data") or {}).items()}
                env |= dict(obj.body.get("stringData") or {})
    env |= {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e}
    return env


def _sidekick_list(value: str) -> list[str]:
    return [item for item in value.replace(" ", "").split(",") if item]


def sidekick_loki_stream(event: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The stream labels Falcosidekick 2.32.0 pushes to Loki with `event` (outputs/loki.go
    newLokiPayload), its configuration read from `env` (config.go: CUSTOMFIELDS "k:v,...",
    LOKI_EXTRALABELS "a,b"; customfields are added to every event's output fields first,
    handlers.go)."""
    customfields = dict(item.split(":", 1) for item in _sidekick_list(env.get("CUSTOMFIELDS", "")) if ":" in item)
    templated = _sidekick_list(env.get("TEMPLATEDFIELDS", ""))
    extralabels = _sidekick_list(env.get("LOKI_EXTRALABELS", ""))
    fields = {**(event.get("output_fields") or {}), **customfields}
    priority = {name.lower(): name for name in PRIORITY_NAMES} | {"info": "Informational"}
    stream = {
        "rule": event["rule"],
        "source": event.get("source", ""),
        "priority": priority.get(str(event["priority"]).lower(), ""),
    }
    if isinstance(fields.get("k8s.ns.name"), str):
        stream["k8s_ns_name"] = fields["k8s.ns.name"]
    if isinstance(fields.get("k8s.pod.name"), str):
        stream["k8s_pod_name"] = fields["k8s.pod.name"]
    for name, value in fields.items():
        if isinstance(value, str) and (name in customfields or name in templated or name in extralabels):
            stream[name.replace(".", "_").replace("]", "").replace("[", "")] = value.replace('"', "")
    if event.get("hostname"):
        stream["hostname"] = event["hostname"]
    if event.get("tags"):
        stream["tags"] = ",".join(sorted(event["tags"]))
    return stream


# -- every source of a stack ---------------------------------------------------------------------

# The Falco event the derivations use: the example of Falco's documentation (falco-website
# content/en/docs/concepts/outputs/channels.md, json_output), verbatim.
FALCO_DOCS_LINE = (
    '{"hostname":"falco-xczjd","output":"13:44:05.478445995: Critical A shell was spawned in a container with '
    "an attached terminal (user=root user_loginuid=-1 k8s.ns=default k8s.pod=kubecon container=ee97d9c4186f "
    "shell=sh parent=runc cmdline=sh -c clear; (bash || ash || sh) terminal=34816 container_id=ee97d9c4186f "
    'image=docker.io/library/alpine)","priority":"Critical","rule":"Terminal shell in container","source":'
    '"syscall","tags":["container","mitre_execution","shell"],"time":"2023-05-25T13:44:05.478445995Z", '
    '"output_fields": {"container.id":"ee97d9c4186f","container.image.repository":"docker.io/library/alpine",'
    '"evt.time":1685022245478445995,"k8s.ns.name":"default","k8s.pod.name":"kubecon","proc.cmdline":"sh -c '
    'clear; (bash || ash || sh)","proc.name":"sh","proc.pname":"runc","proc.tty":34816,"user.loginuid":-1,'
    '"user.name":"root"}}'
)


def falco_containers(stack: RenderedStack) -> list[tuple[Workload, dict[str, str]]]:
    """The discovery targets of Falco's own container (the one running /usr/bin/falco)."""
    found = []
    for workload, meta in pod_targets(stack):
        if workload.owner.source != "falco" or workload.owner.kind != "DaemonSet":
            continue
        (container,) = [c for c in workload.containers() if c["name"] == meta["__meta_kubernetes_pod_container_name"]]
        if "/usr/bin/falco" in (container.get("args") or []) + (container.get("command") or []):
            found.append((workload, meta))
    return found


def runtime_lines(line: str) -> list[str]:
    """`line` as the two container runtime formats write it to the node's log file."""
    return [
        f"2026-11-27T17:00:00.100000000Z stdout F {line}",
        json.dumps({"log": line + "\n", "stream": "stdout", "time": "2026-11-27T17:00:00.1Z"}),
    ]


def collector_ship(stack: RenderedStack, meta: dict[str, str], line: str) -> list[Shipped]:
    """What the stack's collector ships to Loki for `line` from the container `meta` describes:
    through Alloy (read through the API, decoded; or from the node's file, in each runtime's
    format), or through Promtail (from the node's file, in each runtime's format)."""
    alloy = alloy_config(stack)
    if alloy is not None:
        return alloy_ship(alloy, meta, line)
    promtail = promtail_config(stack)
    assert promtail is not None, f"{stack.name} has no log collector"
    return [shipped for raw in runtime_lines(line) for shipped in promtail_ship(promtail, meta, raw)]


def _common(label_sets: list[set[str]]) -> set[str]:
    assert label_sets, "nothing shipped"
    return set.intersection(*label_sets)


def log_sources(stack: RenderedStack) -> dict[str, set[str]]:
    """Each source that pushes to Loki in this stack, and the names it gives what it pushes
    (stream labels and structured metadata): the collector's on every pod's lines, the
    collector's on Falco's event lines, and Falcosidekick's."""
    collector = "alloy" if alloy_config(stack) is not None else "promtail"
    targets = pod_targets(stack)
    assert targets, "the stack renders no workload"
    every_line = [set(s.entry.labels) for _, meta in targets for s in collector_ship(stack, meta, "a log line")]
    sources = {collector: _common(every_line)}
    falco = falco_yaml(stack)
    event = falco_event(json.loads(FALCO_DOCS_LINE), falco)
    falco_lines = [
        set(s.entry.fields())
        for _, meta in falco_containers(stack)
        for s in collector_ship(stack, meta, falco_json_line(event))
    ]
    sources[f"{collector}: Falco's events"] = _common(falco_lines)
    env = sidekick_env(stack)
    if env is not None and env.get("LOKI_HOSTPORT"):
        sources["falcosidekick"] = set(sidekick_loki_stream(event, env))
    return sources
