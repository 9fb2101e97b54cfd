"""A parser for the Alloy configuration syntax (https://grafana.com/docs/alloy/latest/get-started/
syntax/): blocks, attributes and expressions, enough to read a pipeline as Alloy reads it.

Literals become Python values; references (``discovery.relabel.pods.output``), calls
(``sys.env("NODE_NAME")``) and operators stay as nodes for the caller to resolve. Anything
outside the grammar raises ``AlloySyntaxError`` with its offset, so a configuration this
parser cannot read fails the tests instead of being half understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class AlloySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Ref:
    """A reference to another component's export, or a standard-library name."""

    path: str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class BinaryOp:
    op: str
    lhs: Any
    rhs: Any


@dataclass(frozen=True)
class UnaryOp:
    op: str
    operand: Any


@dataclass(frozen=True)
class Index:
    value: Any
    index: Any


@dataclass
class Block:
    name: str  # e.g. "loki.process", "stage.match", "rule"
    label: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)

    def children(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name == name]


_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%^<>!=.,(){}\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}
_ESCAPE = re.compile(r"\\(?:([abfnrtv\\\"])|x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|([0-7]{3}))")
# Binding power of the binary operators (Alloy's precedence, lowest first).
_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "+": 4, "-": 4, "*": 5, "/": 5}
_PRECEDENCE |= {"%": 5, "^": 6}


