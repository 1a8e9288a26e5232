"""A counterexample is shown only if fsgs-trace/1 (what `fsgs-smt simulate` reads) reads it
back unchanged: a model value outside a field's range is a bug in the encoding, not a trace."""

from __future__ import annotations

from fsgs_smt.pipeline import _readable
from fsgs_smt.semantics import events as ev


def test_an_in_range_trace_is_readable() -> None:
    events = [
        ev.ModifyLdt(entry=0, desc=ev.UserDesc(base_addr=0x7000, read_exec_only=1)),
        ev.Yield(other=(ev.MovSeg(seg=ev.Seg.GS, selector=7),)),
        ev.SetThreadArea(entry_number=12, desc=ev.UserDesc(), abi=ev.Abi.IA32),
    ]

    assert (True, "") == _readable(events)


def test_a_descriptor_field_out_of_range_is_refused_with_the_reason() -> None:
    """The bug this guards against: the other task's modify_ldt read_exec_only = 0xff801ff9."""
    bad = ev.ModifyLdt(entry=0, desc=ev.UserDesc(read_exec_only=0xFF801FF9))

    ok, why = _readable([ev.Yield(other=(bad,))])

    assert not ok
    assert "read_exec_only" in why
