"""Counterexample shrinking: shorter and simpler, and never without the violation."""

from __future__ import annotations

from fsgs_smt.minimize import shrink
from fsgs_smt.semantics import events as ev


def _broken_if_big_gs_write(events: list[ev.Event]) -> bool:
    return any(isinstance(e, ev.WrBase) and e.value >= 0x1000 for e in events)


def test_shrink_drops_irrelevant_events_and_simplifies_values() -> None:
    """Events the violation does not need go; a value shrinks to the smallest that still fails."""
    events = [
        ev.Interrupt(),
        ev.WrBase(seg=ev.Seg.GS, value=0x7FFF_1234_5000),
        ev.MovSeg(seg=ev.Seg.FS, selector=0x2B),
        ev.Observe(),
    ]
    shrunk = shrink(events, 3, _broken_if_big_gs_write)

    assert [ev.WrBase(seg=ev.Seg.GS, value=0x1000), ev.Observe()] == shrunk


def test_shrink_keeps_the_invariants_own_events() -> None:
    """Events after the prefix (the invariant's) are never dropped or changed."""
    events = [ev.Interrupt(), ev.WrBase(seg=ev.Seg.GS, value=0x5000)]
    shrunk = shrink(events, 1, _broken_if_big_gs_write)

    assert [ev.WrBase(seg=ev.Seg.GS, value=0x5000)] == shrunk


def test_shrink_returns_the_input_when_nothing_can_go() -> None:
    """A trace that needs every event comes back unchanged."""
    events: list[ev.Event] = [ev.WrBase(seg=ev.Seg.GS, value=0x1000)]

    assert events == shrink(events, 1, _broken_if_big_gs_write)
