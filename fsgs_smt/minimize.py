# SPDX-License-Identifier: MIT
"""Shrink a counterexample so a kernel engineer reads it in ten seconds.

Layer: pipeline. Imports `pipeline.evaluate` (the simulator's re-check) and events.

Deterministic passes, each candidate kept only if the simulator still shows the
invariant broken: (1) drop prefix events one at a time; (2) replace each number of a
prefix event by a simpler one (0, 1, 3, 7, 0x1000, the number's low bits, other numbers
of the trace). The invariant's own events are kept (their parameters come from the
model), except the other task's action in an ``other: any`` yield: (3) dropped if the
violation stays without it, else its numbers simplified as in (2). Then (4) the
invariant's own parameters (``p.*``) are simplified the same way (`shrink_params`), the
invariant's events re-derived from them by the caller. The result is never longer than
the input and is re-checked at every step.

A noninterference counterexample is a pair of traces with the same task events (only the
other tasks' actions in yields differ); `shrink_pair` drops events from both at once,
empties one side's other-task actions, moves an event (of both) where that lets another
go, and simplifies numbers, jointly where the two events are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from fsgs_smt.semantics import events as ev

Check = Callable[[list[ev.Event]], bool]  # True while the violation stays


def _numbers(event: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], int]]:
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, bool) or f.name == "cpu":
            continue
        if isinstance(value, int):
            yield (*path, f.name), value
        elif isinstance(value, ev.UserDesc):
            yield from _numbers(value, (*path, f.name))
        elif f.name == "other" and isinstance(value, tuple):
            for i, inner in enumerate(value):
                yield from _numbers(inner, (*path, "other", str(i)))


def numbers(event: ev.Event) -> Iterator[int]:
    """The numbers of *event* that shrinking may simplify (not its CPU): selectors, values,
    descriptor fields, those of the other task's action in a yield."""
    return (value for _, value in _numbers(event))


def _replace(event: Any, path: tuple[str, ...], new: int) -> Any:
    head = path[0]
    if len(path) == 1:
        return dataclasses.replace(event, **{head: new})
    if head == "other":
        i = int(path[1])
        inner = list(event.other)
        inner[i] = _replace(inner[i], path[2:], new)
        return dataclasses.replace(event, other=tuple(inner))
    return dataclasses.replace(event, **{head: _replace(getattr(event, head), path[1:], new)})


def _simpler(value: int, pool: list[int]) -> list[int]:
    out = [0, 1, 3, 7, 0x1000]
    for bits in (8, 16, 32):
        out.append(value & ((1 << bits) - 1))
    out += pool
    return [c for c in dict.fromkeys(out) if c < value]


def shrink(
    events: list[ev.Event], prefix: int, still_broken: Check, free: tuple[int, ...] = ()
) -> list[ev.Event]:
    """The smallest trace the passes reach; *events[prefix:]* (the invariant's) are kept,
    except that in those at the offsets *free* from their start (yields whose other-task
    action the invariant leaves free, ``other: any``) the action is dropped if it can be,
    else its numbers simplified."""
    current = list(events)
    changed = True
    while changed:
        changed = False
        i = 0
        while i < prefix:
            candidate = current[:i] + current[i + 1 :]
            if still_broken(candidate):
                current, prefix, changed = candidate, prefix - 1, True
            else:
                i += 1
    pool = sorted({v for e in current[:prefix] for _, v in _numbers(e)})
    for i in range(prefix):
        current = _simplify_numbers(current, i, pool, still_broken)
    for offset in free:
        i = prefix + offset
        event = current[i]
        if not isinstance(event, ev.Yield) or not event.other:
            continue
        candidate = list(current)
        candidate[i] = dataclasses.replace(event, other=())
        if still_broken(candidate):
            current = candidate
        else:
            current = _simplify_numbers(current, i, pool, still_broken)
    return current


