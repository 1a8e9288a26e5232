# SPDX-License-Identifier: MIT
"""A race of solvers: the same BMC (or k-induction) search, one process per solver.

Layer: engines. Imports `engines.kind`, `engines.backend`, `encode.*`.

Solvers, configurations of one solver, and encodings of one query disagree about which
satisfiable queries are hard: on the counterexample searches of ``bench/targets.py``
either of bitwuzla's default and its lighter rewriting (`backend.CONFIGS`) is up to 4x
faster than the other, and so is either encoding of the first step (`Engine`'s
*fold_initial*), which one depending on the query. z3 was slower than both nearly always;
the pipeline races bitwuzla's default on the folded first step against the lighter
rewriting on the template's instance, the pair that did best on 28 such searches. With
two cores, running both and taking the first answer costs the faster one's time. Each
racer is a forked child (z3's context is not thread-safe, and forking shares the already
built terms); it runs the whole search with its solver
and sends back plain data: the `Search` fields and, for a satisfying answer, the value
of every constant (`Solver.values`), from which the parent rebuilds the model
(`Model.from_values`). With k-induction, the first answer that is not ``unknown`` wins
and the other children are killed; BMC splits the depths (below). A racer that fails
(an exception, a crash) counts as ``unknown`` with its reason, so the race is never more
sure than one of its racers; everything the winner found is re-checked by `pipeline` as
any other answer.

*Split depths* (BMC only, ``lookahead``): the racers share the depths out, the first
asking the solver at the even ones (and the small-scope search at every one), the second
at the odd ones. A satisfiable query is often far quicker in a solver that has not just
shown the depth before it clean (linux-5.9 / amd-legacy fork-inherits, depth 3: 7.0 s
after depth 2, 1.9 s without it), and each shallow unsatisfiable query is asked once
instead of twice. Every racer tells the parent of each depth it found clean as soon as
it has; a violation at depth d, from either racer, is the answer once every depth below
d is clean (by either racer), so it is a shortest one as the sequential search's is,
and the search is bounded once every depth is clean. What one racer ends with otherwise
(clean at its own depths) decides nothing.

*Help*: a racer that ends with the search undecided (its violation waits for shallower
depths, or its own depths are clean) leaves its core free, and a new process with its
configuration asks the depths still missing (`Ledger.missing`), often the one the other
racer is stuck on. Configurations disagree about single queries by up to 10x: on
linux-4.13 / amd-legacy Q3 the first racer needs 2.6 s for depth 2's satisfiable query,
while the second has shown depth 1 clean and found depth 3's violation in 0.9 s, and its
fresh helper answers depth 2 in 0.4 s (the search: 3.1 s -> 1.6 s). Its reports go to
the same `Ledger`, so the answer is still a shortest counterexample.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from fsgs_smt.encode.property import Property
from fsgs_smt.encode.system import System
from fsgs_smt.engines.backend import Model
from fsgs_smt.engines.kind import Deadline, Engine, Known, LateLemmas, Search, Strengthening

GRACE_S = 5.0  # after the deadline, how long to wait for a child to notice it


def can_race() -> bool:
    """Forking is available and there is a second CPU to run a racer on."""
    return "fork" in mp.get_all_start_methods() and (os.cpu_count() or 1) >= 2


def _racer(
    conn: Connection, system: System, prop: Property, deadline: Deadline, racer: Racer,
    max_depth: int, induction: bool, strengthen: Strengthening | None, known: Known | None,
    only: Callable[[int], bool] | None, later: LateLemmas | None,
) -> None:  # fmt: skip
    """The child: run the search (asking the solver only at the depths *only* accepts, if
    given), sending ("clean", k, d) for each depth k found clean (d: the depth the late
    lemmas came in at, or None), then ("ok", kind, depth, reason, k, values, witness) or
    ("error", why)."""
    try:
        solver, fold = racer
        engine = Engine(system, prop, deadline, solver=solver, strengthen=strengthen,
                        fold_initial=fold, strengthen_later=later)  # fmt: skip

        def clean(k: int) -> None:
            conn.send(("clean", k, engine.strengthened_at))

        found = engine.run(max_depth, induction=induction, known=known, only=only, bounded=clean)
        values = None
        if found.model is not None:  # the last sat answer is the one `found` holds
            solver_of = engine.base if found.kind in ("violated", "lemma-false") else None
            values = solver_of.values() if solver_of is not None else None
        conn.send(("ok", found.kind, found.depth, found.reason, found.k, values, found.witness))
    except BaseException:
        conn.send(("error", traceback.format_exc(limit=3)))
    finally:
        conn.close()


Racer = tuple[str, bool]  # a solver configuration, and `Engine`'s fold_initial


class Ledger:
    """What the racers of a split search have shown so far, and when that decides it.

    A violation at depth d is the answer once every depth below d is clean, the smallest
    such one first; the search is bounded once every depth up to *max_depth* is clean.
    Each racer's own depths come in order, but the racers' reports interleave freely."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.clean: set[int] = set()  # depths some racer found clean
        self.pending: dict[int, Search] = {}  # violations, until the depths below are clean

    def found_clean(self, k: int) -> Search | None:
        """Depth *k* has no violation; the answer, if that decides the search."""
        self.clean.add(k)
        return self.settled()

    def found_violation(self, found: Search) -> Search | None:
        """A violation (or a false lemma) at ``found.depth``; the answer, if decided."""
        self.pending.setdefault(found.depth, found)
        return self.settled()

    def settled(self) -> Search | None:
        if self.pending and self.clean.issuperset(range(depth := min(self.pending))):
            return self.pending[depth]
        if self.clean.issuperset(range(self.max_depth + 1)):
            return Search("bounded", self.max_depth)
        return None

    def missing(self) -> list[int]:
        """The depths still to be shown clean before anything is decided: those below the
        shallowest violation held back, or every depth up to *max_depth* if none is."""
        top = min(self.pending) if self.pending else self.max_depth + 1
        return [d for d in range(top) if d not in self.clean]

    def unsettled(self) -> str:
        """Why a violation held back is not an answer ("" if none is held back)."""
        if not self.pending or not (missing := self.missing()):
            return ""
        depth = min(self.pending)
        return f"a violation at depth {depth}, but depth {missing[0]} was not shown clean"


