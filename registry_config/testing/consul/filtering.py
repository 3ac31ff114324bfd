"""Consul's ``?filter=`` language (go-bexpr), checked against the fields of the entries as Consul does.

Consul compiles a filter with go-bexpr before it runs the query
(``bexpr.CreateFilter`` in agent/consul/catalog_endpoint.go and
health_endpoint.go), against the Go type of the answer's elements: a
``structs.ServiceNode`` for ``/v1/catalog/service``, a
``structs.CheckServiceNode`` for ``/v1/health/service``. So a selector must
name a field of that type (``ServiceTags``, ``ServiceMeta.k``,
``ServiceMeta["k-1"]``; ``Service.Tags``, ``Node.Node``, ``Checks.Status``),
and an operator must be one that the field's type supports (go-bexpr
``field_config.go``): ``==``/``!=`` on strings, numbers and booleans;
``contains``/``in`` (and their negations) on strings (substring), lists of
primitives (element) and maps (key); ``matches`` on strings; ``is empty`` on
lists and maps. Anything else is refused when the filter is created, which
Consul answers ``500`` with a body beginning ``Failed to create boolean
expression evaluator`` (api-docs/features/filtering.mdx; the error text is
go-bexpr's ``CreateEvaluator``).

The grammar is go-bexpr's ``grammar.peg``: selectors ``Ident(.Ident |
["string"])*``, values as double-quoted strings (Go escapes), backquoted raw
strings, numbers or bare identifiers, ``and``, ``or``, ``not`` and
parentheses. Through a list of structures (``Checks.Status``) a match holds
if it holds for any element, as go-bexpr evaluates slices.

What differs from go-bexpr: ``matches`` compiles with Python's :mod:`re`,
not Go's RE2, so a pattern valid in one may be refused by the other (RE2 has
no look-around or back-references); and the texts after the common prefix of
a refusal are this module's, not go-bexpr's parser messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .params import parse_bool

__all__ = ["CATALOG", "HEALTH", "FilterError", "Predicate", "compile_filter"]

Predicate = Callable[[Any], bool]
PREFIX = "Failed to create boolean expression evaluator"


class FilterError(ValueError):
    """A filter Consul refuses; ``str()`` is the full body Consul sends (``Failed to create ...: why``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{PREFIX}: {reason}")


# -- the field types of Consul's answers ---------------------------------------------------------------------------


@attrs.frozen
class Field:
    """One field's type, as go-bexpr derives its configuration from the Go type (field_config.go)."""

    kind: str  # "string", "int", "bool", "float", "list", "map", "struct"
    elem: Field | None = None
    fields: Mapping[str, Field] | None = None

    @property
    def operators(self) -> frozenset[str]:
        if self.kind == "string":
            return frozenset({"==", "!=", "in", "not in", "matches", "not matches"})
        if self.kind in ("int", "bool", "float"):
            return frozenset({"==", "!="})
        if self.kind == "list":
            assert self.elem is not None
            if self.elem.kind in _PRIMITIVES:
                return frozenset({"in", "not in", "is empty", "is not empty"})
            return frozenset({"is empty", "is not empty"})
        if self.kind == "map":
            return frozenset({"is empty", "is not empty", "in", "not in"})
        return frozenset()

    def child(self, name: str) -> Field | None:
        if self.kind == "struct":
            assert self.fields is not None
            return self.fields.get(name)
        if self.kind == "map":
            return self.elem
        if self.kind == "list" and self.elem is not None and self.elem.kind == "struct":
            return self.elem.child(name)
        return None


_PRIMITIVES = ("string", "int", "bool", "float")
S, N, B = Field("string"), Field("int"), Field("bool")


def _struct(**fields: Field) -> Field:
    return Field("struct", fields=fields)


def _list(elem: Field) -> Field:
    return Field("list", elem=elem)


def _map(elem: Field) -> Field:
    return Field("map", elem=elem)


_MESH_GATEWAY = _struct(Mode=S)
_PROXY = _struct(
    DestinationServiceName=S,
    DestinationServiceID=S,
    LocalServiceAddress=S,
    LocalServicePort=N,
    LocalServiceSocketPath=S,
    Mode=S,
    TransparentProxy=_struct(OutboundListenerPort=N, DialedDirectly=B),
    MeshGateway=_MESH_GATEWAY,
    Expose=_struct(
        Checks=B, Paths=_list(_struct(ListenerPort=N, Path=S, LocalPathPort=N, Protocol=S, ParsedFromCheck=B))
    ),
    Upstreams=_list(
        _struct(
            DestinationType=S,
            DestinationNamespace=S,
            DestinationPartition=S,
            DestinationPeer=S,
            DestinationName=S,
            Datacenter=S,
            LocalBindAddress=S,
            LocalBindPort=N,
            LocalBindSocketPath=S,
            LocalBindSocketMode=S,
            MeshGateway=_MESH_GATEWAY,
            CentrallyConfigured=B,
        )
    ),
)
_SERVICE_ADDRESS = _struct(Address=S, Port=N)
_WEIGHTS = _struct(Passing=N, Warning=N)
_CONNECT = _struct(Native=B)

CATALOG = _struct(
    ID=S,
    Node=S,
    Address=S,
    Datacenter=S,
    TaggedAddresses=_map(S),
    NodeMeta=_map(S),
    ServiceKind=S,
    ServiceID=S,
    ServiceName=S,
    ServiceTags=_list(S),
    ServiceAddress=S,
    ServiceTaggedAddresses=_map(_SERVICE_ADDRESS),
    ServiceWeights=_WEIGHTS,
    ServiceMeta=_map(S),
    ServicePort=N,
    ServiceSocketPath=S,
    ServiceEnableTagOverride=B,
    ServiceProxy=_PROXY,
    ServiceConnect=_CONNECT,
    PeerName=S,
)
"""``structs.ServiceNode`` (agent/structs/structs.go), the element of ``/v1/catalog/service``."""

HEALTH = _struct(
    Node=_struct(ID=S, Node=S, Address=S, Datacenter=S, PeerName=S, TaggedAddresses=_map(S), Meta=_map(S)),
    Service=_struct(
        Kind=S,
        ID=S,
        Service=S,
        Tags=_list(S),
        Address=S,
        TaggedAddresses=_map(_SERVICE_ADDRESS),
        Meta=_map(S),
        Port=N,
        SocketPath=S,
        Weights=_WEIGHTS,
        EnableTagOverride=B,
        Proxy=_PROXY,
        Connect=_CONNECT,
        PeerName=S,
    ),
    Checks=_list(
        _struct(
            Node=S,
            CheckID=S,
            Name=S,
            Status=S,
            Notes=S,
            Output=S,
            ServiceID=S,
            ServiceName=S,
            ServiceTags=_list(S),
            Type=S,
            Interval=S,
            Timeout=S,
            ExposedPort=N,
            PeerName=S,
        )
    ),
)
"""``structs.CheckServiceNode``, the element of ``/v1/health/service``."""


# -- parsing (go-bexpr grammar.peg) ------------------------------------------------------------------------------------


@attrs.frozen
class _Match:
    selector: tuple[str, ...]
    operator: str
    value: str | None


@attrs.frozen
class _Not:
    operand: _Node


@attrs.frozen
class _Binary:
    operator: str  # "and" / "or"
    left: _Node
    right: _Node


_Node = _Match | _Not | _Binary
_IDENT = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_WS = re.compile(r"[ \t\r\n]+")
_GO_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def _unquote(body: str) -> str:
    """Go's ``strconv.Unquote`` of a double-quoted string's inside; ValueError where Go refuses it."""
    if "\n" in body:
        raise ValueError("newline in string")
    out: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char != "\\":
            out.append(char)
            position += 1
            continue
        match = _GO_ESCAPE.match(body, position)
        if match is None or match.group(1) == "'":
            raise ValueError(f"invalid escape at {position}")
        simple, hex2, hex4, hex8, octal = match.groups()
        if simple is not None:
            out.append(_SIMPLE_ESCAPES[simple])
        else:
            code = int(hex2 or hex4 or hex8, 16) if octal is None else int(octal, 8)
            if code > 0x10FFFF or (hex2 is None and octal is None and 0xD800 <= code <= 0xDFFF):
                raise ValueError(f"invalid code point at {position}")
            if octal is not None and code > 255:
                raise ValueError(f"invalid octal escape at {position}")
            out.append(chr(code))
        position = match.end()
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> FilterError:
        return FilterError(f"1:{self.pos + 1} ({self.pos}): {what}")

    def ws(self) -> bool:
        match = _WS.match(self.text, self.pos)
        if match is None:
            return False
        self.pos = match.end()
        return True

    def keyword(self, *words: str) -> bool:
        """``_ w1 _ w2 ...`` (whitespace before each word, as the grammar's operators); restore on failure."""
        start = self.pos
        for word in words:
            if not self.ws() or not self.text.startswith(word, self.pos):
                self.pos = start
                return False
            self.pos += len(word)
        return True

    def expression(self) -> _Node:
        self.ws()
        node = self.or_()
        self.ws()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos : self.pos + 10]!r}")
        return node

    def or_(self) -> _Node:
        left = self.and_()
        start = self.pos
        if self.keyword("or") and self.ws():
            return _Binary("or", left, self.or_())
        self.pos = start
        return left

    def and_(self) -> _Node:
        left = self.not_()
        start = self.pos
        if self.keyword("and") and self.ws():
            return _Binary("and", left, self.and_())
        self.pos = start
        return left

    def not_(self) -> _Node:
        if self.text.startswith("not", self.pos):
            start = self.pos
            self.pos += 3
            if self.ws():
                operand = self.not_()
                return operand.operand if isinstance(operand, _Not) else _Not(operand)
            self.pos = start
        return self.group()

    def group(self) -> _Node:
        if self.text.startswith("(", self.pos):
            self.pos += 1
            self.ws()
            inner = self.or_()
            self.ws()
            if not self.text.startswith(")", self.pos):
                raise self.fail("Unmatched parentheses")
            self.pos += 1
            return inner
        return self.match()

    def match(self) -> _Node:
        start = self.pos
        selector = self.selector()
        if selector is not None:
            for symbol in ("==", "!="):
                here = self.pos
                self.ws()
                if self.text.startswith(symbol, self.pos):
                    self.pos += len(symbol)
                    self.ws()
                    return _Match(selector, symbol, self.value())
                self.pos = here
            words: tuple[str, ...]
            for words, operator in (
                (("contains",), "in"),
                (("not", "contains"), "not in"),
                (("matches",), "matches"),
                (("not", "matches"), "not matches"),
            ):
                if self.keyword(*words):
                    if not self.ws():
                        raise self.fail(f"expected a value after {' '.join(words)!r}")
                    return _Match(selector, operator, self.value())
            if self.keyword("is", "empty"):
                return _Match(selector, "is empty", None)
            if self.keyword("is", "not", "empty"):
                return _Match(selector, "is not empty", None)
            self.pos = start
        value = self.value()
        for words, operator in ((("in",), "in"), (("not", "in"), "not in")):
            if self.keyword(*words):
                if not self.ws():
                    raise self.fail(f"expected a selector after {' '.join(words)!r}")
                target = self.selector()
                if target is None:
                    raise self.fail("Invalid selector")
                return _Match(target, operator, value)
        raise self.fail("expected a match expression")

    def selector(self) -> tuple[str, ...] | None:
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            return None
        path = [match.group()]
        self.pos = match.end()
        while True:
            if self.text.startswith(".", self.pos):
                ident = _IDENT.match(self.text, self.pos + 1)
                digits = re.compile(r"[0-9]+").match(self.text, self.pos + 1)
                if ident is not None:
                    path.append(ident.group())
                    self.pos = ident.end()
                    continue
                if digits is not None:
                    path.append(digits.group())
                    self.pos = digits.end()
                    continue
                return tuple(path)
            if self.text.startswith("[", self.pos):
                self.pos += 1
                self.ws()
                literal = self.string()
                if literal is None:
                    raise self.fail("Invalid index")
                self.ws()
                if not self.text.startswith("]", self.pos):
                    raise self.fail("Unclosed index expression")
                self.pos += 1
                path.append(literal)
                continue
            return tuple(path)

    def string(self) -> str | None:
        quote = self.text[self.pos : self.pos + 1]
        if quote not in ('"', "`"):
            return None
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.fail("Unterminated string literal")
        body = self.text[self.pos + 1 : end]
        if quote == "`":
            value = body.replace("\r", "")
        else:
            try:
                value = _unquote(body)
            except ValueError as exc:
                raise self.fail(f"invalid string literal: {exc}") from None
        self.pos = end + 1
        return value

    def value(self) -> str:
        start = self.pos
        selector = self.selector()
        if selector is not None:
            return ".".join(selector)
        self.pos = start
        number = _NUMBER.match(self.text, self.pos)
        if number is not None:
            after = self.text[number.end() : number.end() + 1]
            if after not in ("", ")") and not after.isspace():
                raise self.fail("Invalid number literal")
            self.pos = number.end()
            return number.group()
        literal = self.string()
        if literal is None:
            raise self.fail("expected a value")
        return literal


