# SPDX-License-Identifier: MIT
"""Load a policy file: YAML text -> `ast.Policy`, every node located.

Layer: policy (front end). Imports yaml (safe composer only), `policy.ast`,
`policy.expr`, `errors`, `source`, `semantics.events` (slot names).

The YAML is composed (never constructed into arbitrary objects) with the safe
loader, and walked field by field; every problem is an `InputError` at the
node's line and column, saying what was expected and what was found.

Composing refuses what would make the walk (or the passes after it) crash or hang:
lists and mappings nested deeper than `MAX_YAML_DEPTH`, an alias inside the node it
names (a cycle), aliases that repeat more than `MAX_ALIASED` nodes and characters in
all (the "billion laughs"), tags other than YAML's own (``!!str``, ``!!int``...), and
integers, floats and booleans that do not convert (``!!int x``, ``0x_``, 4301 digits).
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fsgs_smt.errors import InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.policy.expr import U64_MAX, Locate, Locator, parse_expr, parse_stmt
from fsgs_smt.semantics.events import USER_REGS_SLOTS
from fsgs_smt.source import Span

T = TypeVar("T")

POLICY_KEYS = (
    "fsgs-policy", "name", "title", "description", "include", "settings", "constants",
    "functions", "procedures", "setregs", "hooks", "state", "invariants",
)  # fmt: skip
LIB_KEYS = ("fsgs-policy-lib", "title", "description", "constants", "functions", "procedures")

MAX_YAML_DEPTH = 64
MAX_ALIASED = 100_000

_SC = yaml.constructor.SafeConstructor()
SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"
POLICIES_DIR = SPECS_DIR / "policies"  # the shipped policies, and their libraries in lib/
_YAML_TAG = "tag:yaml.org,2002:"
# the tags of YAML's own that a policy can use (``merge`` is what PyYAML calls a plain
# ``<<`` key, which is then an unknown key); !!binary, !!timestamp, !!set... are refused
_KNOWN_TAGS = {_YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                       "merge")}  # fmt: skip
# anchors, tags, blanks and comments before a node's characters (a node starts at them)
_PROPERTIES = re.compile(r"(?:&[0-9A-Za-z_-]+|![^\s]*|\s+|#[^\n]*)*")
_BREAKS = "\r\n\x85\u2028\u2029"
_SURROGATE = re.compile("[\ud800-\udfff]")
# line breaks of YAML 1.1 that most editors show inside a line: refused, so that every
# line:column fsgs-smt reports is the one the editor shows
_ODD_BREAK = re.compile("[\x85\u2028\u2029]")
_ODD_BREAK_NAMES = {
    "\x85": "NEXT LINE", "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR",
}  # fmt: skip
_ODD_BREAK_ESCAPES = {"\x85": "N", "\u2028": "L", "\u2029": "P"}
_ESCAPES: dict[str, str] = yaml.scanner.Scanner.ESCAPE_REPLACEMENTS
_ESCAPE_CODES: dict[str, int] = yaml.scanner.Scanner.ESCAPE_CODES
# significant digits beyond which a YAML integer is refused unconverted (2**64-1 has 64
# binary digits; Python refuses to convert decimals of more than 4300)
_MAX_INT_DIGITS = 64
_BUILTIN_FIELDS = {
    "thread": {"fsindex", "gsindex", "fsbase", "gsbase", "tls", "index", "base"},
    "mm": {"ldt", "ldt_n"},
}
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _span(node: yaml.Node, file: str) -> Span:
    mark = node.start_mark
    return Span(file, mark.line + 1, mark.column + 1)


def _content_span(node: yaml.ScalarNode, file: str) -> Span:
    """Where the characters of a scalar's value begin (after a quote; below a block header)."""
    span = _span(node, file)
    if node.style in ('"', "'"):
        return span.shifted(1)
    if node.style in ("|", ">"):
        return Span(file, span.line + 1, span.col + 2)
    return span


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = _scalar_value(node)  # type: ignore[arg-type]
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return f"the float {describe(value)}"
    if value is None:
        return "null"
    return f"the string {describe(value)}"


class _BadScalarError(ValueError):
    """A scalar whose tag (explicit or implied) does not fit its text; the message says why."""


