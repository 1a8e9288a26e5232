# SPDX-License-Identifier: MIT
"""Tests of fsgs_smt.traces.fsgs_json: reading, writing and diagnosing fsgs-trace/1."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgs_smt.errors import InputError
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES
from fsgs_smt.semantics.events import (
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
)
from fsgs_smt.source import Span
from fsgs_smt.traces.fsgs_json import (
    SpanKey,
    dumps_trace,
    event_to_json,
    load_trace,
    parse_trace,
    trace_to_json,
)

if TYPE_CHECKING:
    import pathlib

U32 = 2**32 - 1
U64 = 2**64 - 1

SPEC_EXAMPLE = """\
{
  "format": "fsgs-trace/1",
  "cpu": "amd-zen3",
  "events": [
    {"op": "modify_ldt", "entry": 0, "base_addr": "0x7000", "limit": "0xfffff",
     "seg_32bit": 1, "contents": 0, "read_exec_only": 0, "limit_in_pages": 1,
     "seg_not_present": 0, "useable": 1},
    {"op": "mov_seg", "seg": "gs", "selector": "0x7"},
    {"op": "wrbase", "seg": "gs", "value": "0x9999000"},
    {"op": "yield"},
    {"op": "observe"}
  ]
}
"""


def _doc(*events: str) -> str:
    """A document with event i on line i + 2, starting in column 1."""
    return '{"format": "fsgs-trace/1", "events": [\n' + ",\n".join(events) + "\n]}\n"


def _error(text: str) -> str:
    """The one-line diagnostic parse_trace raises for *text*."""
    with pytest.raises(InputError) as info:
        parse_trace(text, "t.json")
    return info.value.one_line()


# -- reading -------------------------------------------------------------------------------


def test_the_spec_example_parses() -> None:
    """The example document of trace-format.md reads as the events it shows."""
    loaded = parse_trace(SPEC_EXAMPLE, "spec.json")

    assert (
        Trace(
            cpu="amd-zen3",
            events=(
                ModifyLdt(
                    entry=0,
                    desc=UserDesc(
                        base_addr=0x7000, limit=0xFFFFF, seg_32bit=1, limit_in_pages=1, useable=1
                    ),
                ),
                MovSeg(seg=Seg.GS, selector=7),
                WrBase(seg=Seg.GS, value=0x9999000),
                Yield(),
                Observe(),
            ),
        )
        == loaded.trace
    )


def test_every_op_parses() -> None:
    """Each op of the format and its extensions reads as its event class."""
    text = _doc(
        '{"op": "arch_prctl", "code": "SET_FS", "value": "0x10"}',
        '{"op": "arch_prctl", "code": "GET_GS"}',
        '{"op": "set_thread_area", "entry_number": 12, "abi": "ia32", "limit": 1}',
        '{"op": "interrupt"}',
        '{"op": "migrate", "cpu": 1}',
        '{"op": "observe", "via": "fault"}',
        '{"op": "ptrace_peek", "field": "gs_base"}',
        '{"op": "ptrace_poke", "field": "fs", "value": "0x3"}',
        '{"op": "ptrace_setregs", "fields": {}}',
        '{"op": "signal"}',
        '{"op": "fork"}',
        '{"op": "exec"}',
        '{"op": "yield", "other": [{"op": "observe", "via": "rdbase"}]}',
    )

    assert (
        ArchPrctl(code=ArchCode.SET_FS, value=0x10),
        ArchPrctl(code=ArchCode.GET_GS),
        SetThreadArea(entry_number=12, desc=UserDesc(limit=1), abi=Abi.IA32),
        Interrupt(),
        Migrate(cpu=1),
        Observe(via=ObserveVia.FAULT),
        PtracePeek(field=PtraceField.GS_BASE),
        PtracePoke(field=PtraceField.FS, value=3),
        PtraceSetregs(fields=()),
        Signal(),
        Fork(),
        Exec(),
        Yield(other=(Observe(via=ObserveVia.RDBASE),)),
    ) == parse_trace(text, "t.json").trace.events


def test_user_desc_fields_default_to_zero() -> None:
    """modify_ldt and set_thread_area need only their entry; user_desc fields default to 0."""
    text = _doc('{"op": "modify_ldt", "entry": 1}', '{"op": "set_thread_area", "entry_number": 2}')

    assert (
        ModifyLdt(entry=1, desc=UserDesc()),
        SetThreadArea(entry_number=2, desc=UserDesc(), abi=Abi.X64),
    ) == parse_trace(text, "t.json").trace.events


def test_numbers_may_be_json_integers_or_hex_strings_in_either_case() -> None:
    """A JSON integer, "0x.." and "0X.." with mixed-case digits all read as the integer."""
    text = _doc(
        '{"op": "wrbase", "seg": "fs", "value": 255}',
        '{"op": "wrbase", "seg": "fs", "value": "0xfF"}',
        '{"op": "wrbase", "seg": "fs", "value": "0XFF"}',
        '{"op": "wrbase", "seg": "fs", "value": "0xffffffffffffffff"}',
    )

    assert [255, 255, 255, U64] == [
        e.value for e in parse_trace(text, "t.json").trace.events if isinstance(e, WrBase)
    ]


def test_entry_number_minus_one_may_be_an_integer_or_a_hex_string() -> None:
    """set_thread_area entry_number -1 is accepted as -1 and as "-0x1"."""
    text = _doc(
        '{"op": "set_thread_area", "entry_number": -1}',
        '{"op": "set_thread_area", "entry_number": "-0x1"}',
    )

    assert [-1, -1] == [
        e.entry_number
        for e in parse_trace(text, "t.json").trace.events
        if isinstance(e, SetThreadArea)
    ]


def test_setregs_fields_keep_their_order() -> None:
    """ptrace_setregs fields come out in the order the document gives them."""
    text = _doc('{"op": "ptrace_setregs", "fields": {"gs": "0x0", "r15": 1, "fs_base": "0x7"}}')

    assert (PtraceSetregs(fields=(("gs", 0), ("r15", 1), ("fs_base", 7))),) == parse_trace(
        text, "t.json"
    ).trace.events


def test_results_are_accepted_and_ignored() -> None:
    """A tool's output document, results included, reads back as its trace."""
    trace = Trace(events=(MovSeg(seg=Seg.FS, selector=0), Observe()))
    output = dumps_trace(trace, ["ok", {"fs": "0x0", "fs_base": "0x0"}])

    assert trace == parse_trace(output, "out.json").trace