# -- checking against the fields, and evaluating -------------------------------------------------------------------


def _coerce(field: Field, raw: str, selector: str) -> Any:
    try:
        if field.kind == "int":
            return _go_int(raw)
        if field.kind == "float":
            return float(raw)
        if field.kind == "bool":
            return parse_bool(raw)
    except ValueError as exc:
        raise FilterError(f"Failed to coerce value {raw!r} for selector {selector!r}: {exc}") from None
    return raw


def _go_int(raw: str) -> int:
    """``strconv.ParseInt(raw, 0, 64)``: decimal, ``0x``, ``0o``/``0``, ``0b`` prefixes, underscores between digits."""
    text = raw
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if not text:
        raise ValueError(f"invalid syntax {raw!r}")
    lowered = text.lower()
    base = 10
    if lowered.startswith(("0x", "0b", "0o")):
        base = {"x": 16, "b": 2, "o": 8}[lowered[1]]
        text = text[2:]
    elif len(text) > 1 and text[0] == "0":
        base = 8
        text = text[1:]
    if not text or text.startswith("_") or text.endswith("_") or "__" in text or (base == 10 and "_" in text):
        raise ValueError(f"invalid syntax {raw!r}")
    value = sign * int(text.replace("_", ""), base)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"value out of range {raw!r}")
    return value


