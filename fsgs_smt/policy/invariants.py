# SPDX-License-Identifier: MIT
"""Invariants as data: load and check ``specs/invariants/*.yaml``.

Layer: policy (front end). Imports `policy.load` (the YAML walker), `policy.expr`,
`policy.vocab`, `semantics.events` (pure data). Never a solver.

Three kinds, each with an ``id``, a one-line ``statement`` and the ``source`` it comes from:

* ``always: EXPR`` -- a state invariant over the view of every reachable world;
* ``events: [...]`` with optional ``params``, ``assume`` and ``expect`` -- from any
  reachable world, run the events (numbers may be ``p.NAME``, a symbolic parameter;
  ``yield`` may say ``other: any``: the other task does any one thing); ``assume`` and
  ``expect`` read ``before.X``, ``after.X``, ``r<i>.<result>`` and ``p.NAME``;
* ``noninterference: [fields]`` -- the listed view fields of the task never depend on what
  the other tasks do (two copies of the world, same events for the task).

``lemmas: [EXPR]`` (optional) are state invariants offered to k-induction; they are
proved along with the invariant, never assumed (no verdict is PROVED unless they are).

Each kind takes only its own keys; lists (and ``params``) are never empty. What depends on
the world's size (the CPU a ``migrate`` names) is checked by `check_cpus` once it is known.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fsgs_smt.errors import InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.policy import vocab as voc
from fsgs_smt.policy.check import check_bits
from fsgs_smt.policy.expr import number_value
from fsgs_smt.policy.load import _kind, _read, _scalar_value, _Walker
from fsgs_smt.semantics import events as ev
from fsgs_smt.source import Span

KINDS = ("state", "transition", "noninterference")


@dataclass(frozen=True, slots=True)
class ParamRef:
    """A symbolic event parameter ``p.NAME`` in an invariant's event template."""

    name: str


@dataclass(frozen=True, slots=True)
class AnyOther:
    """``yield`` with ``other: any``: the other task performs any one user action."""


@dataclass(frozen=True, slots=True)
class Invariant:
    """One checked invariant."""

    id: str
    statement: str
    source: str
    kind: str
    span: Span
    always: ast.Expr | None = None
    params: dict[str, int] = field(default_factory=dict)
    events: tuple[ev.Event, ...] = ()
    assume: ast.Expr | None = None
    expect: ast.Expr | None = None
    observe: tuple[str, ...] = ()
    lemmas: tuple[ast.Expr, ...] = ()
    text_hash: str = ""
    cpus: tuple[tuple[int, Span], ...] = ()  # each literal migrate CPU, and where it is written


_INV_KEYS = (
    "id", "statement", "source", "always", "params", "events", "assume", "expect",
    "noninterference", "lemmas",
)  # fmt: skip
# the keys each kind of invariant takes, by the key that gives its kind
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "always": ("id", "statement", "source", "always", "lemmas"),
    "events": ("id", "statement", "source", "events", "params", "assume", "expect", "lemmas"),
    "noninterference": ("id", "statement", "source", "noninterference", "lemmas"),
}
# r<i>.RESULT: the result of event i (written without leading zeros)
_RESULT = re.compile(r"r([0-9]+)")
_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "mov_seg": ("seg", "selector"),
    "wrbase": ("seg", "value"),
    "arch_prctl": ("code", "value"),
    "modify_ldt": ("entry", *ev.USER_DESC_FIELDS),
    "set_thread_area": ("entry_number", *ev.USER_DESC_FIELDS, "abi"),
    "yield": ("other",),
    "interrupt": (),
    "migrate": ("cpu",),
    "observe": ("via",),
    "ptrace_peek": ("field",),
    "ptrace_poke": ("field", "value"),
    "ptrace_setregs": ("fields",),
    "signal": (),
    "fork": (),
    "exec": (),
}
# field -> (parameter width, lowest value, highest value): what a template number must fit
_FIELD_WIDTH: dict[str, tuple[int, int, int]] = {
    "selector": (16, 0, 0xFFFF),
    "value": (64, 0, 2**64 - 1),
    "entry": (32, 0, 2**32 - 1),
    "entry_number": (32, -1, 2**32 - 1),
    "cpu": (8, 0, 0xFF),
    "seg_32bit": (32, 0, 1),
    "contents": (32, 0, 3),
    "read_exec_only": (32, 0, 1),
    "limit_in_pages": (32, 0, 1),
    "seg_not_present": (32, 0, 1),
    "useable": (32, 0, 1),
    "base_addr": (32, 0, 2**32 - 1),
    "limit": (32, 0, 2**32 - 1),
}
# a number written as a string: decimal or 0x and hex digits ('_' between), maybe negative
_NUMBER = re.compile(r"-?(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)")
_ENUMS: dict[str, Any] = {
    "seg": ev.Seg, "code": ev.ArchCode, "field": ev.PtraceField, "via": ev.ObserveVia,
    "abi": ev.Abi,
}  # fmt: skip