def test_spans_locate_the_document_events_fields_and_nested_events() -> None:
    """The span table keys the document, top-level values, events, fields and nested events."""
    text = (
        '{"format": "fsgs-trace/1", "cpu": "intel", "events": [\n'
        '  {"op": "mov_seg", "seg": "gs", "selector": "0x7"},\n'
        '  {"op": "yield", "other": [{"op": "wrbase", "seg": "fs", "value": 5}]},\n'
        '  {"op": "ptrace_setregs", "fields": {"r15": 1}}\n'
        "]}\n"
    )

    spans = parse_trace(text, "t.json").spans

    expected: dict[SpanKey, Span] = {
        (): Span("t.json", 1, 1),
        ("cpu",): Span("t.json", 1, 35),
        (0,): Span("t.json", 2, 3),
        (0, "selector"): Span("t.json", 2, 46),
        (1, "other", 0): Span("t.json", 3, 29),
        (1, "other", 0, "value"): Span("t.json", 3, 68),
        (2, "fields", "r15"): Span("t.json", 4, 46),
    }
    assert expected == {key: spans[key] for key in expected}


def test_span_at_falls_back_to_the_nearest_recorded_prefix() -> None:
    """span_at of a key not in the input gives the span of its closest enclosing part."""
    loaded = parse_trace(_doc('{"op": "modify_ldt", "entry": 1}'), "t.json")

    assert Span("t.json", 2, 1) == loaded.span_at((0, "base_addr"))
    assert Span("t.json", 1, 1) == loaded.span_at((7,))


