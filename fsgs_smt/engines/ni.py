# SPDX-License-Identifier: MIT
"""Noninterference by self-composition: two worlds, the same task, different other tasks.

Layer: engines. Imports z3, `encode.system`, `semantics.props`.

Both copies start from the initial world and take the same event each step, except
that when both take a ``yield``, the other task may do different things in each copy
(``mov_seg``, ``wrbase``, ``arch_prctl``, or nothing; an LDT write by the other task is
shared state of the process, visible to the task by design, so it must be the same in
both). The invariant is violated when the listed view fields of the task differ.

This engine is bounded (BMC over the product): a clean search is BOUNDED(k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import z3

from fsgs_smt.encode.system import PARAMS, System
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.policy.invariants import Invariant
from fsgs_smt.semantics.events import Event
from fsgs_smt.semantics.props import view

_FREE_OTHER = ("yield", "yield/mov_seg fs", "yield/mov_seg gs", "yield/wrbase fs",
               "yield/wrbase gs", "yield/arch_prctl SET_FS", "yield/arch_prctl SET_GS")  # fmt: skip


@dataclass(frozen=True, slots=True)
class NiSearch:
    """What the product search found: two traces whose observations differ, or nothing."""

    kind: str  # "violated" | "bounded" | "unknown"
    depth: int
    first: tuple[Event, ...] = ()
    second: tuple[Event, ...] = ()
    reason: str = ""


def _copy(system: System, t: int, tag: str) -> tuple[dict[str, Any], dict[str, Any], Any]:
    d = system.d
    s = {k: d.var(f"{k}@{t}{tag}", w) for k, w in system.layout.items()}
    p = {n: d.var(f"{n}@{t}{tag}", w) for n, w in PARAMS.items()}
    op = z3.BitVec(f"op@{t}{tag}", system.op_width)
    return s, p, op


def search(system: System, inv: Invariant, depth: int, deadline: Deadline) -> NiSearch:
    """BMC over two copies of *system* for a difference in *inv*'s observed fields."""
    free = [i for i, v in enumerate(system.variants) if v.name in _FREE_OTHER]
    solver = z3.SolverFor("QF_BV")
    solver.set("random_seed", 0)
    s1, _, _ = _copy(system, 0, "a")
    s2, _, _ = _copy(system, 0, "b")
    solver.add(system.init_constraint(s1), system.init_constraint(s2))
    steps: list[tuple[Any, Any, Any, Any]] = []
    for k in range(depth + 1):
        if k > 0:
            _, p1, op1 = _copy(system, k - 1, "a")
            _, p2, op2 = _copy(system, k - 1, "b")
            n1, _, _ = _copy(system, k, "a")
            n2, _, _ = _copy(system, k, "b")
            both_free = z3.And(z3.Or([op1 == i for i in free]), z3.Or([op2 == i for i in free]))
            same = z3.And(op1 == op2, *[p1[n] == p2[n] for n in PARAMS])
            solver.add(system.param_constraint(p1, op1), system.param_constraint(p2, op2))
            solver.add(z3.Or(same, both_free))
            nxt1 = system.successor(s1, p1, op1)
            nxt2 = system.successor(s2, p2, op2)
            solver.add(*[n1[key] == nxt1[key] for key in system.layout])
            solver.add(*[n2[key] == nxt2[key] for key in system.layout])
            steps.append((p1, op1, p2, op2))
            s1, s2 = n1, n2
        v1, v2 = view(system.sem, s1), view(system.sem, s2)
        differ = z3.Or([v1[f] != v2[f] for f in inv.observe])
        left = deadline.left_ms()
        if left <= 0:
            return NiSearch("unknown", k, reason="timeout")
        solver.set("timeout", left)
        result = solver.check(differ)
        if result == z3.unknown:
            return NiSearch("unknown", k, reason=solver.reason_unknown())
        if result == z3.sat:
            model = solver.model()
            return NiSearch("violated", k, _decode(system, model, steps, 0),
                            _decode(system, model, steps, 2))  # fmt: skip
    return NiSearch("bounded", depth)


def _decode(system: System, model: z3.ModelRef, steps: list[Any], at: int) -> tuple[Event, ...]:
    out = []
    for step in steps:
        params, op = step[at], step[at + 1]
        i = model.eval(op, model_completion=True).as_long()
        values = {n: model.eval(v, model_completion=True).as_long() for n, v in params.items()}
        out.append(system.variants[i].build(values))
    return tuple(out)