class _InvWalker(_Walker):
    def __init__(self, file: str, text: str = "") -> None:
        super().__init__(file, text)
        self.declared: dict[str, int] = {}
        self.cpus: list[tuple[int, Span]] = []  # the literal migrate CPUs of the invariant

    def number(self, node: yaml.Node, what: str) -> object:
        """A number in range for field *what*, or a declared parameter of the field's width."""
        width, low, high = _FIELD_WIDTH.get(what, (64, 0, 2**64 - 1))
        value = self._number(node, what)
        if isinstance(value, ParamRef):
            if self.declared[value.name] != width:
                raise self.error(
                    node,
                    f"{what}: expected a parameter of width {width}, got p.{value.name} "
                    f"of width {self.declared[value.name]}",
                )
            return value
        assert isinstance(value, int)  # noqa: S101
        if not low <= value <= high:
            raise self.error(
                node,
                f"{what} out of range: expected an integer in {low}..{high:#x}, "
                f"got {'-' + describe(-value) if value < 0 else describe(value)}",
            )
        return value

    def _number(self, node: yaml.Node, what: str) -> object:
        if isinstance(node, yaml.ScalarNode):
            value = _scalar_value(node)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                text = value.strip()
                if text.startswith("p."):
                    name = text[2:]
                    if name not in self.declared:
                        raise self.error(
                            node,
                            f"{what}: unknown parameter {text!r}: expected one declared "
                            f"in params ({', '.join(self.declared) or 'none'})",
                        )
                    return ParamRef(name)
                if _NUMBER.fullmatch(text):
                    sign = -1 if text.startswith("-") else 1
                    return sign * number_value(text.lstrip("-"), self.span(node))
        raise self.error(node, f"{what}: expected a number or p.NAME, got {_kind(node)}")

    def event(self, node: yaml.Node, *, nested: bool = False) -> ev.Event:
        items = self.mapping(node, "event")
        if "op" not in items:
            raise self.error(node, "missing key 'op' in event")
        op = self.string(items["op"][1], "op")
        allowed = ev.OTHER_TASK_OPS if nested else set(ev.OPS)
        if op not in allowed:
            raise self.error(
                items["op"][1], f"unknown op {op!r}: expected one of {', '.join(sorted(allowed))}"
            )
        fields = _EVENT_FIELDS[op]
        kwargs: dict[str, Any] = {}
        desc: dict[str, Any] = {}
        for key, (key_node, value_node) in items.items():
            if key == "op":
                continue
            if key not in fields:
                raise self.error(
                    key_node,
                    f"unknown key {key!r} in {op} event: expected one of "
                    f"{', '.join(('op', *fields))}",
                )
            if key in _ENUMS:
                text = self.string(value_node, key)
                try:
                    kwargs[key] = _ENUMS[key](text)
                except ValueError:
                    names = ", ".join(m.value for m in _ENUMS[key])
                    raise self.error(
                        value_node, f"{key}: expected one of {names}, got {text!r}"
                    ) from None
            elif key == "other":
                if isinstance(value_node, yaml.ScalarNode) and value_node.value == "any":
                    kwargs["other"] = (AnyOther(),)
                else:
                    kwargs["other"] = tuple(
                        self.event(n, nested=True) for n in self.sequence(value_node, "other")
                    )
            elif key == "fields":
                pairs = []
                for slot, (slot_node, v_node) in self.mapping(value_node, "fields").items():
                    if slot not in ev.USER_REGS_SLOTS:
                        raise self.error(slot_node, f"unknown register slot {slot!r}")
                    pairs.append((slot, self.number(v_node, slot)))
                kwargs["fields"] = tuple(pairs)
            elif key in ev.USER_DESC_FIELDS:
                desc[key] = self.number(value_node, key)
            else:
                kwargs[key] = self.number(value_node, key)
                if key == "cpu" and isinstance(kwargs[key], int):
                    self.cpus.append((kwargs[key], self.span(value_node)))
        cls = ev.OPS[op]
        if op in ("modify_ldt", "set_thread_area"):
            kwargs["desc"] = ev.UserDesc(**desc)
        try:
            return cls(**kwargs)  # type: ignore[no-any-return]
        except TypeError:
            raise self.error(
                node, f"{op} event: missing a required field of {', '.join(fields)}"
            ) from None


