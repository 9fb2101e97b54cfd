"""Where Pulumi reaches the baseline's Grafana when ``grafana.url`` is not set.

On a NodePort, Grafana answers on every node's address at that port. The address this
machine already uses for the cluster is the host of its Kubernetes API server: read from
the kubeconfig as kubectl reads it (the ``kubeconfig`` key, else every file in
``$KUBECONFIG``, the first file to name a context, cluster or current-context winning, else
``~/.kube/config``), in the ``kubeContext`` key's context, else the current one. Only names
and the server's address are read and shown, never a credential.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import yaml

KUBECONFIG_KEY = "runtime-defense:kubeconfig"
CONTEXT_KEY = "runtime-defense:kubeContext"
# The address minikube's docker driver gives its node on Linux: an example in fixes only.
EXAMPLE_NODE = "192.168.49.2"


@dataclass(frozen=True)
class ApiServer:
    """The Kubernetes API server of the context the stack deploys to, and where it was found."""

    server: str  # scheme://host[:port], without any user info
    host: str  # as it goes in a URL: an IPv6 address in brackets
    context: str
    context_from: str  # the config key, or the kubeconfig's current-context
    kubeconfig: str  # where the server is named: a file, or the config key holding the contents
    kubeconfig_from: str  # where that file's name came from: a config key, $KUBECONFIG, or "" (kubectl's default)

    @property
    def kubeconfig_shown(self) -> str:
        return f"{self.kubeconfig} from {self.kubeconfig_from}" if self.kubeconfig_from else self.kubeconfig

    @property
    def on_loopback(self) -> bool:
        name = self.host.strip("[]")
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False


class NoApiServer(Exception):
    """Why the API server's host cannot be known, and pasteable commands that fix it."""

    def __init__(self, reason: str, fixes: list[str]):
        super().__init__(reason)
        self.reason = reason
        self.fixes = fixes


@dataclass
class _Kubeconfig:
    """kubeconfig files merged as kubectl merges them: the first to name an entry wins."""

    contexts: dict[str, tuple[dict[str, Any], str]]  # name -> (entry, the file naming it)
    clusters: dict[str, tuple[dict[str, Any], str]]
    current_context: str | None
    origin: str  # where the files' names come from: a config key, $KUBECONFIG, or kubectl's default ("")
    described: str  # the files, for messages


def find_api_server(
    kubeconfig_path: str | None,
    kubeconfig_contents: str | None,
    context: str | None,
    environ: Mapping[str, str],
) -> ApiServer:
    """The API server of ``context`` (else the current context), or NoApiServer saying why not."""
    merged = _load(kubeconfig_path, kubeconfig_contents, environ)
    if context is not None:
        context_from = CONTEXT_KEY
    elif merged.current_context is not None:
        context, context_from = merged.current_context, "the kubeconfig's current-context"
    else:
        raise NoApiServer(
            f"{CONTEXT_KEY} is not set and {merged.described} sets no current-context",
            [_set_context(name) for name in sorted(merged.contexts)[:1]],
        )
    if context not in merged.contexts:
        names = sorted(merged.contexts)
        there = f"whose contexts are {', '.join(names)}" if names else "which has no contexts"
        raise NoApiServer(
            f'kube context "{context}" (from {context_from}) is not in {merged.described}, {there}',
            [_set_context(names[0])] if names else [],
        )
    entry, where = merged.contexts[context]
    cluster_name = entry.get("cluster") if isinstance(entry, dict) else None
    if not isinstance(cluster_name, str) or cluster_name not in merged.clusters:
        raise NoApiServer(
            f'kube context "{context}" in {where} names cluster "{cluster_name}", which {merged.described} '
            "does not define",
            [],
        )
    cluster, where = merged.clusters[cluster_name]
    server = cluster.get("server") if isinstance(cluster, dict) else None
    if not isinstance(server, str):
        raise NoApiServer(f'cluster "{cluster_name}" in {where} names no server', [])
    parts = _split(server)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise NoApiServer(
            f'cluster "{cluster_name}" in {where} has server "{_without_user_info(server)}", '
            "not an http(s) URL with a host",
            [],
        )
    if parts.path.strip("/"):
        raise NoApiServer(
            f'cluster "{cluster_name}" in {where} is reached through a proxy ({_without_user_info(server)}): '
            "Grafana's NodePort is on the nodes, not on that host",
            [],
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return ApiServer(
        server=_without_user_info(server),
        host=host,
        context=context,
        context_from=context_from,
        kubeconfig=where,
        kubeconfig_from=merged.origin,
    )


def _load(path: str | None, contents: str | None, environ: Mapping[str, str]) -> _Kubeconfig:
    if contents is not None:
        where = f"stored in {KUBECONFIG_KEY}"
        return _merge([(where, _parse(contents, where))], "", where)
    if path is not None:
        return _merge([(path, _parse(_read(path), path))], KUBECONFIG_KEY, f"{path} (from {KUBECONFIG_KEY})")
    listed = environ.get("KUBECONFIG", "")
    default = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".kube", "config")
    if listed:
        # kubectl's order: every file listed, duplicates and missing files skipped.
        files = [f for f in dict.fromkeys(listed.split(os.pathsep)) if f and os.path.isfile(f)]
        if not files:
            raise NoApiServer(
                f"no kubeconfig: none of the files in $KUBECONFIG ({listed}) exists",
                [f"pulumi config set kubeconfig {shlex.quote(default)}"] if os.path.isfile(default) else [],
            )
        described = f"{files[0]} (from $KUBECONFIG)" if len(files) == 1 else f"$KUBECONFIG's {', '.join(files)}"
        return _merge([(f, _parse(_read(f), f)) for f in files], "$KUBECONFIG", described)
    if not os.path.isfile(default):
        raise NoApiServer(
            f"no kubeconfig: {KUBECONFIG_KEY} and $KUBECONFIG are not set and {default} does not exist "
            "(minikube start writes it)",
            [],
        )
    return _merge([(default, _parse(_read(default), default))], "", default)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise NoApiServer(f"{path} cannot be read ({type(error).__name__})", []) from None


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        # Only the line and the parser's complaint: the file's text may hold credentials.
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise NoApiServer(f"{where} is not a kubeconfig ({line}{problem})", []) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise NoApiServer(f"{where} is not a kubeconfig (not a YAML map)", [])
    return document