def _scalar_value(node: yaml.ScalarNode) -> object:
    """The value of a scalar: bool, int, float or None by its tag, else its text.

    Raises:
        _BadScalarError: an integer, float or boolean that does not convert (the composer
            checks every scalar of a file, so that walking it never raises this).
    """
    tag = node.tag
    if tag == "tag:yaml.org,2002:int":
        _check_int_size(str(node.value))
    try:
        if tag == "tag:yaml.org,2002:int":
            return _SC.construct_yaml_int(node)
        if tag == "tag:yaml.org,2002:bool":
            return _SC.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:float":
            return _SC.construct_yaml_float(node)
    except (ValueError, IndexError, KeyError):  # PyYAML's conversions of bad text
        kind, expected = {
            "tag:yaml.org,2002:int": ("integer", "digits, 0x and hex digits, 0b and binary"),
            "tag:yaml.org,2002:bool": ("boolean", "true or false"),
            "tag:yaml.org,2002:float": ("float", "digits with a '.' or an exponent, or .inf"),
        }[tag]
        raise _BadScalarError(f"bad {kind} {describe(node.value)}: expected {expected}") from None
    return str(node.value)


def _check_int_size(text: str) -> None:
    """Refuse a YAML integer with more significant digits than any 64-bit value needs.

    Raises:
        _BadScalarError: the text has too many digits (it is never converted).
    """
    digits = text.replace("_", "").lstrip("+-")
    parts = [digits[2:]] if digits[:2] in ("0b", "0x") else digits.split(":")  # 1:30 = 90
    longest = max(len(part.lstrip("0")) for part in parts)
    if longest > _MAX_INT_DIGITS or len(parts) > 12:
        raise _BadScalarError(
            f"integer out of range: expected at most 2**64-1, got {describe(text)}"
        )


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing nodes only, with the checks of this module's docstring.

    Every refusal is an `InputError` at the offending node or alias.
    """

    # A plain scalar that YAML 1.1 would read as a date or as '=' stays a string (as in
    # YAML 1.2's core schema); only an explicit !!timestamp or !!value is refused.
    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class attribute)
        first: [(tag, rx) for tag, rx in resolvers
                if tag not in (_YAML_TAG + "timestamp", _YAML_TAG + "value")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }  # fmt: skip

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0
        self.open_anchors: set[str] = set()  # anchors of the nodes being composed
        self.sizes: dict[int, int] = {}  # id(node) -> nodes and characters, aliases expanded
        self.aliased = 0  # what the aliases of the document repeat, in all

    def at(self, mark: Any) -> Span:
        """The span of a mark (a yaml.Mark, or libyaml's to the stubs) of this file."""
        return Span(self.file, mark.line + 1, mark.column + 1) if mark else Span(self.file, 1, 1)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            return self.alias(event, parent, index)
        collection = isinstance(event, yaml.CollectionStartEvent)
        if collection:
            self.depth += 1
            if self.depth > MAX_YAML_DEPTH:
                raise InputError(
                    self.at(event.start_mark),
                    f"YAML nested too deeply: expected at most {MAX_YAML_DEPTH} levels of "
                    "lists and mappings",
                )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self.open_anchors.add(anchor)
        node = super().compose_node(parent, index)
        self.open_anchors.discard(anchor or "")
        self.depth -= collection
        if node is not None:
            self.check(node)
        return node

    def alias(
        self, event: yaml.AliasEvent, parent: yaml.Node | None, index: int
    ) -> yaml.Node | None:
        """The node an alias names, unless it contains the alias or repeats too much."""
        if event.anchor in self.open_anchors:
            raise InputError(
                self.at(event.start_mark),
                f"recursive alias *{event.anchor}: expected an alias of a node that does not "
                "contain it",
            )
        node = super().compose_node(parent, index)
        self.aliased += self.sizes.get(id(node), 0)
        if self.aliased > MAX_ALIASED:
            raise InputError(
                self.at(event.start_mark),
                f"alias *{event.anchor} repeats too much: expected aliases to repeat at most "
                f"{MAX_ALIASED} nodes and characters in all",
            )
        return node

    def check(self, node: yaml.Node) -> None:
        """Refuse a foreign tag or a scalar that does not convert; record the node's size."""
        if node.tag.startswith(_YAML_TAG) and node.tag not in _KNOWN_TAGS:
            raise InputError(
                self.at(node.start_mark),
                f"YAML tag !!{node.tag.removeprefix(_YAML_TAG)} is not read by fsgs-smt: "
                "expected none, or one of !!str, !!int, !!float, !!bool, !!null, !!seq, !!map",
            )
        if not node.tag.startswith(_YAML_TAG):
            raise InputError(
                self.at(node.start_mark),
                f"unknown YAML tag {describe(node.tag)}: expected none or one of YAML's own "
                "(!!str, !!int, !!bool...); quote a string that starts with '!'",
            )
        if isinstance(node, yaml.ScalarNode):
            try:
                _scalar_value(node)
            except _BadScalarError as exc:
                raise InputError(self.at(node.start_mark), str(exc)) from None
            surrogate = _SURROGATE.search(node.value)
            if surrogate:  # from an escape; no output could encode it
                raise InputError(
                    self.at(node.start_mark),
                    f"bad escape U+{ord(surrogate.group()):04X} (half of a UTF-16 pair): "
                    "expected a Unicode character, as one \\U escape",
                )
            self.sizes[id(node)] = 1 + len(node.value)
        elif isinstance(node, yaml.SequenceNode):
            self.sizes[id(node)] = 1 + sum(self.sizes[id(item)] for item in node.value)
        else:
            self.sizes[id(node)] = 1 + sum(
                self.sizes[id(k)] + self.sizes[id(v)] for k, v in node.value
            )


def _unquote(raw: str, double: bool) -> tuple[str, list[int]]:
    """The value of a quoted scalar whose text between the quotes is *raw*, decoded as
    PyYAML's scanner does (escapes, ``''``, folded line breaks), and for each character of
    the value, and for its end, the offset in *raw* it comes from."""
    chars: list[str] = []
    where: list[int] = []
    n = len(raw)

    def line_break(i: int) -> tuple[str, int]:
        if raw.startswith("\r\n", i):
            return "\n", i + 2
        return ("\n" if raw[i] in "\r\n\x85" else raw[i]), i + 1

    def breaks(i: int) -> int:
        """Blank lines after a line break: their breaks kept, their blanks dropped."""
        while True:
            while i < n and raw[i] in " \t":
                i += 1
            if i >= n or raw[i] not in _BREAKS:
                return i
            ch, after = line_break(i)
            chars.append(ch)
            where.append(i)
            i = after

    i = 0
    while i < n:
        ch = raw[i]
        if ch in " \t" or ch in _BREAKS:
            j = i
            while j < n and raw[j] in " \t":
                j += 1
            if j < n and raw[j] in _BREAKS:  # trailing blanks dropped, the break folded
                first, after = line_break(j)
                mark = len(chars)
                i = breaks(after)
                if first != "\n" or len(chars) == mark:
                    chars.insert(mark, " " if first == "\n" else first)
                    where.insert(mark, j)
            else:
                chars.extend(raw[i:j])
                where.extend(range(i, j))
                i = j
        elif double and ch == "\\" and i + 1 < n and raw[i + 1] in _BREAKS:
            i = breaks(line_break(i + 1)[1])  # an escaped line break and the indentation vanish
        elif double and ch == "\\" and i + 1 < n and raw[i + 1] in _ESCAPES:
            chars.append(_ESCAPES[raw[i + 1]])
            where.append(i)
            i += 2
        elif double and ch == "\\" and _hex_escape(raw, i):
            length = _ESCAPE_CODES[raw[i + 1]]
            chars.append(chr(int(raw[i + 2 : i + 2 + length], 16)))
            where.append(i)
            i += 2 + length
        elif not double and raw.startswith("''", i):
            chars.append("'")
            where.append(i)
            i += 2
        else:
            chars.append(ch)
            where.append(i)
            i += 1
    where.append(n)
    return "".join(chars), where


def _hex_escape(raw: str, i: int) -> bool:
    """Whether ``raw[i:]`` starts with an escape such as ``\\x41`` or ``\\u00e9``."""
    length = _ESCAPE_CODES.get(raw[i + 1 : i + 2], 0)
    digits = raw[i + 2 : i + 2 + length]
    return length > 0 and len(digits) == length and all(c in string.hexdigits for c in digits)


class _Walker:
    def __init__(self, file: str, text: str = "") -> None:
        self.file = file
        self.text = text
        self._locator: Locator | None = None

    def span_at(self, index: int) -> Span:
        """The span of the character at *index* in the file's text."""
        if self._locator is None:
            self._locator = Locator(self.text, Span(self.file, 1, 1))
        return self._locator.at(index)

    def source_of(self, node: yaml.ScalarNode) -> tuple[str, Span, Locate | None]:
        """The characters of a scalar, where they start, and how offsets in them map to the
        file (None: the characters are the file's from the start on).

        Plain and block scalars are parsed from their source text (YAML folds their line
        breaks and indentation, which are whitespace to the expression grammar anyway), so
        an error inside a multi-line expression points at the right line and column.
        Quoted scalars are parsed from their value, each character located where its
        source (an escape, a quote doubled, a folded line break) is. Anchors and tags
        before the characters are skipped.
        """
        start, end = node.start_mark.index, node.end_mark.index
        if not self.text or end > len(self.text):
            return str(node.value), _content_span(node, self.file), None
        if self.text[start : start + 1] in ("&", "!"):
            start = min(_PROPERTIES.match(self.text, start).end(), end)  # type: ignore[union-attr]
        raw = self.text[start:end]
        if node.style in ("|", ">"):
            newline = raw.find("\n")
            if newline < 0:
                return str(node.value), _content_span(node, self.file), None
            return raw[newline + 1 :], self.span_at(start + newline + 1), None
        if node.style in ('"', "'") and len(raw) >= 2 and raw[0] == raw[-1] == node.style:
            value, where = _unquote(raw[1:-1], node.style == '"')
            if value == node.value:
                locate = Locator(raw[1:-1], self.span_at(start + 1)).at
                return value, locate(0), lambda pos: locate(where[pos])
        if node.style in ('"', "'"):
            return str(node.value), self.span_at(start), None
        return raw, self.span_at(start), None

    def span(self, node: yaml.Node) -> Span:
        return _span(node, self.file)

    def error(self, node: yaml.Node, message: str) -> InputError:
        return InputError(self.span(node), message)

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what}: expected a mapping, got {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or not isinstance(key_node.value, str):
                raise self.error(key_node, f"{what}: expected a string key, got {_kind(key_node)}")
            key = str(key_node.value)
            if key in out:
                raise self.error(key_node, f"{what}: duplicate key {key!r}")
            if allowed is not None and key not in allowed:
                raise self.error(
                    key_node,
                    f"unknown key {key!r} in {what}: expected one of {', '.join(allowed)}",
                )
            out[key] = (key_node, value_node)
        return out

    def require(
        self, items: dict[str, tuple[yaml.Node, yaml.Node]], key: str, node: yaml.Node, what: str
    ) -> yaml.Node:
        if key not in items:
            raise self.error(node, f"missing key {key!r} in {what}")
        return items[key][1]

    def scalar(self, node: yaml.Node, what: str, kind: type[T], expected: str) -> T:
        if isinstance(node, yaml.ScalarNode):
            value = _scalar_value(node)
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
        raise self.error(node, f"{what}: expected {expected}, got {_kind(node)}")

    def string(self, node: yaml.Node, what: str) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            return str(node.value)
        raise self.error(node, f"{what}: expected a string, got {_kind(node)}")

    def identifier(self, node: yaml.Node, what: str) -> str:
        text = self.string(node, what)
        if not text or text[0].isdigit() or not set(text) <= _IDENT_CHARS:
            raise self.error(node, f"{what}: expected an identifier, got {describe(text)}")
        return text

    def identifier_or_dashed(self, node: yaml.Node, what: str) -> str:
        """An id such as ``Q1a`` or ``no-cross-task-leak``."""
        text = self.string(node, what)
        if not text or not set(text) <= _IDENT_CHARS | {"-", "."}:
            raise self.error(
                node, f"{what}: expected letters, digits, '-', '_' or '.', got {describe(text)}"
            )
        return text

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what}: expected a list, got {_kind(node)}")
        return list(node.value)

    def expr(self, node: yaml.Node, what: str) -> ast.Expr:
        if isinstance(node, yaml.ScalarNode):
            value = _scalar_value(node)
            if isinstance(value, bool):
                return ast.Bool(value, self.span(node))
            if isinstance(value, int):
                if not 0 <= value <= U64_MAX:
                    raise self.error(
                        node, f"number out of range: expected 0..2**64-1, got {describe(value)}"
                    )
                return ast.Num(value, self.span(node))
            if isinstance(value, str):
                return parse_expr(*self.source_of(node))
        raise self.error(node, f"{what}: expected an expression string, got {_kind(node)}")

    # -- statements -------------------------------------------------------------------------
    def stmts(self, node: yaml.Node, what: str) -> tuple[ast.Stmt, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return ()
        return tuple(self.stmt(item, what) for item in self.sequence(node, what))

    def stmt(self, node: yaml.Node, what: str) -> ast.Stmt:
        if isinstance(node, yaml.ScalarNode) and isinstance(_scalar_value(node), str):
            return parse_stmt(*self.source_of(node))
        if isinstance(node, yaml.MappingNode):
            keys = self.mapping(node, f"statement in {what}", ("if", "then", "else", "each_seg"))
            if "each_seg" in keys:
                if len(keys) != 1:
                    raise self.error(node, "each_seg: expected it alone in its mapping")
                return ast.EachSeg(self.stmts(keys["each_seg"][1], "each_seg"), self.span(node))
            if "if" not in keys:
                raise self.error(node, f"statement in {what}: expected 'if' or 'each_seg'")
            if "then" not in keys:
                raise self.error(node, "missing key 'then' in if statement")
            cond = self.expr(keys["if"][1], "if")
            then = self.stmts(keys["then"][1], "then")
            other = self.stmts(keys["else"][1], "else") if "else" in keys else ()
            return ast.If(cond, then, other, self.span(node))
        raise self.error(
            node,
            f"statement in {what}: expected a statement string or an if/each_seg mapping, "
            f"got {_kind(node)}",
        )

    # -- sections ---------------------------------------------------------------------------
    def named_section(
        self,
        items: dict[str, tuple[yaml.Node, yaml.Node]],
        key: str,
        build: Callable[[str, yaml.Node, yaml.Node], T],
    ) -> dict[str, T]:
        if key not in items:
            return {}
        out: dict[str, T] = {}
        for name, (key_node, value_node) in self.mapping(items[key][1], key).items():
            self.identifier(key_node, f"{key} name")
            out[name] = build(name, key_node, value_node)
        return out

    def params(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        names = [self.identifier(n, f"parameter of {what}") for n in self.sequence(node, "params")]
        if len(set(names)) != len(names):
            raise self.error(node, f"params of {what}: duplicate parameter name")
        return tuple(names)

    def function(self, name: str, key: yaml.Node, node: yaml.Node) -> ast.Function:
        what = f"function {name!r}"
        items = self.mapping(node, what, ("params", "body", "doc"))
        params = self.params(items["params"][1], what) if "params" in items else ()
        body = self.expr(self.require(items, "body", node, what), f"body of {what}")
        doc = self.string(items["doc"][1], "doc") if "doc" in items else ""
        return ast.Function(name, params, body, self.span(key), doc)

    def procedure(self, name: str, key: yaml.Node, node: yaml.Node) -> ast.Procedure:
        what = f"procedure {name!r}"
        items = self.mapping(node, what, ("params", "body", "doc"))
        params = self.params(items["params"][1], what) if "params" in items else ()
        body = self.stmts(self.require(items, "body", node, what), what)
        doc = self.string(items["doc"][1], "doc") if "doc" in items else ""
        return ast.Procedure(name, params, body, self.span(key), doc)

    def setting(self, name: str, key: yaml.Node, node: yaml.Node) -> ast.Setting:
        doc = ""
        value_node = node
        if isinstance(node, yaml.MappingNode):
            items = self.mapping(node, f"setting {name!r}", ("value", "doc"))
            value_node = self.require(items, "value", node, f"setting {name!r}")
            doc = self.string(items["doc"][1], "doc") if "doc" in items else ""
        if isinstance(value_node, yaml.ScalarNode):
            value = _scalar_value(value_node)
            if isinstance(value, bool) or (isinstance(value, int) and 0 <= value <= U64_MAX):
                return ast.Setting(name, value, self.span(key), doc)
            if isinstance(value, int):
                raise self.error(
                    value_node,
                    f"setting {name!r} out of range: expected a boolean or an integer in "
                    f"0..2**64-1, got {describe(value)}",
                )
        raise self.error(
            value_node,
            f"setting {name!r}: expected a boolean or a non-negative integer, "
            f"got {_kind(value_node)}",
        )

    def constant(self, name: str, key: yaml.Node, node: yaml.Node) -> tuple[int, Span]:
        value = self.scalar(node, f"constant {name!r}", int, "an integer")
        if not 0 <= value <= U64_MAX:
            raise self.error(node, f"constant {name!r}: expected 0..2**64-1, got {describe(value)}")
        return value, self.span(key)


def _read(path: Path, kind: str = "policy file") -> tuple[str, yaml.Node]:
    """The text of a YAML file (newlines translated as text files read) and its node tree;
    *kind* names the file in messages ("policy file", "invariants file", ...).

    Raises:
        InputError: unreadable, not UTF-8, malformed YAML, or refused by `_Loader`.
    """
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(Span(file, 1, 1), f"no such {kind}: expected a readable file") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            Span(file, 1, 1), f"cannot read {kind}: {reason}: expected a readable file"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        raise InputError(
            Span(file, data.count(b"\n", 0, exc.start) + 1, col),
            f"{kind} is not UTF-8: expected UTF-8 text, got byte 0x{data[exc.start]:02x}",
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, _compose(text, file, kind)


def _compose(text: str, file: str, kind: str = "policy file") -> yaml.Node:
    """The node tree of *text*, composed by `_Loader`.

    Raises:
        InputError: a control character, malformed YAML, or what `_Loader` refuses.
    """
    at = Locator(text, Span(file, 1, 1)).at
    odd = _ODD_BREAK.search(text)
    if odd is not None:  # YAML 1.1 breaks lines there; editors and our positions do not
        ch = odd.group()
        raise InputError(
            at(odd.start()),
            f"malformed YAML: line break U+{ord(ch):04X} ({_ODD_BREAK_NAMES[ch]}): expected "
            "'\\n' line breaks (a double-quoted string may write it as an escape, "
            f"\\{_ODD_BREAK_ESCAPES[ch]})",
        )
    try:
        loader = _Loader(text, file)
    except yaml.reader.ReaderError as exc:  # a control character, anywhere in the text
        raise InputError(
            at(exc.position),
            f"malformed YAML: control character U+{exc.character:04X}: expected printable "
            "text (a double-quoted string may write it as an escape)",
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark else Span(file, 1, 1)
        message = f"malformed YAML: {exc.problem or exc.context}"
        if exc.context and exc.context_mark and exc.problem:
            cm = exc.context_mark
            message += f" ({exc.context} at {cm.line + 1}:{cm.column + 1})"
        raise InputError(span, message) from None
    except yaml.YAMLError as exc:
        raise InputError(Span(file, 1, 1), f"malformed YAML: {exc}") from None
    except (ValueError, OverflowError):  # chr() of an escape such as \UFFFFFFFF
        raise InputError(
            at(loader.get_mark().index),
            "malformed YAML: escape out of range: expected a Unicode code point, at most "
            "\\U0010FFFF",
        ) from None
    finally:
        loader.dispose()
    if node is None:
        raise InputError(Span(file, 1, 1), f"empty {kind}: expected a mapping")
    return node


def _merge(
    target: dict[str, T], source: dict[str, T], what: str, span_of: Callable[[T], Span]
) -> None:
    for name, value in source.items():
        if name in target:
            raise InputError(
                span_of(value),
                f"duplicate {what} {name!r}: already defined at {span_of(target[name])}",
            )
        target[name] = value


def load_policy(path: Path) -> ast.Policy:
    """Read and parse a policy file and the libraries it includes.

    Raises:
        InputError: malformed YAML, unknown or missing keys, wrong types, syntax errors.
    """
    text, node = _read(path)
    w = _Walker(str(path), text)
    items = w.mapping(node, "policy", POLICY_KEYS)
    version = w.scalar(w.require(items, "fsgs-policy", node, "policy"), "fsgs-policy", int, "1")
    if version != 1:
        raise w.error(items["fsgs-policy"][1], f"fsgs-policy: expected 1, got {version}")
    name = w.string(w.require(items, "name", node, "policy"), "name")
    title = w.string(w.require(items, "title", node, "policy"), "title")
    description = w.string(items["description"][1], "description") if "description" in items else ""

    settings = w.named_section(items, "settings", w.setting)
    constants = w.named_section(items, "constants", w.constant)
    functions = w.named_section(items, "functions", w.function)
    procedures = w.named_section(items, "procedures", w.procedure)
    digest = hashlib.sha256(text.encode())

    if "include" in items:
        for inc_node in w.sequence(items["include"][1], "include"):
            inc_name = w.string(inc_node, "include")
            inc_path = path.parent / inc_name
            try:
                found = inc_path.is_file()
            except OSError as exc:  # a name too long for the file system, ...
                raise w.error(
                    inc_node, f"include {describe(inc_name)}: cannot open it: {exc.strerror}"
                ) from None
            if not found:
                hint = ""
                if (POLICIES_DIR / inc_name).is_file() and path.parent != POLICIES_DIR:
                    hint = (f" (the shipped one is in {POLICIES_DIR}: copy that folder, "
                            "e.g. with fsgs-smt policies --copy DIR)")  # fmt: skip
                raise w.error(inc_node, f"include: no such file {str(inc_path)!r}: "
                                        f"expected a policy library there{hint}")  # fmt: skip
            inc_text, lib_node = _read(inc_path, "policy library")
            digest.update(inc_text.encode())
            lw = _Walker(str(inc_path), inc_text)
            lib = lw.mapping(lib_node, "policy library", LIB_KEYS)
            lib_version = lw.scalar(
                lw.require(lib, "fsgs-policy-lib", lib_node, "policy library"),
                "fsgs-policy-lib", int, "1",
            )  # fmt: skip
            if lib_version != 1:
                raise lw.error(lib["fsgs-policy-lib"][1],
                               f"fsgs-policy-lib: expected 1, got {lib_version}")  # fmt: skip
            for key in ("title", "description"):
                if key in lib:
                    lw.string(lib[key][1], key)
            _merge(constants, lw.named_section(lib, "constants", lw.constant), "constant",
                   lambda c: c[1])  # fmt: skip
            _merge(functions, lw.named_section(lib, "functions", lw.function), "function",
                   lambda f: f.span)  # fmt: skip
            _merge(procedures, lw.named_section(lib, "procedures", lw.procedure), "procedure",
                   lambda p: p.span)  # fmt: skip

    hooks: dict[str, ast.Hook] = {}
    hooks_node = w.require(items, "hooks", node, "policy")
    for hook_name, (key_node, body_node) in w.mapping(hooks_node, "hooks").items():
        hooks[hook_name] = ast.Hook(
            hook_name, w.stmts(body_node, f"hook {hook_name}"), w.span(key_node)
        )

    setregs_node = w.require(items, "setregs", node, "policy")
    sr = w.mapping(setregs_node, "setregs", ("order", "stop_at_first_error"))
    order_node = w.require(sr, "order", setregs_node, "setregs")
    order = tuple(w.string(n, "setregs order") for n in w.sequence(order_node, "setregs order"))
    for slot_node, slot in zip(order_node.value, order, strict=True):
        if slot not in USER_REGS_SLOTS:
            raise w.error(
                slot_node,
                f"unknown register slot {slot!r}: expected a field of struct user_regs_struct",
            )
    if sorted(order) != sorted(USER_REGS_SLOTS):
        raise w.error(
            order_node, "setregs order: expected each of the 27 user_regs_struct slots exactly once"
        )
    stop = w.scalar(
        w.require(sr, "stop_at_first_error", setregs_node, "setregs"),
        "stop_at_first_error", bool, "a boolean",
    )  # fmt: skip
    setregs = ast.Setregs(order, stop, w.span(setregs_node))

    extra: dict[str, dict[str, int]] = {"thread": {}, "mm": {}}
    if "state" in items:
        state_node = items["state"][1]
        for owner, (_, fields_node) in w.mapping(state_node, "state", ("thread", "mm")).items():
            for fname, (fkey, wnode) in w.mapping(fields_node, f"state.{owner}").items():
                w.identifier(fkey, f"state.{owner} field")
                if fname in _BUILTIN_FIELDS[owner]:
                    raise w.error(fkey, f"state.{owner}.{fname}: clashes with a built-in field")
                width = w.scalar(wnode, f"width of {owner}.{fname}", int, "a width 1..64")
                if not 1 <= width <= 64:
                    raise w.error(wnode, f"width of {owner}.{fname}: expected 1..64, got {width}")
                extra[owner][fname] = width

    return ast.Policy(
        extra_thread=extra["thread"],
        extra_mm=extra["mm"],
        name=name,
        title=title,
        description=description,
        path=str(path),
        settings=settings,
        constants=constants,
        functions=functions,
        procedures=procedures,
        hooks=hooks,
        setregs=setregs,
        span=w.span(node),
        text_hash=digest.hexdigest(),
    )