BAD_INPUT = [
    # (document, diagnostic) -- one entry per class of bad input
    (
        "[]",
        (
            "t.json:1:1: error: trace document is not an object: expected an object with keys "
            "format and events, got an array"
        ),
    ),
    (
        '{"events": []}',
        "t.json:1:1: error: missing key 'format' in trace document: expected an object with "
        "keys format and events",
    ),
    (
        '{"format": "fsgs-trace/2", "events": []}',
        "t.json:1:12: error: unsupported format 'fsgs-trace/2': expected 'fsgs-trace/1'",
    ),
    (
        '{"format": "fsgs-trace/1"}',
        "t.json:1:1: error: missing key 'events' in trace document: expected an object with "
        "keys format and events",
    ),
    (
        '{"format": "fsgs-trace/1", "events": [], "loop": 1}',
        (
            "t.json:1:42: error: unknown key 'loop' in trace document: expected one of "
            "format, cpu, "
            "events, results"
        ),
    ),
    (
        '{"format": "fsgs-trace/1", "events": {}}',
        (
            "t.json:1:38: error: events is not an array: expected an array of event "
            "objects, got an "
            "object"
        ),
    ),
    (
        '{"format": "fsgs-trace/1", "cpu": "zen3", "events": []}',
        "t.json:1:35: error: unknown cpu 'zen3': expected one of intel, amd-legacy, amd-zen3",
    ),
    (
        '{"format": "fsgs-trace/1", "cpu": null, "events": []}',
        (
            "t.json:1:35: error: cpu is not a string: expected one of intel, amd-legacy, amd-zen3, "
            "got null"
        ),
    ),
    (
        '{"format": "fsgs-trace/1", "events": [], "results": {}}',
        (
            "t.json:1:53: error: results is not an array: expected an array of result objects, got "
            "an object"
        ),
    ),
    (
        _doc('"mov_seg"'),
        (
            "t.json:2:1: error: event is not an object: expected an object with an "
            "'op' key, got 'mov_seg'"
        ),
    ),
    (
        _doc('{"seg": "gs"}'),
        "t.json:2:1: error: missing key 'op' in event: expected an object with an 'op' key",
    ),
    (
        _doc('{"op": "wrbase_gs"}'),
        (
            "t.json:2:8: error: unknown op 'wrbase_gs': expected one of mov_seg, wrbase, "
            "arch_prctl, "
            "modify_ldt, set_thread_area, yield, interrupt, migrate, observe, ptrace_peek, "
            "ptrace_poke, ptrace_setregs, signal, fork, exec"
        ),
    ),
    (
        _doc('{"op": 1}'),
        (
            "t.json:2:8: error: op is not a string: expected one of mov_seg, wrbase, arch_prctl, "
            "modify_ldt, set_thread_area, yield, interrupt, migrate, observe, ptrace_peek, "
            "ptrace_poke, ptrace_setregs, signal, fork, exec, got 1"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selectr": 7}'),
        (
            "t.json:2:32: error: unknown key 'selectr' in mov_seg event: expected one of op, seg, "
            "selector"
        ),
    ),
    (
        _doc('{"op": "fork", "child": 1}'),
        "t.json:2:16: error: unknown key 'child' in fork event: expected only op",
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs"}'),
        "t.json:2:1: error: missing key 'selector' in mov_seg event: expected the keys seg and "
        "selector",
    ),
    (
        _doc('{"op": "mov_seg", "seg": "es", "selector": 0}'),
        "t.json:2:26: error: unknown seg 'es' in mov_seg event: expected one of fs, gs",
    ),
    (
        _doc('{"op": "mov_seg", "seg": ["gs"], "selector": 0}'),
        (
            "t.json:2:26: error: seg in mov_seg event is not a string: expected one of fs, gs, got "
            "an array"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": "0x10000"}'),
        (
            "t.json:2:44: error: selector out of range: expected an integer in 0..0xffff, got "
            "0x10000"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": -7}'),
        "t.json:2:44: error: selector out of range: expected an integer in 0..0xffff, got -7",
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": 7.0}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got a float (7.0)"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": "7"}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got '7' (hex strings need the 0x prefix)"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": ""}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got ''"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": "0x"}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got '0x'"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": "0x1_0"}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got '0x1_0'"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": true}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got true"
        ),
    ),
    (
        _doc('{"op": "mov_seg", "seg": "gs", "selector": null}'),
        (
            't.json:2:44: error: selector is not a number: expected a hex string like "0x7" or a '
            "JSON integer, got null"
        ),
    ),
    (
        _doc('{"op": "wrbase", "seg": "gs", "value": "0x10000000000000000"}'),
        (
            "t.json:2:40: error: value out of range: expected an integer in 0..0xffffffffffffffff, "
            "got 0x10000000000000000"
        ),
    ),
    (
        _doc('{"op": "arch_prctl", "code": "ARCH_SET_FS", "value": 0}'),
        (
            "t.json:2:30: error: unknown code 'ARCH_SET_FS' in arch_prctl event: expected one of "
            "SET_FS, SET_GS, GET_FS, GET_GS"
        ),
    ),
    (
        _doc('{"op": "arch_prctl", "code": "SET_GS"}'),
        "t.json:2:1: error: missing key 'value' in arch_prctl event: expected a value with SET_GS",
    ),
    (
        _doc('{"op": "arch_prctl", "code": "GET_GS", "value": "0x0"}'),
        (
            "t.json:2:49: error: unexpected value in arch_prctl event: expected no value with "
            "GET_GS, got '0x0'"
        ),
    ),
    (
        _doc('{"op": "modify_ldt", "entry": -1}'),
        "t.json:2:31: error: entry out of range: expected an integer in 0..0xffffffff, got -1",
    ),
    (
        _doc('{"op": "modify_ldt", "entry": "-0x1"}'),
        "t.json:2:31: error: entry out of range: expected an integer in 0..0xffffffff, got -1",
    ),
    (
        _doc('{"op": "modify_ldt", "entry": 0, "base_addr": "0x100000000"}'),
        (
            "t.json:2:47: error: base_addr out of range: expected an integer in 0..0xffffffff, got "
            "0x100000000"
        ),
    ),
    (
        _doc('{"op": "modify_ldt", "entry": 0, "seg_32bit": 2}'),
        "t.json:2:47: error: seg_32bit out of range: expected an integer in 0..1, got 2",
    ),
    (
        _doc('{"op": "modify_ldt", "entry": 0, "contents": "0x4"}'),
        "t.json:2:46: error: contents out of range: expected an integer in 0..3, got 4",
    ),
    (
        _doc('{"op": "set_thread_area", "entry_number": -2}'),
        (
            "t.json:2:43: error: entry_number out of range: expected -1 or an integer in "
            "0..0xffffffff, got -2"
        ),
    ),
    (
        _doc('{"op": "set_thread_area", "entry_number": 6, "abi": "x32"}'),
        "t.json:2:53: error: unknown abi 'x32' in set_thread_area event: expected one of 64, ia32",
    ),
    (
        _doc('{"op": "yield", "other": {}}'),
        (
            "t.json:2:26: error: other is not an array: expected an array of events for the other "
            "task, got an object"
        ),
    ),
    (
        _doc('{"op": "yield", "other": [{"op": "yield"}]}'),
        (
            "t.json:2:34: error: op 'yield' is not allowed in yield.other: expected one "
            "of mov_seg, "
            "wrbase, arch_prctl, modify_ldt, set_thread_area, observe"
        ),
    ),
    (
        _doc('{"op": "yield", "other": [{"op": "ptrace_peek", "field": "fs"}]}'),
        (
            "t.json:2:34: error: op 'ptrace_peek' is not allowed in yield.other: expected one of "
            "mov_seg, wrbase, arch_prctl, modify_ldt, set_thread_area, observe"
        ),
    ),
    (
        _doc('{"op": "yield", "other": [{"op": "nap"}]}'),
        (
            "t.json:2:34: error: unknown op 'nap': expected one of mov_seg, wrbase, arch_prctl, "
            "modify_ldt, set_thread_area, observe"
        ),
    ),
    (
        _doc('{"op": "yield", "other": [{"op": "mov_seg", "seg": "gs", "selector": 65536}]}'),
        (
            "t.json:2:70: error: selector out of range: expected an integer in 0..0xffff, got "
            "0x10000"
        ),
    ),
    (
        _doc('{"op": "yield", "other": [7]}'),
        (
            "t.json:2:27: error: yield.other entry is not an object: expected an object "
            "with an 'op' "
            "key, got 7"
        ),
    ),
    (
        _doc('{"op": "migrate", "cpu": "0x100000000"}'),
        (
            "t.json:2:26: error: cpu out of range: expected an integer in 0..0xffffffff, got "
            "0x100000000"
        ),
    ),
    (
        _doc('{"op": "observe", "via": "rdfsbase"}'),
        (
            "t.json:2:26: error: unknown via 'rdfsbase' in observe event: expected one of rdbase, "
            "arch_prctl, fault"
        ),
    ),
    (
        _doc('{"op": "ptrace_peek", "field": "ds"}'),
        (
            "t.json:2:32: error: unknown field 'ds' in ptrace_peek event: expected one of fs, gs, "
            "fs_base, gs_base"
        ),
    ),
    (
        _doc('{"op": "ptrace_setregs"}'),
        "t.json:2:1: error: missing key 'fields' in ptrace_setregs event: expected the key fields",
    ),
    (
        _doc('{"op": "ptrace_setregs", "fields": []}'),
        (
            "t.json:2:36: error: fields is not an object: expected an object of register slot -> "
            "value, got an array"
        ),
    ),
    (
        _doc('{"op": "ptrace_setregs", "fields": {"rax": 0}}'),
        "t.json:2:37: error: unknown register 'rax' in ptrace_setregs fields: expected one of "
        + ", ".join(USER_REGS_SLOTS),
    ),
    (
        _doc('{"op": "ptrace_setregs", "fields": {"gs_base": 1.5}}'),
        (
            "t.json:2:48: error: gs_base is not a number: expected a hex string like "
            '"0x7" or a JSON '
            "integer, got a float (1.5)"
        ),
    ),
    (
        _doc('{"op": "signal"}', '{"op": "mov_seg", "seg": "gs", "selector": "0x10000"}'),
        (
            "t.json:3:44: error: selector out of range: expected an integer in 0..0xffff, got "
            "0x10000"
        ),
    ),
    (
        '{"format": "fsgs-trace/1", "events": [1,]}',
        "t.json:1:41: error: malformed JSON: expected a value, got ']'",
    ),
]


@pytest.mark.parametrize(("text", "diagnostic"), BAD_INPUT)
def test_bad_input_is_reported_at_the_offending_value(text: str, diagnostic: str) -> None:
    """Each class of bad input names what was expected and got, at its file:line:col."""
    assert diagnostic == _error(text)


def test_load_trace_reads_a_file(tmp_path: pathlib.Path) -> None:
    """load_trace reads a UTF-8 file, skipping a byte-order mark, and names it in spans."""
    path = tmp_path / "t.json"
    path.write_bytes(b"\xef\xbb\xbf" + SPEC_EXAMPLE.encode())

    loaded = load_trace(path)

    assert parse_trace(SPEC_EXAMPLE, "spec.json").trace == loaded.trace
    assert Span(str(path), 1, 1) == loaded.spans[()]


def test_load_trace_reports_a_missing_file(tmp_path: pathlib.Path) -> None:
    """A file that does not exist is an InputError at line 1, col 1 of that file."""
    path = tmp_path / "missing.json"

    with pytest.raises(InputError) as info:
        load_trace(path)

    assert (
        f"{path}:1:1: error: cannot read trace file: No such file or directory: expected a "
        "readable file"
    ) == (info.value.one_line())


def test_load_trace_reports_a_directory(tmp_path: pathlib.Path) -> None:
    """A directory is an InputError at line 1, col 1."""
    with pytest.raises(InputError) as info:
        load_trace(tmp_path)

    assert (
        f"{tmp_path}:1:1: error: cannot read trace file: Is a directory: expected a readable file"
    ) == info.value.one_line()


def test_load_trace_reports_text_that_is_not_utf8(tmp_path: pathlib.Path) -> None:
    """Bytes that are not UTF-8 are an InputError at the first bad byte, naming it."""
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"format": "fsgs-trace/1", "events": [], "x": "\xe9"}')

    with pytest.raises(InputError) as info:
        load_trace(path)

    assert (
        f"{path}:1:48: error: trace file is not UTF-8: expected UTF-8 text, got byte 0xe9"
    ) == info.value.one_line()


def test_load_trace_reports_malformed_json_with_the_file_name(tmp_path: pathlib.Path) -> None:
    """Syntax errors in a file are located in that file."""
    path = tmp_path / "t.json"
    path.write_text('{"format": "fsgs-trace/1",\n "events": [}\n')

    with pytest.raises(InputError) as info:
        load_trace(path)

    assert f"{path}:2:13: error: malformed JSON: expected a value or ']', got '}}'" == (
        info.value.one_line()
    )


# -- writing -------------------------------------------------------------------------------


def test_events_are_written_canonically() -> None:
    """Hex strings, op first, the table's field order, and defaults of extensions left out."""
    events: list[Event] = [
        MovSeg(seg=Seg.GS, selector=0x2B),
        ArchPrctl(code=ArchCode.SET_GS, value=0xABC),
        ArchPrctl(code=ArchCode.GET_FS),
        SetThreadArea(entry_number=-1, desc=UserDesc(base_addr=0x10, useable=1)),
        Yield(),
        Yield(other=(WrBase(seg=Seg.FS, value=0),)),
        Observe(),
        Observe(via=ObserveVia.ARCH_PRCTL),
        PtraceSetregs(fields=(("gs", 0), ("ax", 0xFF))),
        Exec(),
    ]

    assert [
        {"op": "mov_seg", "seg": "gs", "selector": "0x2b"},
        {"op": "arch_prctl", "code": "SET_GS", "value": "0xabc"},
        {"op": "arch_prctl", "code": "GET_FS"},
        {
            "op": "set_thread_area",
            "entry_number": "-0x1",
            "base_addr": "0x10",
            "limit": "0x0",
            "seg_32bit": "0x0",
            "contents": "0x0",
            "read_exec_only": "0x0",
            "limit_in_pages": "0x0",
            "seg_not_present": "0x0",
            "useable": "0x1",
        },
        {"op": "yield"},
        {"op": "yield", "other": [{"op": "wrbase", "seg": "fs", "value": "0x0"}]},
        {"op": "observe"},
        {"op": "observe", "via": "arch_prctl"},
        {"op": "ptrace_setregs", "fields": {"gs": "0x0", "ax": "0xff"}},
        {"op": "exec"},
    ] == [event_to_json(e) for e in events]


def test_fields_are_written_in_the_order_of_the_table() -> None:
    """The op comes first, then each op's fields in the order trace-format.md lists them."""
    events: list[Event] = [
        MovSeg(seg=Seg.FS, selector=0),
        ModifyLdt(entry=0, desc=UserDesc()),
        SetThreadArea(entry_number=0, desc=UserDesc(), abi=Abi.IA32),
        PtracePoke(field=PtraceField.FS_BASE, value=0),
    ]

    assert [
        "op seg selector",
        (
            "op entry base_addr limit seg_32bit contents read_exec_only limit_in_pages "
            "seg_not_present useable"
        ),
        (
            "op entry_number base_addr limit seg_32bit contents read_exec_only limit_in_pages "
            "seg_not_present useable abi"
        ),
        "op field value",
    ] == [" ".join(event_to_json(e)) for e in events]


def test_writing_a_symbolic_value_is_a_type_error() -> None:
    """Only concrete integers can be written."""
    with pytest.raises(TypeError, match="expected a concrete integer"):
        event_to_json(Migrate(cpu="x"))


def test_writing_a_slot_twice_is_a_value_error() -> None:
    """A ptrace_setregs that names a slot twice has no JSON object to become."""
    with pytest.raises(ValueError, match="names a slot twice"):
        event_to_json(PtraceSetregs(fields=(("gs", 0), ("gs", 1))))


def test_trace_to_json_orders_keys_and_numbers_results() -> None:
    """The document has format, cpu, events, results, with one {i, op, result} per event."""
    trace = Trace(cpu="intel", events=(Interrupt(), Observe()))
    observed = {"fs": "0x0", "fs_base": "0x0", "gs": "0x0", "gs_base": "0x0"}

    doc = trace_to_json(trace, ["ok", observed])

    assert {
        "format": "fsgs-trace/1",
        "cpu": "intel",
        "events": [{"op": "interrupt"}, {"op": "observe"}],
        "results": [
            {"i": 0, "op": "interrupt", "result": "ok"},
            {"i": 1, "op": "observe", "result": observed},
        ],
    } == doc
    assert ["format", "cpu", "events", "results"] == list(doc)


def test_trace_to_json_leaves_out_an_unset_cpu_and_absent_results() -> None:
    """Without a CPU or results the document has only format and events."""
    assert {"format": "fsgs-trace/1", "events": []} == trace_to_json(Trace(events=()))


def test_trace_to_json_needs_one_result_per_event() -> None:
    """A results list of the wrong length is a ValueError."""
    with pytest.raises(ValueError, match="expected 1 results, one per event, got 2"):
        trace_to_json(Trace(events=(Fork(),)), ["ok", "ok"])


def test_dumps_trace_indents_by_two_and_ends_with_a_newline() -> None:
    """dumps_trace is json.dumps(indent=2) plus a newline."""
    trace = Trace(events=(Signal(),))

    assert (
        '{\n  "format": "fsgs-trace/1",\n  "events": [\n    {\n      "op": "signal"\n'
        "    }\n  ]\n}\n" == dumps_trace(trace)
    )


# -- round trip ------------------------------------------------------------------------------


def _u(high: int) -> st.SearchStrategy[int]:
    """Integers in 0..high, shrinking towards 0."""
    return st.integers(min_value=0, max_value=high)


_USER_DESC = st.builds(
    UserDesc,
    base_addr=_u(U32),
    limit=_u(U32),
    seg_32bit=_u(1),
    contents=_u(3),
    read_exec_only=_u(1),
    limit_in_pages=_u(1),
    seg_not_present=_u(1),
    useable=_u(1),
)
_SEGS = st.sampled_from(Seg)
_OTHER_TASK_EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(MovSeg, seg=_SEGS, selector=_u(0xFFFF)),
    st.builds(WrBase, seg=_SEGS, value=_u(U64)),
    st.builds(ArchPrctl, code=st.sampled_from([ArchCode.SET_FS, ArchCode.SET_GS]), value=_u(U64)),
    st.builds(ArchPrctl, code=st.sampled_from([ArchCode.GET_FS, ArchCode.GET_GS])),
    st.builds(ModifyLdt, entry=_u(U32), desc=_USER_DESC),
    st.builds(
        SetThreadArea,
        entry_number=st.just(-1) | _u(U32),
        desc=_USER_DESC,
        abi=st.sampled_from(Abi),
    ),
    st.builds(Observe, via=st.none() | st.sampled_from(ObserveVia)),
)
_REGS = st.lists(st.sampled_from(USER_REGS_SLOTS), unique=True, max_size=6).flatmap(
    lambda slots: st.tuples(*(st.tuples(st.just(slot), _u(U64)) for slot in slots))
)
_EVENTS: st.SearchStrategy[Event] = st.one_of(
    _OTHER_TASK_EVENTS,
    st.builds(Yield, other=st.lists(_OTHER_TASK_EVENTS, max_size=3).map(tuple)),
    st.builds(Interrupt),
    st.builds(Migrate, cpu=_u(U32)),
    st.builds(PtracePeek, field=st.sampled_from(PtraceField)),
    st.builds(PtracePoke, field=st.sampled_from(PtraceField), value=_u(U64)),
    st.builds(PtraceSetregs, fields=_REGS),
    st.builds(Signal),
    st.builds(Fork),
    st.builds(Exec),
)
_TRACES = st.builds(
    Trace,
    events=st.lists(_EVENTS, max_size=8).map(tuple),
    cpu=st.none() | st.sampled_from(CPU_MODEL_NAMES),
)


@settings(max_examples=200, derandomize=True)
@given(trace=_TRACES)
def test_dumps_then_parse_is_the_identity(trace: Trace) -> None:
    """parse_trace(dumps_trace(t)).trace == t for every valid trace."""
    assert trace == parse_trace(dumps_trace(trace), "t.json").trace


def _hex_strings_to_ints(value: object) -> object:
    """*value* with every hex string of a JSON document replaced by the integer it spells."""
    if isinstance(value, dict):
        return {k: _hex_strings_to_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_strings_to_ints(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"-?0x[0-9a-f]+", value):
        return int(value, 16)
    return value


@settings(max_examples=200, derandomize=True)
@given(trace=_TRACES)
def test_json_integers_read_as_the_hex_strings_do(trace: Trace) -> None:
    """A document with plain JSON integers for every number reads as the same trace."""
    text = json.dumps(_hex_strings_to_ints(trace_to_json(trace)))

    assert trace == parse_trace(text, "t.json").trace
