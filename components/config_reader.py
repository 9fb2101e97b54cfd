"""Reading the stack's configuration: typed getters that record every problem.

``ConfigReader`` reads the keys under the project's namespace (``runtime-defense:``) and
records each bad value (key, value, what is allowed) instead of raising, so that
``components.config.load()`` reports every problem at once, before any resource is
registered. A value stored as a secret is never echoed. Each section of the configuration
has its reader beside the component it configures (``components/<section>_config.py``).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import config as runtime_config

PROJECT = "runtime-defense"

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RFC1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Namespaces the cluster owns: creating them would fail and destroying them would hurt.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class ConfigError(pulumi.RunError):
    """Raised by ``load()`` with every configuration problem; nothing has been deployed."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}, nothing was deployed:\n{lines}")


T = TypeVar("T")


def show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


class ConfigReader:
    """Typed getters that record problems instead of raising, so all are reported at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    # -- reporting -------------------------------------------------------------------
    def problem(self, key: str, value: Any, allowed: str) -> None:
        """Records a bad value; a value stored as a secret is shown as <secret>, whatever its depth."""
        self.problems.append(f"{PROJECT}:{key} = {self.shown(key, value)}: {allowed}")

    def missing(self, key: str, why: str) -> None:
        self.problems.append(f"{PROJECT}:{key} is not set: {why}")

    def shown(self, key: str, value: Any) -> str:
        """How a problem may quote the value of ``key``: never the value of a secret."""
        return '"<secret>"' if self.is_secret(key) else show(value)

    # -- raw access ------------------------------------------------------------------
    def raw(self, key: str) -> str | None:
        """The stored string, secret or not, for validation only (never echoed if secret)."""
        value = runtime_config.get_config(f"{PROJECT}:{key}")
        return None if value is None else str(value)

    def is_secret(self, key: str) -> bool:
        """Whether ``key`` or the top-level key holding it is stored as a secret. The CLI keeps
        secrets per top-level key: `pulumi config set --secret --path grafana.url ...` makes
        the whole of ``grafana`` secret, and the program sees it as one secret JSON value."""
        top = key.split(".", 1)[0]
        return any(runtime_config.is_config_secret(f"{PROJECT}:{k}") for k in dict.fromkeys((key, top)))

    def section(self, key: str, known: tuple[str, ...]) -> dict[str, Any]:
        """A structured value (``pulumi config set --path key.sub value``) with known sub-keys."""
        text = self.raw(key)
        if text is None:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        return self.mapping(key, value, known)

    def present(self, key: str) -> dict[str, Any]:
        """The sub-keys set under a structured key, as they are: its own reader checks them."""
        text = self.raw(key)
        try:
            value = json.loads(text) if text is not None else {}
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def mapping(self, key: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        """A map whose keys must be among ``known`` (a typo would otherwise be ignored)."""
        if not isinstance(value, dict):
            self.problem(key, value, f"must be a map with keys {', '.join(known)}")
            return {}
        short = key.rsplit(".", 1)[-1]
        for sub in value:
            if sub not in known:
                self.problem(f"{key}.{sub}", value[sub], f"unknown key; {short} takes {', '.join(known)}")
        return value

    def unknown_top_level_keys(self, known: tuple[str, ...]) -> None:
        """Catch typos such as ``runtime-defense:profle`` that would otherwise be ignored."""
        prefix = f"{PROJECT}:"
        present = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
        for full_key in sorted(present):
            if not full_key.startswith(prefix):
                continue
            key = full_key[len(prefix) :]
            if key in known:
                continue
            head = key.split(".", 1)[0]
            hint = (
                f"without --path the dot is part of the key: {self._set_with_path(key, present[full_key])}"
                if "." in key and head in known
                else f"known keys: {', '.join(known)}"
            )
            self.problem(key, present[full_key], f"unknown key; {hint}")

    def _set_with_path(self, key: str, value: Any) -> str:
        """The commands that move a value stored under the dotted name ``key`` to where it belongs."""
        remove, path = f"`pulumi config rm {shlex.quote(key)}`", shlex.quote(key)
        if self.is_secret(key):
            return f"{remove}, then `pulumi config set --secret --path {path}`, which asks for the value"
        return f"{remove}, then `pulumi config set --path {path} {shlex.quote(str(value))}`"

    # -- typed values -------------------------------------------------------------------
    def choice(self, key: str, value: Any, allowed: tuple[T, ...], default: T) -> T:
        if value is None:
            return default
        if value not in allowed:
            self.problem(key, value, "allowed values are " + ", ".join(show(a) for a in allowed))
            return default
        return value

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.problem(key, value, "must be true or false")
        return default

    def integer(self, key: str, value: Any, default: int, low: int, high: int) -> int:
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or not low <= number <= high:
            self.problem(key, value, f"must be a whole number from {low} to {high}")
            return default
        return number

    def matching(self, key: str, value: Any, default: str, pattern: re.Pattern[str], allowed: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or not pattern.match(value):
            self.problem(key, value, allowed)
            return default
        return value

    def namespace(self, key: str, value: Any, default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 63 or not RFC1123_LABEL.match(value):
            self.problem(
                key,
                value,
                "must be an RFC 1123 label: at most 63 characters, lower-case letters, digits "
                "and '-', starting and ending with a letter or digit",
            )
            return default
        if value in RESERVED_NAMESPACES:
            self.problem(
                key,
                value,
                f"is owned by the cluster ({', '.join(sorted(RESERVED_NAMESPACES))}); "
                "choose a namespace the stack can create and destroy",
            )
            return default
        return value

    def url(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s:]+(:[0-9]{1,5})?(/\S*)?$", value):
            self.problem(
                key, value, "must be an http:// or https:// URL with a host, e.g. http://prometheus.monitoring:9090"
            )
            return None
        return value.rstrip("/")

    def string_map(self, key: str, value: Any) -> Mapping[str, str]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            self.problem(key, value, "must be a map of strings to strings")
            return MappingProxyType({})
        return MappingProxyType(dict(value))

    def secret(self, key: str, what: str) -> pulumi.Output[str] | None:
        """A value that must be stored encrypted (`pulumi config set --secret`): ``what`` it is,
        as the CLI's prompt asks for it (no value on the command line, none in shell history)."""
        value = self.raw(key)
        if value is None:
            return None
        if not self.is_secret(key):
            self.problem(
                key,
                "<not shown>",
                f"must be stored encrypted: `pulumi config set --secret {key}`, which asks for {what}",
            )
            return None
        if not value.strip():
            self.problem(key, "<secret>", "is empty")
            return None
        return pulumi.Output.secret(value)
