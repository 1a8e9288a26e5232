# SPDX-License-Identifier: MIT
"""Load a policy file: YAML text -> `ast.Policy`, every node located.

Layer: policy (front end). Imports yaml (safe composer only), `policy.ast`,
`policy.expr`, `errors`, `source`, `semantics.events` (slot names).

The YAML is composed (never constructed into arbitrary objects) with the safe
loader, and walked field by field; every problem is an `InputError` at the
node's line and column, saying what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml

from fsgs_smt.errors import InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.policy.expr import parse_expr, parse_stmt
from fsgs_smt.semantics.events import USER_REGS_SLOTS
from fsgs_smt.source import Span

T = TypeVar("T")

POLICY_KEYS = (
    "fsgs-policy", "name", "title", "description", "include", "settings", "constants",
    "functions", "procedures", "setregs", "hooks", "state", "invariants",
)  # fmt: skip
LIB_KEYS = ("fsgs-policy-lib", "title", "description", "constants", "functions", "procedures")

_SC = yaml.constructor.SafeConstructor()
_WS_ESCAPE = re.compile(r"\\[tnr \n]")
_WS_ESCAPES = re.compile(r"(?:[^\\]|\\[tnr \n])*", re.DOTALL)
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
    if value is None:
        return "null"
    return f"the string {describe(value)}"


def _scalar_value(node: yaml.ScalarNode) -> object:
    tag = node.tag
    if tag == "tag:yaml.org,2002:int":
        return _SC.construct_yaml_int(node)
    if tag == "tag:yaml.org,2002:bool":
        return _SC.construct_yaml_bool(node)
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:float":
        return _SC.construct_yaml_float(node)
    return str(node.value)


class _Walker:
    def __init__(self, file: str, text: str = "") -> None:
        self.file = file
        self.text = text

    def source_of(self, node: yaml.ScalarNode) -> tuple[str, Span]:
        """The characters of a scalar as written in the file, and where they start.

        Plain and block scalars are parsed from their source text (YAML folds their line
        breaks and indentation, which are whitespace to the expression grammar anyway), so
        an error inside a multi-line expression points at the right line and column.
        Quoted scalars use their value (a double-quoted one with escapes is approximated).
        """
        start, end = node.start_mark.index, node.end_mark.index
        if self.text and node.style in (None, "", "|", ">") and end <= len(self.text):
            raw = self.text[start:end]
            if node.style in ("|", ">"):
                newline = raw.find("\n")
                if newline < 0:
                    return str(node.value), _content_span(node, self.file)
                line = node.start_mark.line + 2
                return raw[newline + 1 :], Span(self.file, line, 1)
            return raw, _span(node, self.file)
        if self.text and node.style in ('"', "'") and end <= len(self.text):
            raw = self.text[start + 1 : end - 1]
            span = _span(node, self.file).shifted(1)
            if node.style == "'" and "''" not in raw:
                return raw, span
            if node.style == '"' and _WS_ESCAPES.fullmatch(raw):
                # whitespace escapes become blanks of the same length: positions stay exact
                return _WS_ESCAPE.sub(lambda m: " " + m.group()[1:].replace("t", " ")
                                      .replace("n", " ").replace("r", " "), raw), span  # fmt: skip
        return str(node.value), _content_span(node, self.file)

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
            if isinstance(value, bool | int) and (isinstance(value, bool) or value >= 0):
                return ast.Setting(name, value, self.span(key), doc)
        raise self.error(
            value_node,
            f"setting {name!r}: expected a boolean or a non-negative integer, "
            f"got {_kind(value_node)}",
        )

    def constant(self, name: str, key: yaml.Node, node: yaml.Node) -> tuple[int, Span]:
        value = self.scalar(node, f"constant {name!r}", int, "an integer")
        if not 0 <= value < 2**64:
            raise self.error(node, f"constant {name!r}: expected 0..2**64-1, got {describe(value)}")
        return value, self.span(key)


def _read(path: Path) -> tuple[str, yaml.Node]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(Span(file, 1, 1), "no such policy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Span(file, 1, 1), f"cannot read policy file: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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
    if node is None:
        raise InputError(Span(file, 1, 1), "empty policy file: expected a mapping")
    return text, node


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
            inc_path = path.parent / w.string(inc_node, "include")
            if not inc_path.is_file():
                raise w.error(inc_node, f"include: no such file {str(inc_path)!r}")
            inc_text, lib_node = _read(inc_path)
            digest.update(inc_text.encode())
            lw = _Walker(str(inc_path), inc_text)
            lib = lw.mapping(lib_node, "policy library", LIB_KEYS)
            lw.require(lib, "fsgs-policy-lib", lib_node, "policy library")
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