def unquote(text: str) -> str:
    """A double-quoted Alloy string's value (Go's escape sequences)."""
    body = text[1:-1]

    def escape(match: re.Match[str]) -> str:
        simple, hex2, hex4, hex8, octal = match.groups()
        if simple:
            return _SIMPLE_ESCAPES[simple]
        if octal:
            return chr(int(octal, 8))
        return chr(int(hex2 or hex4 or hex8, 16))

    value = _ESCAPE.sub(escape, body)
    if "\\" in _ESCAPE.sub("", body):
        raise AlloySyntaxError(f"unknown escape sequence in {text}")
    return value


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise AlloySyntaxError(f"unexpected character {text[position]!r} at offset {position}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            tokens.append((kind, match.group(), position))
        position = match.end()
    tokens.append(("eof", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self, ahead: int = 0) -> tuple[str, str, int]:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if (kind is not None and token[0] != kind) or (value is not None and token[1] != value):
            wanted = value or kind
            raise AlloySyntaxError(f"expected {wanted!r}, found {token[1]!r} at offset {token[2]}")
        self.at += 1
        return token

    def accept(self, value: str) -> bool:
        if self.peek()[0] == "op" and self.peek()[1] == value:
            self.at += 1
            return True
        return False

    def body(self, closing: str | None) -> tuple[dict[str, Any], list[Block]]:
        attributes: dict[str, Any] = {}
        blocks: list[Block] = []
        while True:
            kind, value, offset = self.peek()
            if closing is None and kind == "eof":
                return attributes, blocks
            if closing is not None and kind == "op" and value == closing:
                self.at += 1
                return attributes, blocks
            name = self.take("ident")[1]
            if self.accept("="):
                if name in attributes:
                    raise AlloySyntaxError(f"attribute {name} set twice (offset {offset})")
                attributes[name] = self.expression()
                continue
            while self.accept("."):
                name += "." + self.take("ident")[1]
            label = unquote(self.take("string")[1]) if self.peek()[0] == "string" else None
            self.take("op", "{")
            inner_attributes, inner_blocks = self.body("}")
            blocks.append(Block(name, label, inner_attributes, inner_blocks))

    def expression(self, minimum: int = 1) -> Any:
        lhs = self.unary()
        while True:
            kind, value, _ = self.peek()
            power = _PRECEDENCE.get(value) if kind == "op" else None
            if power is None or power < minimum:
                return lhs
            self.at += 1
            lhs = BinaryOp(value, lhs, self.expression(power + 1))

    def unary(self) -> Any:
        if self.accept("!"):
            return UnaryOp("!", self.unary())
        if self.accept("-"):
            return UnaryOp("-", self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        kind, value, offset = self.peek()
        if kind == "string":
            self.at += 1
            return unquote(value)
        if kind == "raw":
            self.at += 1
            return value[1:-1]
        if kind == "number":
            self.at += 1
            return float(value) if any(c in value for c in ".eE") else int(value)
        if kind == "ident":
            self.at += 1
            literals = {"true": True, "false": False, "null": None}
            return literals[value] if value in literals else Ref(value)
        if self.accept("("):
            inner = self.expression()
            self.take("op", ")")
            return inner
        if self.accept("["):
            items = []
            while not self.accept("]"):
                items.append(self.expression())
                if not self.accept(","):
                    self.take("op", "]")
                    break
            return items
        if self.accept("{"):
            fields: dict[str, Any] = {}
            while not self.accept("}"):
                key_kind, key, _ = self.peek()
                if key_kind not in ("ident", "string"):
                    raise AlloySyntaxError(f"expected an object key, found {key!r} at offset {self.peek()[2]}")
                self.at += 1
                fields[unquote(key) if key_kind == "string" else key] = (self.take("op", "="), self.expression())[1]
                if not self.accept(","):
                    self.take("op", "}")
                    break
            return fields
        raise AlloySyntaxError(f"unexpected {value!r} at offset {offset}")

    def postfix(self, value: Any) -> Any:
        while True:
            if isinstance(value, Ref) and self.accept("."):
                value = Ref(f"{value.path}.{self.take('ident')[1]}")
            elif self.accept("["):
                index = self.expression()
                self.take("op", "]")
                value = Index(value, index)
            elif isinstance(value, Ref) and self.accept("("):
                args = []
                while not self.accept(")"):
                    args.append(self.expression())
                    if not self.accept(","):
                        self.take("op", ")")
                        break
                value = Call(value.path, tuple(args))
            else:
                return value


def parse(text: str) -> list[Block]:
    """The top-level blocks of an Alloy configuration (top-level attributes are not allowed)."""
    attributes, blocks = _Parser(text).body(None)
    if attributes:
        raise AlloySyntaxError(f"top-level attributes are not allowed: {sorted(attributes)}")
    return blocks


def evaluate(value: Any, env: dict[str, str]) -> Any:
    """A value with `sys.env(...)` calls and string concatenations resolved; references stay."""
    if isinstance(value, Call):
        if value.function != "sys.env" or len(value.args) != 1:
            raise AlloySyntaxError(f"cannot evaluate {value.function}{value.args}")
        return env.get(evaluate(value.args[0], env), "")
    if isinstance(value, BinaryOp) and value.op == "+":
        lhs, rhs = evaluate(value.lhs, env), evaluate(value.rhs, env)
        if not (isinstance(lhs, str) and isinstance(rhs, str)):
            raise AlloySyntaxError(f"cannot add {lhs!r} and {rhs!r}")
        return lhs + rhs
    if isinstance(value, list):
        return [evaluate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: evaluate(item, env) for key, item in value.items()}
    if isinstance(value, (BinaryOp, UnaryOp, Index)):
        raise AlloySyntaxError(f"cannot evaluate {value}")
    return value


def calls(value: Any) -> list[Call]:
    """Every function call inside a value (attribute values, blocks included)."""
    if isinstance(value, Call):
        return [value, *(c for arg in value.args for c in calls(arg))]
    if isinstance(value, (BinaryOp,)):
        return calls(value.lhs) + calls(value.rhs)
    if isinstance(value, UnaryOp):
        return calls(value.operand)
    if isinstance(value, Index):
        return calls(value.value) + calls(value.index)
    if isinstance(value, list):
        return [c for item in value for c in calls(item)]
    if isinstance(value, dict):
        return [c for item in value.values() for c in calls(item)]
    if isinstance(value, Block):
        return calls(list(value.attributes.values())) + [c for b in value.blocks for c in calls(b)]
    return []
