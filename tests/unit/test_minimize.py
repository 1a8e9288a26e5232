"""Counterexample shrinking: shorter and simpler, and never without the violation."""

from __future__ import annotations

from fsgs_smt.minimize import shrink, shrink_pair, shrink_params
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


def _broken_if_task_writes(events: list[ev.Event]) -> bool:
    return any(isinstance(e, ev.WrBase) for e in events)


def _broken_if_other_writes_big(events: list[ev.Event]) -> bool:
    return any(
        isinstance(e, ev.Yield)
        and any(isinstance(o, ev.WrBase) and o.value >= 0x1000 for o in e.other)
        for e in events
    )


def test_shrink_drops_the_other_tasks_action_of_a_free_yield_if_it_can() -> None:
    """In the invariant's `other: any` yield (offset 0 of the tail), the other task's
    action goes when the violation does not need it; a yield not listed as free keeps it."""
    action = (ev.ArchPrctl(code=ev.ArchCode.SET_GS, value=0x4000_0000_0000),)
    events = [ev.WrBase(seg=ev.Seg.GS, value=1), ev.Yield(other=action), ev.Yield(other=action)]

    shrunk = shrink(events, 1, _broken_if_task_writes, free=(0,))

    assert [ev.WrBase(seg=ev.Seg.GS, value=0), ev.Yield(), ev.Yield(other=action)] == shrunk


def test_shrink_simplifies_the_other_tasks_action_it_needs() -> None:
    """An action the violation needs stays, with its value as simple as still breaks it."""
    events = [ev.Interrupt(), ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=0x7F00_0000_1234),))]

    shrunk = shrink(events, 1, _broken_if_other_writes_big, free=(0,))

    assert [ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=0x1000),))] == shrunk


def test_shrink_returns_the_input_when_nothing_can_go() -> None:
    """A trace that needs every event comes back unchanged."""
    events: list[ev.Event] = [ev.WrBase(seg=ev.Seg.GS, value=0x1000)]

    assert events == shrink(events, 1, _broken_if_big_gs_write)


def _other_base(events: list[ev.Event]) -> int:
    """A toy observation: the last base an other task wrote in a yield (0 if none)."""
    seen = 0
    for e in events:
        if isinstance(e, ev.Yield):
            for inner in e.other:
                if isinstance(inner, ev.WrBase):
                    seen = inner.value
    return seen


def test_shrink_pair_keeps_the_task_events_equal_and_the_difference() -> None:
    """Task events are dropped and simplified in both traces at once; one side's other
    actions may go; the pair still differs and the task events stay the same."""
    mov = ev.MovSeg(seg=ev.Seg.FS, selector=0x2B)
    first = [ev.Interrupt(), mov, ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=0x7000),))]
    second = [ev.Interrupt(), mov, ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=0x9000),))]

    a, b = shrink_pair(first, second, lambda x, y: _other_base(x) != _other_base(y))

    assert _other_base(a) != _other_base(b)
    assert len(a) == len(b) == 1
    assert {a[0], b[0]} == {ev.Yield(), ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=1),))}


def test_shrink_params_simplifies_each_parameter_while_the_violation_stays() -> None:
    """Each parameter goes to the simplest value that keeps it broken; the others stay."""

    def broken(values: dict[str, int]) -> bool:
        return values["b"] >= 0x1000 and values["c"] == 1

    shrunk = shrink_params({"b": 0xFFFF_8000_0000_0000, "c": 1}, broken)

    assert {"b": 0x1000, "c": 1} == shrunk


def test_shrink_params_keeps_values_that_are_needed() -> None:
    """A parameter no simpler value of which breaks the invariant is left as it was."""
    values = {"sel": 0x6B}

    assert values == shrink_params(values, lambda v: v["sel"] == 0x6B)


def test_shrink_pair_moves_the_difference_where_an_event_can_then_go() -> None:
    """A difference made before a load and shown by a later yield ([other acts, mov, yield])
    shrinks to [mov, other acts] when the difference also shows right after the load:
    dropping alone cannot get there, moving the differing yield and then dropping can."""
    mov = ev.MovSeg(seg=ev.Seg.FS, selector=1)
    acts = ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=0),))

    def differ(x: list[ev.Event], y: list[ev.Event]) -> bool:
        loads = [i for i, e in enumerate(x) if e == mov and y[i] == mov]
        apart = [i for i in range(len(x)) if x[i] != y[i]]
        shown_after = any(j > i for i in loads for j in apart)  # made after the load
        later_yield = any(  # made before it, shown by a yield after it
            i < m < k and isinstance(x[k], ev.Yield) for i in apart for m in loads
            for k in range(len(x))
        )  # fmt: skip
        return shown_after or later_yield

    first, second = [acts, mov, ev.Yield()], [ev.Yield(), mov, ev.Yield()]
    assert differ(first, second)

    a, b = shrink_pair(first, second, differ)

    assert differ(a, b)
    assert ([mov, acts], [mov, ev.Yield()]) == (a, b)