def race(
    system: System, prop: Property, deadline: Deadline, racers: Sequence[Racer],
    max_depth: int, *, induction: bool, strengthen: Strengthening | None = None,
    known: Known | None = None, lookahead: bool = False,
    strengthen_later: LateLemmas | None = None,
) -> Search:  # fmt: skip
    """`Engine.run` with each of *racers* in its own process; the first decisive answer.

    *known* (`Engine.run`'s) is given to the first racer only: the others go straight to
    their solver, so a search that *known* does not end costs the race nothing but that
    racer's time. *lookahead* (without *induction*): the racers split the depths, and a
    racer done with its share helps with what is missing (see the module's docstring).
    *strengthen_later* is each racer's `Engine`'s (each finds the lemmas in its own
    process, when its search gets that deep)."""
    ctx = mp.get_context("fork")
    system.build()
    split = lookahead and not induction and len(racers) > 1
    children: dict[Connection, tuple[Racer, Any]] = {}

    def start(
        racer: Racer, top: int, hint: Known | None, only: Callable[[int], bool] | None
    ) -> None:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_racer, daemon=True,
            args=(child_end, system, prop, deadline, racer, top, induction, strengthen, hint,
                  only, strengthen_later),
        )  # fmt: skip
        proc.start()
        child_end.close()
        children[parent_end] = (racer, proc)

    for n, racer in enumerate(racers):
        share = (lambda k, n=n: k % len(racers) == n) if split else None
        start(racer, max_depth, known if n == 0 else None, share)
    helped: set[tuple[Racer, tuple[int, ...]]] = set()
    reasons: list[str] = []
    first_unknown: Search | None = None
    ledger = Ledger(max_depth)  # used when the racers split the depths
    lemmas_from: int | None = None  # the shallowest depth shown clean with the late lemmas
    try:
        while children:
            left = deadline.left_ms() / 1000 + GRACE_S
            ready = wait(list(children), timeout=left)
            if not ready:
                reasons.append("the racers did not answer before the deadline")
                break
            for ready_conn in ready:
                conn = cast(Connection, ready_conn)
                racer, proc = children[conn]
                name = racer[0]
                try:
                    msg: tuple[Any, ...] = conn.recv()
                except EOFError:
                    msg = ("error", "the process ended without an answer")
                if msg[0] == "clean":
                    if msg[2] is not None and (lemmas_from is None or msg[2] < lemmas_from):
                        lemmas_from = msg[2]
                    if split and (found := ledger.found_clean(msg[1])) is not None:
                        if found.kind == "bounded" and lemmas_from is not None:
                            reason = (
                                f"the system's inductive lemmas asserted from depth {lemmas_from}"
                            )
                            return replace(found, reason=reason)
                        return found
                    continue
                del children[conn]
                conn.close()
                proc.join(GRACE_S)  # it has answered (or died): reap it
                if msg[0] == "error" and proc.exitcode not in (None, 0):
                    msg = ("error", f"{msg[1]} (exit code {proc.exitcode})")
                if msg[0] == "error":
                    reasons.append(f"{name}: {str(msg[1]).strip().splitlines()[-1]}")
                    continue
                _, kind, depth, reason, k, values, witness = msg
                model = Model.from_values(values) if values is not None else None
                found = Search(kind=kind, depth=depth, model=model, reason=reason, k=k,
                               witness=witness)  # fmt: skip
                if split and kind in ("violated", "lemma-false", "bounded"):
                    # a violation waits for the depths below it; "bounded" is clean at
                    # its own depths only. Either way the racer's core is free: it asks
                    # the depths still missing (the other racer may be stuck on one)
                    if kind != "bounded":
                        decided = ledger.found_violation(found)
                        if decided is not None:
                            return decided
                    missing = tuple(ledger.missing())
                    if missing and (racer, missing) not in helped:
                        helped.add((racer, missing))
                        start(racer, max(missing), None, frozenset(missing).__contains__)
                    continue
                if kind != "unknown":
                    return found
                reasons.append(f"{name}: {reason}")
                first_unknown = first_unknown or found
    finally:
        for _, proc in children.values():
            proc.kill()
            proc.join(1)
    if ledger.unsettled():
        reasons.append(ledger.unsettled())
    depth = first_unknown.depth if first_unknown is not None else 0
    return Search("unknown", depth, reason="; ".join(reasons))
