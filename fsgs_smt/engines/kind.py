# SPDX-License-Identifier: MIT
"""Bounded model checking and k-induction over a `System` and a `Property`.

Layer: engines. Imports z3, `encode.*`, `engines.verdict`.

* BMC is incremental (one solver, one transition added per depth, the negated property
  checked under an assumption), so the first counterexample found is a shortest one.
* k-induction keeps the base case (the BMC above: a real counterexample) apart from the
  step case (k consecutive states satisfying the invariant and its lemmas, pairwise
  distinct, followed by one that does not): a step failure is a counterexample to
  induction, never reported as a bug.
* A timeout or an ``unknown`` answer is UNKNOWN, never PROVED.

The engines only search; `pipeline` re-checks every answer before anyone sees it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from fsgs_smt.encode.property import Property
from fsgs_smt.encode.system import System
from fsgs_smt.engines.backend import Model, Solver
from fsgs_smt.semantics.events import Event

SEED = 0

Strengthening = Callable[[dict[str, Any]], Any]
# Lemmas to assert from some depth on: (that depth, what gives them; None if none).
LateLemmas = tuple[int, Callable[[], Strengthening | None]]

# A known violation of depth k, already confirmed on the concrete semantics by the caller:
# the events (the invariant's own included), the invariant's parameters, and how it was
# found (for the report); None if none.
Witness = tuple[tuple[Event, ...], dict[str, int], str]
Known = Callable[[int], Witness | None]


@dataclass(frozen=True, slots=True)
class Search:
    """What an engine found."""

    kind: str  # "violated" | "lemma-false" | "proved" | "bounded" | "unknown"
    depth: int
    model: Model | None = None
    reason: str = ""
    k: int = 0
    witness: Witness | None = None  # a violation given by `Engine.run`'s *known*, no model


class Deadline:
    """A wall-clock budget shared by the queries of one check."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left_ms(self) -> int:
        """Milliseconds left (at least 1 while any remain; 0 when spent)."""
        left = self.end - time.monotonic()
        return max(0, int(left * 1000))


def _check(solver: Solver, deadline: Deadline, *assumptions: Any) -> tuple[str, str]:
    answer = solver.check(*assumptions, deadline=deadline.left_ms)
    return answer.result, answer.reason


def invariant_terms(prop: Property, s: dict[str, Any], tag: str) -> tuple[Any, Any]:
    """(the invariant, the conjunction of its lemmas) in world *s*."""
    lemmas = prop.lemmas(s)
    return prop.holds(s, tag), (z3.And(lemmas) if lemmas else z3.BoolVal(True))