def _merge(documents: list[tuple[str, dict[str, Any]]], origin: str, described: str) -> _Kubeconfig:
    merged = _Kubeconfig(contexts={}, clusters={}, current_context=None, origin=origin, described=described)
    for where, document in documents:
        for section, entries, field in (
            ("contexts", merged.contexts, "context"),
            ("clusters", merged.clusters, "cluster"),
        ):
            for named in document.get(section) or []:
                if isinstance(named, dict) and isinstance(named.get("name"), str):
                    entries.setdefault(named["name"], (named.get(field) or {}, where))
        current = document.get("current-context")
        if merged.current_context is None and isinstance(current, str) and current:
            merged.current_context = current
    return merged


def _split(server: str) -> SplitResult | None:
    try:
        return urlsplit(server)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def _without_user_info(server: str) -> str:
    parts = _split(server)
    if parts is None:
        return server.rsplit("@", 1)[-1]
    if "@" not in parts.netloc:
        return server
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=netloc).geturl()


def _set_context(name: str) -> str:
    return f"pulumi config set kubeContext {shlex.quote(name)}"


def node_port_url(api: ApiServer, node_port: int) -> str:
    return f"http://{api.host}:{node_port}"


def node_port_note(api: ApiServer, url: str, node_port: int) -> str:
    """What the program says it did (pulumi.log.info), and where it looked."""
    note = (
        f"Pulumi reaches Grafana at {url}: grafana.url is not set, so the program took Grafana's NodePort "
        f'{node_port} on the host of the Kubernetes API server {api.server} (kube context "{api.context}" from '
        f"{api.context_from}, in the kubeconfig {api.kubeconfig_shown})."
    )
    if api.on_loopback:
        note += (
            " That server is on this machine's loopback, as with minikube's docker driver on macOS or Windows, "
            f"or kind: Grafana answers there only where the node's port {node_port} is published on this "
            f"machine, as `minikube start --cpus=2 --memory=4096 --ports=127.0.0.1:{node_port}:{node_port}` "
            "and kind's extraPortMappings (tests/e2e/kind.yaml) do."
        )
    return note + " Set grafana.url if this machine reaches Grafana elsewhere."


def node_port_source(api: ApiServer, node_port: int) -> str:
    """The stack output grafanaUrlSource: where the URL comes from."""
    return (
        f'NodePort {node_port} on the host of {api.server}, the API server of kube context "{api.context}" '
        f"(from {api.context_from}) in the kubeconfig {api.kubeconfig_shown}"
    )


def example_fix(node_port: int) -> str:
    return f"pulumi config set --path grafana.url http://{EXAMPLE_NODE}:{node_port}"
