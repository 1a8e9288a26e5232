# SPDX-License-Identifier: MIT
"""Read and write fsgs-trace/1 documents (/work/shared/spec/trace-format.md).

Layer: traces; imports semantics.events, semantics.cpu, errors, source and
traces.jsonpos only.

Reading is strict: every key, op and value is checked, and each problem is an
`InputError` located at the offending value (or at the object, for a missing
key) with a message that says what was expected and what was found. Reading
returns a `LoadedTrace`: the `Trace` and a side table of source spans, so later
stages (the simulator checking a ``migrate`` CPU number, say) can point at the
input without source positions ever entering the semantics.

Input rules beyond the published table:

* Numbers are JSON integers or JSON strings holding ``0x``/``0X`` and hex
  digits. Decimal strings, floats, booleans and negative values are rejected,
  except that set_thread_area ``entry_number`` may be ``-1`` (or ``"-0x1"``).
* ``modify_ldt`` needs ``entry`` and ``set_thread_area`` needs
  ``entry_number``; the ``struct user_desc`` fields (base_addr, limit,
  seg_32bit, contents, read_exec_only, limit_in_pages, seg_not_present,
  useable) are optional and default to 0.
* ``arch_prctl`` needs ``value`` with SET_FS/SET_GS and forbids it with
  GET_FS/GET_GS.
* ``ptrace_setregs`` needs ``fields`` (``{}`` is allowed); its keys are the
  27 slots of ``struct user_regs_struct``, kept in the order given.
* Extensions (see `fsgs_smt.semantics.events`): ``yield`` may carry
  ``other``, an array of the events the other task runs (only the ops in
  ``OTHER_TASK_OPS``); ``observe`` may carry ``via``; ``exec`` is an op.
* A top-level ``results`` array (tool output) is accepted and ignored.

Writing is canonical: numbers as lowercase hex strings (``-1`` as ``"-0x1"``),
``op`` first and then the fields in the table's order, every ``user_desc``
field written out, and extension fields omitted when at their defaults.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, TypeAlias, assert_never

from fsgs_smt.errors import InputError, InternalError, describe
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES
from fsgs_smt.semantics.events import (
    OPS,
    OTHER_TASK_OPS,
    USER_DESC_FIELDS,
    USER_REGS_SLOTS,
    Abi,
    ArchCode,
    ArchPrctl,
    Event,
    Exec,
    Fork,
    Interrupt,
    Migrate,
    ModifyLdt,
    MovSeg,
    Observe,
    ObserveVia,
    PtraceField,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    Seg,
    SetThreadArea,
    Signal,
    Trace,
    UserDesc,
    WrBase,
    Yield,
    op_name,
)
from fsgs_smt.source import Span
from fsgs_smt.traces.jsonpos import (
    JArray,
    JBool,
    JNode,
    JNull,
    JNumber,
    JObject,
    JString,
    decode_utf8,
    jtype_name,
    parse_json,
)

if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Mapping, Sequence

FORMAT: Final = "fsgs-trace/1"

SpanKey: TypeAlias = tuple[int | str, ...]
"""A key of `LoadedTrace.spans`: a path of event indices and field names."""

# Keys of each op after "op", in the order of the table in trace-format.md.
FIELDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "mov_seg": ("seg", "selector"),
        "wrbase": ("seg", "value"),
        "arch_prctl": ("code", "value"),
        "modify_ldt": ("entry", *USER_DESC_FIELDS),
        "set_thread_area": ("entry_number", *USER_DESC_FIELDS, "abi"),
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
    },
)

# Keys an op cannot do without (arch_prctl "value" depends on the code and is checked apart).
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "mov_seg": ("seg", "selector"),
        "wrbase": ("seg", "value"),
        "arch_prctl": ("code",),
        "modify_ldt": ("entry",),
        "set_thread_area": ("entry_number",),
        "migrate": ("cpu",),
        "ptrace_peek": ("field",),
        "ptrace_poke": ("field", "value"),
        "ptrace_setregs": ("fields",),
    },
)

# Ops without fields (their only key is "op").
_NO_FIELD_EVENTS: Final[Mapping[str, Callable[[], Event]]] = MappingProxyType(
    {"interrupt": Interrupt, "signal": Signal, "fork": Fork, "exec": Exec},
)
_TOP_KEYS: Final = ("format", "cpu", "events", "results")
_TOP_EXPECTED: Final = "an object with keys format and events"
_OTHER_OPS: Final = tuple(op for op in OPS if op in OTHER_TASK_OPS)
_SEGS: Final = tuple(s.value for s in Seg)
_ARCH_CODES: Final = ("SET_FS", "SET_GS", "GET_FS", "GET_GS")
_ABIS: Final = tuple(a.value for a in Abi)
_VIAS: Final = tuple(v.value for v in ObserveVia)
_PTRACE_FIELDS: Final = tuple(f.value for f in PtraceField)

_U16: Final = 0xFFFF
_U32: Final = 2**32 - 1
_U64: Final = 2**64 - 1
# Upper bounds of the struct user_desc fields (arch/x86/include/uapi/asm/ldt.h: bit-fields).
_DESC_MAX: Final[Mapping[str, int]] = MappingProxyType(
    {
        "base_addr": _U32,
        "limit": _U32,
        "seg_32bit": 1,
        "contents": 3,
        "read_exec_only": 1,
        "limit_in_pages": 1,
        "seg_not_present": 1,
        "useable": 1,
    },
)

_HEX: Final = re.compile(r"-?0[xX][0-9a-fA-F]+")
_DECIMAL: Final = re.compile(r"-?[0-9]+")
_NUMBER_EXPECTED: Final = 'a hex string like "0x7" or a JSON integer'


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedTrace:
    """A trace read from JSON, with the source span of each of its parts.

    Keys of *spans*: ``()`` the document, ``("cpu",)`` (also ``("format",)``,
    ``("events",)``, ``("results",)``) a top-level value, ``(i,)`` the object of
    event *i*, ``(i, "selector")`` the value of a key of event *i* (only keys
    present in the input), ``(i, "other", j)`` and ``(i, "other", j, "value")``
    the *j*-th event of a yield's ``other`` and its values, and
    ``(i, "fields", "r15")`` a value in a ptrace_setregs ``fields`` object.
    """

    trace: Trace
    spans: Mapping[SpanKey, Span] = field(hash=False)

    def span_at(self, key: SpanKey) -> Span:
        """The span of *key*, or of its longest recorded prefix (the document at least)."""
        for end in range(len(key), -1, -1):
            span = self.spans.get(key[:end])
            if span is not None:
                return span
        return self.spans[()]  # pragma: no cover - () is always recorded


# -- reading -------------------------------------------------------------------------------


def load_trace(path: pathlib.Path) -> LoadedTrace:
    """Read an fsgs-trace/1 file (UTF-8; a leading byte-order mark is skipped).

    Args:
        path: the file; spans name it as ``str(path)``.

    Returns:
        The trace and its spans.

    Raises:
        InputError: the file cannot be read, is not UTF-8, is not JSON, or is not a
            valid fsgs-trace/1 document. A file that cannot be read is at line 1, col 1;
            a byte that is not UTF-8 is at its own line and column.
    """
    filename = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(
            Span(filename, 1, 1), f"cannot read trace file: {reason}: expected a readable file"
        ) from None
    return parse_trace(decode_utf8(data, filename, "trace file"), filename)


def parse_trace(text: str, filename: str) -> LoadedTrace:
    """Parse an fsgs-trace/1 document.

    Args:
        text: the JSON text.
        filename: the name that spans report.

    Returns:
        The trace and its spans.

    Raises:
        InputError: malformed JSON, or JSON that is not a valid fsgs-trace/1 document;
            located at the offending value.
    """
    return read_trace(parse_json(text, filename))


def read_trace(root: JNode) -> LoadedTrace:
    """The fsgs-trace/1 document of an already parsed JSON value (a trace embedded in
    another document keeps the spans of that document's file).

    Raises:
        InputError: not a valid fsgs-trace/1 document; located at the offending value.
    """
    reader = _Reader()
    trace = reader.document(root)
    return LoadedTrace(trace=trace, spans=MappingProxyType(reader.spans))


def _fmt_int(value: int) -> str:
    """*value* for messages: hex above 9, as `describe` writes it, with a sign if negative."""
    return "-" + describe(-value) if value < 0 else describe(value)


def _got(node: JNode) -> str:
    """What was found, for "got ...": the value where it is short, else its JSON type; a
    float as written (``1e999``, which reads as infinity)."""
    match node:
        case JString(value=value) | JBool(value=value):
            return describe(value)
        case JNumber(value=int(), text=text):
            return text
        case JNumber(text=text):
            return f"a float ({text if len(text) <= 24 else text[:21] + '...'})"
        case JNull():
            return "null"
        case _:
            return jtype_name(node)


def _items(node: JObject) -> dict[str, tuple[Span, JNode]]:
    """The members of *node* by key (jsonpos guarantees the keys are unique)."""
    return {key: (key_span, value) for key, key_span, value in node.items}


def _array(node: JNode, name: str, what: str) -> tuple[JNode, ...]:
    """The items of *node*, which must be an array (of *what*, for the message)."""
    if not isinstance(node, JArray):
        raise InputError(
            node.span, f"{name} is not an array: expected an array of {what}, got {_got(node)}"
        )
    return node.items


def _expected_keys(keys: Sequence[str]) -> str:
    """'one of a, b, c', or 'only a' for a single key."""
    return f"only {keys[0]}" if len(keys) == 1 else "one of " + ", ".join(keys)


def _needed_keys(keys: Sequence[str]) -> str:
    """'the key entry', or 'the keys seg and selector'."""
    if len(keys) == 1:
        return f"the key {keys[0]}"
    return f"the keys {', '.join(keys[:-1])} and {keys[-1]}"


class _Reader:
    """Turns a parsed document into a Trace, recording spans as it goes."""

    __slots__ = ("spans",)

    def __init__(self) -> None:
        self.spans: dict[SpanKey, Span] = {}

    # -- the document and its events ---------------------------------------------------------

    def document(self, root: JNode) -> Trace:
        """The trace of a whole document."""
        self.spans[()] = root.span
        if not isinstance(root, JObject):
            raise InputError(
                root.span,
                "trace document is not an object: expected an object with keys format and "
                f"events, got {jtype_name(root)}",
            )
        members = _items(root)
        if "format" not in members:
            raise InputError(
                root.span, f"missing key 'format' in trace document: expected {_TOP_EXPECTED}"
            )
        fmt = members["format"][1]
        if not isinstance(fmt, JString) or fmt.value != FORMAT:
            raise InputError(
                fmt.span, f"unsupported format {_got(fmt)}: expected {describe(FORMAT)}"
            )
        for key, (key_span, value) in members.items():
            if key not in _TOP_KEYS:
                raise InputError(
                    key_span,
                    f"unknown key {describe(key)} in trace document: expected "
                    f"{_expected_keys(_TOP_KEYS)}",
                )
            self.spans[(key,)] = value.span
        if "events" not in members:
            raise InputError(
                root.span, f"missing key 'events' in trace document: expected {_TOP_EXPECTED}"
            )
        cpu: str | None = None
        if "cpu" in members:
            cpu = self.choice(members["cpu"][1], "cpu", "", CPU_MODEL_NAMES)
        if "results" in members:  # tool output read back: checked for shape only
            _array(members["results"][1], "results", "result objects")
        events = tuple(
            self.event(node, (i,), nested=False)
            for i, node in enumerate(_array(members["events"][1], "events", "event objects"))
        )
        return Trace(events=events, cpu=cpu)

    def event(self, node: JNode, path: SpanKey, *, nested: bool) -> Event:
        """The event of one event object at *path*; *nested*: inside ``yield.other``."""
        self.spans[path] = node.span
        where = "yield.other entry" if nested else "event"
        if not isinstance(node, JObject):
            raise InputError(
                node.span,
                f"{where} is not an object: expected an object with an 'op' key, got {_got(node)}",
            )
        members = _items(node)
        if "op" not in members:
            raise InputError(
                node.span, f"missing key 'op' in {where}: expected an object with an 'op' key"
            )
        op_node = members["op"][1]
        if (
            nested
            and isinstance(op_node, JString)
            and op_node.value in OPS
            and op_node.value not in OTHER_TASK_OPS
        ):
            raise InputError(
                op_node.span,
                f"op {describe(op_node.value)} is not allowed in yield.other: expected one of "
                + ", ".join(_OTHER_OPS),
            )
        op = self.choice(op_node, "op", "", _OTHER_OPS if nested else tuple(OPS))
        allowed = ("op", *FIELDS[op])
        for key, (key_span, value) in members.items():
            if key not in allowed:
                raise InputError(
                    key_span,
                    f"unknown key {describe(key)} in {op} event: expected "
                    f"{_expected_keys(allowed)}",
                )
            self.spans[(*path, key)] = value.span
        for key in _REQUIRED.get(op, ()):
            if key not in members:
                raise InputError(
                    node.span,
                    f"missing key {describe(key)} in {op} event: expected "
                    + _needed_keys(_REQUIRED[op]),
                )
        values = {key: value for key, (_, value) in members.items()}
        return self.build(op, node, values, path)

    def build(self, op: str, node: JObject, values: Mapping[str, JNode], path: SpanKey) -> Event:
        """The event *op* from its checked keys."""
        if op in OTHER_TASK_OPS:
            return self.task_action(op, node, values)
        return self.outside_event(op, values, path)

    def task_action(self, op: str, node: JObject, values: Mapping[str, JNode]) -> Event:
        """An event of OTHER_TASK_OPS: something the running task itself does."""
        ctx = f"in {op} event"
        match op:
            case "mov_seg":
                return MovSeg(
                    seg=Seg(self.choice(values["seg"], "seg", ctx, _SEGS)),
                    selector=self.number(values["selector"], "selector", _U16),
                )
            case "wrbase":
                return WrBase(
                    seg=Seg(self.choice(values["seg"], "seg", ctx, _SEGS)),
                    value=self.number(values["value"], "value", _U64),
                )
            case "arch_prctl":
                return self.arch_prctl(node, values, ctx)
            case "modify_ldt":
                return ModifyLdt(
                    entry=self.number(values["entry"], "entry", _U32), desc=self.user_desc(values)
                )
            case "set_thread_area":
                abi = values.get("abi")
                return SetThreadArea(
                    entry_number=self.number(
                        values["entry_number"], "entry_number", _U32, minus_one=True
                    ),
                    desc=self.user_desc(values),
                    abi=Abi.X64 if abi is None else Abi(self.choice(abi, "abi", ctx, _ABIS)),
                )
            case "observe":
                via = values.get("via")
                return Observe(
                    via=None if via is None else ObserveVia(self.choice(via, "via", ctx, _VIAS))
                )
            case _:  # pragma: no cover - OTHER_TASK_OPS gained an op this reader lacks
                msg = f"no reader for op {op!r}"
                raise InternalError(msg)

    def outside_event(self, op: str, values: Mapping[str, JNode], path: SpanKey) -> Event:
        """An event that is not in OTHER_TASK_OPS: scheduling, the kernel, or the tracer."""
        ctx = f"in {op} event"
        match op:
            case "yield":
                return Yield(other=self.other(values.get("other"), path))
            case "migrate":
                return Migrate(cpu=self.number(values["cpu"], "cpu", _U32))
            case "ptrace_peek":
                return PtracePeek(
                    field=PtraceField(self.choice(values["field"], "field", ctx, _PTRACE_FIELDS))
                )
            case "ptrace_poke":
                return PtracePoke(
                    field=PtraceField(self.choice(values["field"], "field", ctx, _PTRACE_FIELDS)),
                    value=self.number(values["value"], "value", _U64),
                )
            case "ptrace_setregs":
                return PtraceSetregs(fields=self.regs(values["fields"], path))
            case _ if op in _NO_FIELD_EVENTS:
                return _NO_FIELD_EVENTS[op]()
            case _:  # pragma: no cover - OPS gained an op this reader lacks
                msg = f"no reader for op {op!r}"
                raise InternalError(msg)

    def arch_prctl(self, node: JObject, values: Mapping[str, JNode], ctx: str) -> ArchPrctl:
        """An arch_prctl event: *value* with the SET codes only."""
        code = ArchCode(self.choice(values["code"], "code", ctx, _ARCH_CODES))
        value_node = values.get("value")
        if code.is_set:
            if value_node is None:
                raise InputError(
                    node.span,
                    f"missing key 'value' in arch_prctl event: expected a value with {code.value}",
                )
            return ArchPrctl(code=code, value=self.number(value_node, "value", _U64))
        if value_node is not None:
            raise InputError(
                value_node.span,
                f"unexpected value in arch_prctl event: expected no value with {code.value}, "
                f"got {_got(value_node)}",
            )
        return ArchPrctl(code=code)

    def user_desc(self, values: Mapping[str, JNode]) -> UserDesc:
        """The ``struct user_desc`` fields of modify_ldt/set_thread_area; absent ones are 0."""
        fields = {
            name: self.number(values[name], name, _DESC_MAX[name])
            for name in USER_DESC_FIELDS
            if name in values
        }
        return UserDesc(**fields)

    def other(self, node: JNode | None, path: SpanKey) -> tuple[Event, ...]:
        """The events of a yield's ``other`` array (none if absent)."""
        if node is None:
            return ()
        items = _array(node, "other", "events for the other task")
        return tuple(
            self.event(item, (*path, "other", j), nested=True) for j, item in enumerate(items)
        )

    def regs(self, node: JNode, path: SpanKey) -> tuple[tuple[str, int], ...]:
        """The slot -> value pairs of a ptrace_setregs ``fields`` object, in input order."""
        if not isinstance(node, JObject):
            raise InputError(
                node.span,
                "fields is not an object: expected an object of register slot -> value, "
                f"got {_got(node)}",
            )
        regs: list[tuple[str, int]] = []
        for slot, slot_span, value in node.items:
            if slot not in USER_REGS_SLOTS:
                raise InputError(
                    slot_span,
                    f"unknown register {describe(slot)} in ptrace_setregs fields: expected "
                    "one of " + ", ".join(USER_REGS_SLOTS),
                )
            self.spans[(*path, "fields", slot)] = value.span
            regs.append((slot, self.number(value, slot, _U64)))
        return tuple(regs)

    # -- values --------------------------------------------------------------------------------

    def choice(self, node: JNode, name: str, ctx: str, choices: Sequence[str]) -> str:
        """A string that must be one of *choices*; *ctx* ("in mov_seg event") for messages."""
        where = f" {ctx}" if ctx else ""
        if not isinstance(node, JString):
            raise InputError(
                node.span,
                f"{name}{where} is not a string: expected one of {', '.join(choices)}, "
                f"got {_got(node)}",
            )
        if node.value not in choices:
            raise InputError(
                node.span,
                f"unknown {name} {describe(node.value)}{where}: expected one of "
                + ", ".join(choices),
            )
        return node.value

    def number(self, node: JNode, name: str, high: int, *, minus_one: bool = False) -> int:
        """A number in 0..*high* (or -1 if *minus_one*): a JSON integer or a hex string."""
        value: int
        if isinstance(node, JNumber) and isinstance(node.value, int):
            value = node.value
        elif isinstance(node, JString) and _HEX.fullmatch(node.value):
            value = int(node.value, 16)
        else:
            hint = ""
            if isinstance(node, JString) and _DECIMAL.fullmatch(node.value):
                hint = " (hex strings need the 0x prefix)"
            raise InputError(
                node.span,
                f"{name} is not a number: expected {_NUMBER_EXPECTED}, got {_got(node)}{hint}",
            )
        if 0 <= value <= high or (minus_one and value == -1):
            return value
        expected = f"an integer in 0..{_fmt_int(high)}"
        if minus_one:
            expected = f"-1 or {expected}"
        raise InputError(
            node.span, f"{name} out of range: expected {expected}, got {_fmt_int(value)}"
        )


# -- writing -------------------------------------------------------------------------------


def _hex(value: int) -> str:
    """*value* as a lowercase hex string: ``"0x7"``, ``"-0x1"``."""
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"expected a concrete integer in a trace to write, got {value!r}"
        raise TypeError(msg)
    return hex(value)


def _user_desc_json(desc: UserDesc) -> dict[str, object]:
    """All ``struct user_desc`` fields as hex strings, in the table's order."""
    return {name: _hex(getattr(desc, name)) for name in USER_DESC_FIELDS}


def event_to_json(event: Event) -> dict[str, object]:
    """The canonical JSON object of *event*.

    ``op`` comes first, then the fields in the order of the format's table;
    numbers are lowercase hex strings. Fields at their defaults are left out where
    the format allows: ``yield`` without ``other``, ``observe`` without ``via``,
    set_thread_area without ``abi`` "64", and arch_prctl GET_* without ``value``.

    Raises:
        TypeError: a numeric field does not hold an int (a symbolic trace).
        ValueError: a ptrace_setregs names a slot twice.
    """
    return {"op": op_name(event), **_fields_json(event)}


# The events whose op is not in OTHER_TASK_OPS.
_OutsideEvent: TypeAlias = (
    Yield | Interrupt | Migrate | PtracePeek | PtracePoke | PtraceSetregs | Signal | Fork | Exec
)


def _fields_json(event: Event) -> dict[str, object]:
    """The fields of *event* after "op"; the events of OTHER_TASK_OPS here, the rest below."""
    match event:
        case MovSeg(seg=seg, selector=selector):
            return {"seg": seg.value, "selector": _hex(selector)}
        case WrBase(seg=seg, value=value):
            return {"seg": seg.value, "value": _hex(value)}
        case ArchPrctl(code=code, value=value):
            return (
                {"code": code.value, "value": _hex(value)} if code.is_set else {"code": code.value}
            )
        case ModifyLdt(entry=entry, desc=desc):
            return {"entry": _hex(entry), **_user_desc_json(desc)}
        case SetThreadArea(entry_number=entry_number, desc=desc, abi=abi):
            fields = {"entry_number": _hex(entry_number), **_user_desc_json(desc)}
            return fields if abi is Abi.X64 else {**fields, "abi": abi.value}
        case Observe(via=via):
            return {} if via is None else {"via": via.value}
        case _:
            return _outside_fields_json(event)


def _outside_fields_json(event: _OutsideEvent) -> dict[str, object]:
    """The fields after "op" of an event that is not in OTHER_TASK_OPS."""
    match event:
        case Yield(other=other):
            return {"other": [event_to_json(e) for e in other]} if other else {}
        case Migrate(cpu=cpu):
            return {"cpu": _hex(cpu)}
        case PtracePeek(field=ptrace_field):
            return {"field": ptrace_field.value}
        case PtracePoke(field=ptrace_field, value=value):
            return {"field": ptrace_field.value, "value": _hex(value)}
        case PtraceSetregs(fields=fields):
            regs = {slot: _hex(value) for slot, value in fields}
            if len(regs) != len(fields):
                msg = f"ptrace_setregs names a slot twice: {[slot for slot, _ in fields]}"
                raise ValueError(msg)
            return {"fields": regs}
        case Interrupt() | Signal() | Fork() | Exec():
            return {}
        case _:  # pragma: no cover - closed union
            assert_never(event)


def trace_to_json(trace: Trace, results: Sequence[object] | None = None) -> dict[str, object]:
    """The canonical JSON document of *trace*, with a ``results`` array if given.

    Args:
        trace: the trace.
        results: one JSON-ready result per event (``"ok"``, ``0``, ``"-EPERM"``,
            ``{"fs": "0x0", ...}``, ``"not-run"``), passed through unchanged into
            ``{"i": N, "op": ..., "result": R}`` entries.

    Returns:
        A dict with keys format, cpu (if set), events, results (if given), in that order.

    Raises:
        ValueError: *results* does not have one entry per event.
    """
    doc: dict[str, object] = {"format": FORMAT}
    if trace.cpu is not None:
        doc["cpu"] = trace.cpu
    doc["events"] = [event_to_json(event) for event in trace.events]
    if results is not None:
        if len(results) != len(trace.events):
            msg = f"expected {len(trace.events)} results, one per event, got {len(results)}"
            raise ValueError(msg)
        doc["results"] = [
            {"i": i, "op": op_name(event), "result": result}
            for i, (event, result) in enumerate(zip(trace.events, results, strict=True))
        ]
    return doc


def dumps_trace(trace: Trace, results: Sequence[object] | None = None) -> str:
    """`trace_to_json` as text: two-space indentation and a trailing newline."""
    return json.dumps(trace_to_json(trace, results), indent=2) + "\n"