def is_any_other(event: ev.Event) -> bool:
    """A ``yield`` whose other task may do any one thing (``other: any``)."""
    return isinstance(event, ev.Yield) and any(isinstance(o, AnyOther) for o in event.other)


class _InvChecker:
    """Names and types of invariant expressions."""

    def __init__(self, inv_kind: str, params: dict[str, int], events: tuple[ev.Event, ...]):
        self.kind = inv_kind
        self.params = params
        self.events = events

    def name_type(self, e: ast.Name) -> str:
        text = e.dotted
        if e.index is not None:
            raise InputError(e.span, f"{text!r}: invariants do not index arrays")
        parts = e.parts
        if self.kind == "transition":
            if parts[0] in ("before", "after") and len(parts) == 2 and parts[1] in voc.VIEW_FIELDS:
                return voc.VIEW_FIELDS[parts[1]]
            if parts[0] == "p" and len(parts) == 2 and parts[1] in self.params:
                return voc.U64
            number = _RESULT.fullmatch(parts[0])
            if len(parts) == 2 and number:
                digits = number.group(1)
                if len(digits) > 1 and digits.startswith("0"):
                    raise InputError(
                        e.span,
                        f"{text!r}: expected r{digits.lstrip('0') or '0'}.{parts[1]} (an event "
                        "number without leading zeros)",
                    )
                i = int(digits) if len(digits) <= 6 else len(self.events)
                if i >= len(self.events):
                    raise InputError(e.span, f"{text!r}: there are only {len(self.events)} events")
                names = dict(voc.RESULT_NAMES[ev.op_name(self.events[i])])
                names["ran"] = voc.BOOL
                if parts[1] not in names:
                    raise InputError(
                        e.span,
                        f"unknown result {parts[1]!r} of event {i} "
                        f"({ev.op_name(self.events[i])}): expected one of {', '.join(names)}",
                    )
                return names[parts[1]]
            raise InputError(
                e.span,
                f"unknown name {text!r}: expected before.FIELD, after.FIELD, r<i>.RESULT "
                f"or p.PARAM, with FIELD one of {', '.join(voc.VIEW_FIELDS)}",
            )
        if len(parts) == 1 and parts[0] in voc.VIEW_FIELDS:
            return voc.VIEW_FIELDS[parts[0]]
        raise InputError(
            e.span, f"unknown name {text!r}: expected one of {', '.join(voc.VIEW_FIELDS)}"
        )

    def expr(self, e: ast.Expr) -> str:
        match e:
            case ast.Num():
                return voc.U64
            case ast.Bool():
                return voc.BOOL
            case ast.Name():
                return self.name_type(e)
            case ast.Unary(op=op, operand=operand):
                self.expect(operand, voc.BOOL if op == "!" else voc.U64, f"operand of {op!r}")
                return voc.BOOL if op == "!" else voc.U64
            case ast.Binary(op=op, left=left, right=right, span=span):
                if op in ("&&", "||", "=>"):
                    self.expect(left, voc.BOOL, f"left of {op!r}")
                    self.expect(right, voc.BOOL, f"right of {op!r}")
                    return voc.BOOL
                lt, rt = self.expr(left), self.expr(right)
                if op in ("==", "!="):
                    if lt != rt:
                        raise InputError(span, f"{op!r} compares a {lt} with a {rt}")
                    return voc.BOOL
                if lt != voc.U64 or rt != voc.U64:
                    raise InputError(span, f"{op!r}: expected u64 operands, got {lt} and {rt}")
                return voc.BOOL if op in ("<", "<=", ">", ">=") else voc.U64
            case ast.Cond(cond=cond, then=then, other=other, span=span):
                self.expect(cond, voc.BOOL, "condition of '?:'")
                tt, ot = self.expr(then), self.expr(other)
                if tt != ot:
                    raise InputError(span, f"'?:' branches differ: a {tt} and a {ot}")
                return tt
            case ast.InSet(operand=operand, items=items):
                typ = self.expr(operand)
                for item in items:
                    self.expect(item, typ, "item of 'in [...]'")
                return voc.BOOL
            case ast.Call(func=func, args=args, span=span):
                arity = voc.INVARIANT_BUILTINS.get(func)
                if arity is None:
                    raise InputError(
                        span,
                        f"unknown function {func!r}: expected one of "
                        f"{', '.join(voc.INVARIANT_BUILTINS)}",
                    )
                if len(args) != arity:
                    raise InputError(span, f"{func}() takes {arity} arguments, got {len(args)}")
                for arg in args:
                    self.expect(arg, voc.U64, f"argument of {func}()")
                if func == "bits":  # literal bounds, as in policies
                    check_bits(e)
                returns = voc.BUILTINS[func].returns
                assert returns is not None  # noqa: S101
                return returns
        raise AssertionError(e)  # pragma: no cover

    def expect(self, e: ast.Expr, typ: str, what: str) -> None:
        got = self.expr(e)
        if got != typ:
            raise InputError(e.span, f"{what}: expected a {typ}, got a {got}")