@attrs.frozen
class _Compiled:
    field: Field
    path: tuple[str, ...]
    kinds: tuple[str, ...]  # the kind of the field reached at each step
    operator: str
    value: Any


def _check(node: _Node, schema: Field) -> Predicate:
    if isinstance(node, _Not):
        inner = _check(node.operand, schema)
        return lambda item: not inner(item)
    if isinstance(node, _Binary):
        left, right = _check(node.left, schema), _check(node.right, schema)
        if node.operator == "and":
            return lambda item: left(item) and right(item)
        return lambda item: left(item) or right(item)
    shown = ".".join(node.selector)
    field: Field | None = schema
    kinds: list[str] = []
    for depth, name in enumerate(node.selector):
        assert field is not None
        kinds.append(field.kind)
        field = field.child(name)
        if field is None:
            raise FilterError(f"Selector {'.'.join(node.selector[: depth + 1])!r} is not valid")
    assert field is not None
    if node.operator not in field.operators:
        raise FilterError(f"Invalid match operator {node.operator!r} for selector {shown!r}")
    value: Any = None
    if node.value is not None:
        target = field.elem if field.kind == "list" and field.elem is not None else field
        value = node.value if field.kind == "map" else _coerce(target, node.value, shown)
        if node.operator in ("matches", "not matches"):
            try:
                value = re.compile(node.value)
            except re.error as exc:
                raise FilterError(f"Failed to compile regular expression {node.value!r}: {exc}") from None
    compiled = _Compiled(field, node.selector, tuple(kinds), node.operator, value)
    return lambda item: _evaluate(compiled, 0, item, schema)