def _simplify_numbers(
    current: list[ev.Event], i: int, pool: list[int], still_broken: Check
) -> list[ev.Event]:
    """*current* with each number of event *i* replaced by the simplest that keeps it broken."""
    for path, value in list(_numbers(current[i])):
        for simpler in _simpler(value, pool):
            candidate = list(current)
            try:
                candidate[i] = _replace(current[i], path, simpler)
            except (TypeError, ValueError):
                continue
            if still_broken(candidate):
                current = candidate
                break
    return current


ParamCheck = Callable[[dict[str, int]], bool]  # True while the violation stays


def shrink_params(params: dict[str, int], still_broken: ParamCheck) -> dict[str, int]:
    """The invariant's own parameters (``p.*``), each replaced in name order by the simplest
    value (as for event numbers: 0, 1, small, its low bits, another parameter's value)
    that keeps the violation. The caller re-derives the invariant's events from them."""
    current = dict(params)
    pool = sorted(set(current.values()))
    for name in sorted(current):
        for simpler in _simpler(current[name], pool):
            candidate = {**current, name: simpler}
            if still_broken(candidate):
                current = candidate
                break
    return current


PairCheck = Callable[[list[ev.Event], list[ev.Event]], bool]  # True while they still differ


def _dropped_pairs(
    a: list[ev.Event], b: list[ev.Event], still_differ: PairCheck
) -> tuple[list[ev.Event], list[ev.Event]]:
    """Steps (1) and (3) of a pair: each event dropped from both, one at a time, then each
    side's other-task action emptied where the two differ; while they still differ."""
    i = 0
    while i < len(a):
        ca, cb = a[:i] + a[i + 1 :], b[:i] + b[i + 1 :]
        if still_differ(ca, cb):
            a, b = ca, cb
        else:
            i += 1
    for i in range(len(a)):
        for side in (0, 1):
            event = (a, b)[side][i]
            if isinstance(event, ev.Yield) and event.other and a[i] != b[i]:
                ca, cb = list(a), list(b)
                (ca, cb)[side][i] = ev.Yield()
                if still_differ(ca, cb):
                    a, b = ca, cb
    return a, b


def _moved_pairs(
    a: list[ev.Event], b: list[ev.Event], still_differ: PairCheck
) -> tuple[list[ev.Event], list[ev.Event]] | None:
    """A pair one event shorter, made by moving one event (of both) elsewhere and then
    dropping one (of both), that still differs; None if there is none. Dropping alone
    cannot shorten [yield / other acts, mov fs 1, yield] to [mov fs 1, yield / other
    acts]: the difference has to be made after the load, where the switch shows it."""
    n = len(a)
    for i in range(n):
        for j in range(n):
            if i == j or (a[i] == a[j] and b[i] == b[j]):
                continue
            ma, mb = list(a), list(b)
            ma.insert(j, ma.pop(i))
            mb.insert(j, mb.pop(i))
            for k in range(n):
                ca, cb = ma[:k] + ma[k + 1 :], mb[:k] + mb[k + 1 :]
                if still_differ(ca, cb):
                    return ca, cb
    return None


def shrink_pair(
    first: list[ev.Event], second: list[ev.Event], still_differ: PairCheck
) -> tuple[list[ev.Event], list[ev.Event]]:
    """The smallest pair the passes reach (see the module docstring)."""
    a, b = _dropped_pairs(list(first), list(second), still_differ)
    while True:  # a move that lets an event go: the difference made later, where it shows
        shorter = _moved_pairs(a, b, still_differ)
        if shorter is None:
            break
        a, b = _dropped_pairs(*shorter, still_differ)
    pool = sorted({v for e in (*a, *b) for _, v in _numbers(e)})
    for i in range(len(a)):
        sides = ((0, 1),) if a[i] == b[i] else ((0,), (1,))
        for together in sides:
            event = (a, b)[together[0]][i]
            for path, value in list(_numbers(event)):
                for simpler in _simpler(value, pool):
                    ca, cb = list(a), list(b)
                    try:
                        for side in together:
                            (ca, cb)[side][i] = _replace((a, b)[side][i], path, simpler)
                    except (TypeError, ValueError):
                        continue
                    if still_differ(ca, cb):
                        a, b = ca, cb
                        break
    return a, b