def load_invariants(path: Path) -> list[Invariant]:
    """Read and check an invariants file.

    Raises:
        InputError: malformed YAML, unknown keys or names, type errors, duplicate ids.
    """
    text, node = _read(path, "invariants file")
    w = _InvWalker(str(path), text)
    top = w.mapping(node, "invariants file", ("fsgs-invariants", "invariants"))
    version = w.require(top, "fsgs-invariants", node, "invariants file")
    if w.scalar(version, "fsgs-invariants", int, "1") != 1:
        raise w.error(version, "fsgs-invariants: expected 1")
    return _invariants(w, text, w.require(top, "invariants", node, "invariants file"))


def load_policy_invariants(path: Path) -> list[Invariant]:
    """The invariants of a policy file's optional ``invariants:`` section (same format).

    Raises:
        InputError: as `load_invariants`, located in the policy file.
    """
    text, node = _read(path)
    if not isinstance(node, yaml.MappingNode):
        return []  # the policy loader reports what is wrong with such a file
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "invariants":
            return _invariants(_InvWalker(str(path), text), text, value)
    return []


def _invariants(w: _InvWalker, text: str, seq: yaml.Node) -> list[Invariant]:
    out: list[Invariant] = []
    seen: dict[str, Span] = {}
    items = w.sequence(seq, "invariants")
    if not items:
        raise w.error(seq, "invariants: expected at least one invariant")
    for item in items:
        keys = w.mapping(item, "invariant", _INV_KEYS)
        inv_id = w.identifier_or_dashed(w.require(keys, "id", item, "invariant"), "id")
        span = w.span(item)
        if inv_id in seen:
            raise w.error(
                keys["id"][1], f"duplicate invariant id {inv_id!r} (first at {seen[inv_id]})"
            )
        seen[inv_id] = span
        # the invariant's own text: editing (or moving) another invariant does not change it
        own_text = text[item.start_mark.index : item.end_mark.index]
        digest = hashlib.sha256(own_text.encode()).hexdigest()
        statement = w.string(w.require(keys, "statement", item, f"invariant {inv_id}"), "statement")
        source = w.string(w.require(keys, "source", item, f"invariant {inv_id}"), "source")
        kinds = [k for k in ("always", "events", "noninterference") if k in keys]
        if len(kinds) != 1:
            raise w.error(
                item,
                f"invariant {inv_id}: expected exactly one of always, events, "
                f"noninterference, got {len(kinds)}",
            )
        for key, (key_node, _) in keys.items():
            if key not in _KIND_KEYS[kinds[0]]:
                raise w.error(
                    key_node,
                    f"key {key!r} does not apply to an invariant with {kinds[0]!r}: expected "
                    f"one of {', '.join(_KIND_KEYS[kinds[0]])}",
                )
        w.declared = {}
        w.cpus = []
        if "params" in keys:
            declared = w.mapping(keys["params"][1], "params")
            if not declared:
                raise w.error(
                    keys["params"][1], "params: expected at least one parameter (or no params)"
                )
            for pname, (pkey, pnode) in declared.items():
                w.identifier(pkey, "parameter name")
                width = w.scalar(pnode, f"width of p.{pname}", int, "a width 1..64")
                if not 1 <= width <= 64:
                    raise w.error(pnode, f"width of p.{pname}: expected 1..64, got {width}")
                w.declared[pname] = width
        lemmas: list[ast.Expr] = []
        state_checker = _InvChecker("state", {}, ())
        lemma_nodes = w.sequence(keys["lemmas"][1], "lemmas") if "lemmas" in keys else []
        if "lemmas" in keys and not lemma_nodes:
            raise w.error(keys["lemmas"][1], "lemmas: expected at least one lemma (or no lemmas)")
        for lnode in lemma_nodes:
            lemma = w.expr(lnode, "lemma")
            state_checker.expect(lemma, voc.BOOL, "lemma")
            lemmas.append(lemma)
        if kinds == ["always"]:
            always = w.expr(keys["always"][1], "always")
            state_checker.expect(always, voc.BOOL, "always")
            out.append(Invariant(inv_id, statement, source, "state", span, always=always,
                                 lemmas=tuple(lemmas), text_hash=digest))  # fmt: skip
            continue
        if kinds == ["noninterference"]:
            field_nodes = w.sequence(keys["noninterference"][1], "noninterference")
            if not field_nodes:
                raise w.error(
                    keys["noninterference"][1],
                    "noninterference: expected at least one field of the view to compare",
                )
            fields = tuple(w.string(n, "noninterference field") for n in field_nodes)
            for i, (fnode, fname) in enumerate(zip(field_nodes, fields, strict=True)):
                if fname not in voc.VIEW_FIELDS:
                    raise w.error(fnode, f"unknown field {fname!r}: expected one of "
                                         f"{', '.join(voc.VIEW_FIELDS)}")  # fmt: skip
                if fname in fields[:i]:
                    raise w.error(
                        fnode, f"noninterference: duplicate field {fname!r}: expected each once"
                    )
            out.append(
                Invariant(
                    inv_id, statement, source, "noninterference", span, observe=fields,
                    lemmas=tuple(lemmas), text_hash=digest,
                )
            )  # fmt: skip
            continue
        events = tuple(w.event(n) for n in w.sequence(keys["events"][1], "events"))
        if not events:
            raise w.error(keys["events"][1], "events: expected at least one event")
        checker = _InvChecker("transition", w.declared, events)
        assume = w.expr(keys["assume"][1], "assume") if "assume" in keys else None
        if assume is not None:
            checker.expect(assume, voc.BOOL, "assume")
        if "expect" not in keys:
            raise w.error(item, f"missing key 'expect' in invariant {inv_id}")
        expect = w.expr(keys["expect"][1], "expect")
        checker.expect(expect, voc.BOOL, "expect")
        out.append(Invariant(inv_id, statement, source, "transition", span, params=dict(w.declared),
                             events=events, assume=assume, expect=expect, lemmas=tuple(lemmas),
                             text_hash=digest, cpus=tuple(w.cpus)))  # fmt: skip
    return out


def check_cpus(inv: Invariant, ncpus: int) -> None:
    """Refuse an invariant whose events migrate to a CPU that a world of *ncpus* CPUs does
    not have (a ``p.NAME`` CPU ranges over the world's CPUs: `encode.property`).

    Raises:
        InputError: at the first such CPU number.
    """
    for cpu, span in inv.cpus:
        if cpu >= ncpus:
            raise InputError(
                span, f"migrate to CPU {cpu}: expected a CPU number in 0..{ncpus - 1} (the "
                f"world has {ncpus} CPUs)",
            )  # fmt: skip