class Engine:
    """BMC and k-induction sharing one base-case solver.

    *strengthen*, when given, is a proved inductive invariant of the system (the re-checked
    Houdini lemmas): it holds in every reachable world, so asserting it in every unrolled
    world removes no real counterexample and spares the solver unreachable ones.

    *fold_initial*: the first step of the unrolling is `System.trans_from_initial` (the
    initial world's constants substituted into the transition) rather than an instance of
    the template over state variables equal to them. Both say the same; solvers find
    different counterexamples fast in each (`engines.portfolio` races the two).

    *strengthen_later* (d, lemmas): without *strengthen*, BMC (not k-induction, whose
    certificate says nothing of lemmas) calls *lemmas* for an inductive invariant of the
    system (None if there is none) once it reaches depth d, and from then on asserts it in
    every world unrolled so far and after. Counterexamples shallower than d are found
    without paying for the lemmas; deeper queries get them (linux-5.9 / intel Q1a, depth 4:
    11.4 s without, 0.3 s with them). It is the same search: the lemmas hold in every
    reachable world.
    """

    def __init__(
        self, system: System, prop: Property, deadline: Deadline, *, solver: str = "auto",
        strengthen: Strengthening | None = None, fold_initial: bool = True,
        strengthen_later: LateLemmas | None = None,
    ) -> None:  # fmt: skip
        self.system = system
        self.prop = prop
        self.deadline = deadline
        self.solver_name = solver
        self.strengthen = strengthen
        self.strengthen_later = None if strengthen is not None else strengthen_later
        self.strengthened_at: int | None = None  # the depth the late lemmas came in at
        self.fold_initial = fold_initial
        self.base = Solver(solver, seed=SEED)
        self.base.add(system.init_constraint(system.state(0)))
        self.base_depth = -1  # transitions added so far: states 0..base_depth+1 exist

    def base_case(self, k: int) -> Search:
        """Is there a reachable world at depth *k* where the invariant or a lemma fails?"""
        system = self.system
        if self.strengthen_later is not None and k >= self.strengthen_later[0]:
            (_, later), self.strengthen_later = self.strengthen_later, None
            self.strengthen = later()
            if self.strengthen is not None:
                self.strengthened_at = k
                for t in range(1, self.base_depth + 2):  # the worlds unrolled so far
                    self.base.add(self.strengthen(system.state(t)))
        while self.base_depth < k - 1:
            self.base_depth += 1
            if self.base_depth == 0 and self.fold_initial:  # the initial world's constants in
                self.base.add(system.trans_from_initial(system.state(1), system.params(0),
                                                        system.op(0)))  # fmt: skip
            else:
                self.base.add_instance(*system.trans_instance(self.base_depth))
            if self.strengthen is not None:
                self.base.add(self.strengthen(system.state(self.base_depth + 1)))
        s = system.state(k)
        holds, lemmas = invariant_terms(self.prop, s, str(k))
        result, reason = _check(self.base, self.deadline, z3.Not(holds))
        if result == "sat":
            return Search("violated", k, self.base.model())
        if result == "unknown":
            return Search("unknown", k, reason=reason)
        if self.prop.inv.lemmas:
            result, reason = _check(self.base, self.deadline, z3.Not(lemmas))
            if result == "sat":
                return Search("lemma-false", k, self.base.model())
            if result == "unknown":
                return Search("unknown", k, reason=reason)
        return Search("bounded", k)

    def step_case(self, k: int) -> Search:
        """Do k consecutive distinct worlds satisfying invariant and lemmas force the next?"""
        system = self.system
        solver = Solver(self.solver_name, seed=SEED)
        states = [system.state(t) for t in range(k + 1)]
        for t in range(k):
            solver.add_instance(*system.trans_instance(t))
            holds, lemmas = invariant_terms(self.prop, states[t], str(t))
            solver.add(holds, lemmas)
            if self.strengthen is not None:
                solver.add(self.strengthen(states[t]))
        for i in range(k + 1):
            for j in range(i + 1, k + 1):
                solver.add(z3.Or([states[i][key] != states[j][key] for key in system.layout]))
        holds, lemmas = invariant_terms(self.prop, states[k], str(k))
        result, reason = _check(solver, self.deadline, z3.Not(z3.And(holds, lemmas)))
        if result == "unsat":
            return Search("proved", k, k=k)
        if result == "unknown":
            return Search("unknown", k, reason=reason)
        return Search("cti", k, solver.model())

    def run(
        self, max_depth: int, *, induction: bool, known: Known | None = None,
        only: Callable[[int], bool] | None = None, bounded: Callable[[int], None] | None = None,
    ) -> Search:  # fmt: skip
        """Base cases 0..max_depth, with a step case after each when *induction* is on.

        *known* (k) may name a violation of depth k that the caller has confirmed on the
        simulator: it is asked before the depth-k query, once every shorter depth is
        unsatisfiable, so what it gives is a shortest counterexample too, and the
        satisfiable query (the expensive one) is spared.

        *only* (k) False skips depth k's query (its transitions are still unrolled; *known*
        is still asked): a violation found after a skipped depth is a shortest one only if
        someone else showed that the skipped depths have none (`engines.portfolio` splits
        the depths between its racers). *bounded* (k) is told of each depth found clean,
        as soon as it is."""
        if only is not None and induction:
            raise ValueError("a search that skips depths proves nothing by induction")
        if induction:  # its certificate is re-checked without them (`recheck_certificate`)
            self.strengthen_later = None
        last_cti = 0
        for k in range(max_depth + 1):
            hit = known(k) if known is not None else None
            if hit is not None:
                return Search("violated", k, witness=hit)
            if only is not None and not only(k):
                continue
            base = self.base_case(k)
            if base.kind != "bounded":
                return base
            if bounded is not None:
                bounded(k)
            if induction and k + 1 <= max_depth + 1:
                step = self.step_case(k + 1)
                if step.kind == "proved":
                    return step
                if step.kind == "unknown":
                    return Search("unknown", k, reason=f"induction step: {step.reason}")
                last_cti = k + 1
        if induction:
            return Search("bounded", max_depth, reason=f"not {last_cti}-inductive")
        if self.strengthened_at is not None:
            return Search("bounded", max_depth, reason="the system's inductive lemmas asserted "
                          f"from depth {self.strengthened_at}")  # fmt: skip
        return Search("bounded", max_depth)


def recheck_certificate(
    system: System, prop: Property, k: int, seconds: float, *, solver: str = "auto"
) -> Search:
    """Re-check a k-induction proof in fresh solvers: base to depth k-1, then the step at k."""
    fresh = Engine(system, prop, Deadline(seconds), solver=solver)
    for depth in range(k):
        base = fresh.base_case(depth)
        if base.kind != "bounded":
            return base
    return fresh.step_case(k)