_ZERO: dict[str, Any] = {"string": "", "int": 0, "bool": False, "float": 0.0}


def _evaluate(match: _Compiled, depth: int, value: Any, field: Field) -> bool:
    if depth == len(match.path):
        return _apply(match, value, field)
    name = match.path[depth]
    if field.kind == "list":
        items = value if isinstance(value, list) else []
        return any(_evaluate(match, depth, item, field.elem) for item in items if field.elem is not None)
    if field.kind == "map":
        if not isinstance(value, dict) or name not in value:
            # go-bexpr: a missing key can be neither equal, non-empty nor containing anything.
            return match.operator in ("!=", "is empty", "not in", "not matches")
        assert field.elem is not None
        return _evaluate(match, depth + 1, value[name], field.elem)
    child = field.child(name)
    assert child is not None
    inner = value.get(name) if isinstance(value, dict) else None
    if inner is None:
        inner = _ZERO.get(child.kind, {} if child.kind in ("map", "struct") else [])
    return _evaluate(match, depth + 1, inner, child)


def _apply(match: _Compiled, value: Any, field: Field) -> bool:
    operator = match.operator
    negate = operator in ("!=", "not in", "is not empty", "not matches")
    if operator in ("==", "!="):
        same = type(value) is type(match.value) and value == match.value
        if field.kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            same = float(value) == match.value
        return same != negate
    if operator in ("is empty", "is not empty"):
        empty = not isinstance(value, list | dict) or len(value) == 0
        return empty != negate
    if operator in ("matches", "not matches"):
        found = isinstance(value, str) and match.value.search(value) is not None
        return found != negate
    if field.kind == "string":
        found = isinstance(value, str) and match.value in value
    elif field.kind == "map":
        found = isinstance(value, dict) and match.value in value
    else:
        found = isinstance(value, list) and any(
            type(element) is type(match.value) and element == match.value for element in value
        )
    return found != negate


def compile_filter(text: str, schema: Field) -> Predicate:
    """A predicate over one answer element (a JSON object), or FilterError exactly where Consul refuses ``text``."""
    return _check(_Parser(text).expression(), schema)
