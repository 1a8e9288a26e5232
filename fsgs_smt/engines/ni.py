# SPDX-License-Identifier: MIT
"""Noninterference by self-composition: two worlds, the same task, different other tasks.

Layer: engines. Imports z3, `encode.system`, `semantics.props`.

Both copies start from the initial world and take the same event each step, except
that when both take a ``yield``, the other task may do different things in each copy
(``mov_seg``, ``wrbase``, ``arch_prctl``, or nothing; an LDT write by the other task is
shared state of the process, visible to the task by design, so it must be the same in
both). The invariant is violated when the listed view fields of the task differ.

`search` is bounded (BMC over the product): a clean search is BOUNDED(k). `prove` is
unbounded: relational Houdini over the product. Its candidates say that a field is equal
in both copies (always, or while the task runs on that CPU); assumed in the pre-state with
the system's own inductive lemmas in each copy (each copy's run is a run of the system, so
they hold there), the survivors form an inductive invariant of the product. If it implies
that the observed fields are equal, noninterference holds for every depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import z3

from fsgs_smt.encode.system import PARAMS, System, substitute_many
from fsgs_smt.engines import explore
from fsgs_smt.engines.backend import Model, Solver
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.policy.invariants import Invariant
from fsgs_smt.semantics.domain import CONCRETE
from fsgs_smt.semantics.events import ArchPrctl, Event, MovSeg, WrBase, Yield
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


def search(
    system: System, inv: Invariant, depth: int, deadline: Deadline, *, solver: str = "auto"
) -> NiSearch:
    """BMC over two copies of *system* for a difference in *inv*'s observed fields.

    Each copy's step is an instance of the one transition template (`Solver.add_instance`),
    as in `engines.kind`."""
    free = [i for i, v in enumerate(system.variants) if v.name in _FREE_OTHER]
    check = Solver(solver)
    s1, _, _ = _copy(system, 0, "a")
    s2, _, _ = _copy(system, 0, "b")
    check.add(system.init_constraint(s1), system.init_constraint(s2))
    steps: list[tuple[Any, Any, Any, Any]] = []
    for k in range(depth + 1):
        if k > 0:
            _, p1, op1 = _copy(system, k - 1, "a")
            _, p2, op2 = _copy(system, k - 1, "b")
            n1, _, _ = _copy(system, k, "a")
            n2, _, _ = _copy(system, k, "b")
            both_free = z3.And(z3.Or([op1 == i for i in free]), z3.Or([op2 == i for i in free]))
            same = z3.And(op1 == op2, *[p1[n] == p2[n] for n in PARAMS])
            check.add(z3.Or(same, both_free))
            check.add_instance(*system.trans_between(s1, n1, p1, op1))
            check.add_instance(*system.trans_between(s2, n2, p2, op2))
            steps.append((p1, op1, p2, op2))
            s1, s2 = n1, n2
        v1, v2 = view(system.sem, s1, inv.observe), view(system.sem, s2, inv.observe)
        differ = z3.Or([v1[f] != v2[f] for f in inv.observe])
        answer = check.check(differ, deadline=deadline.left_ms)
        if answer.result == "unknown":
            return NiSearch("unknown", k, reason=answer.reason)
        if answer.result == "sat":
            model = check.model()
            return NiSearch("violated", k, _decode(system, model, steps, 0),
                            _decode(system, model, steps, 2))  # fmt: skip
    return NiSearch("bounded", depth)


def _free_yield(event: Event) -> bool:
    """A yield in which the other task's action may differ between the copies: its variant
    name (as `encode.system.variants` names it) is one of `_FREE_OTHER`."""
    if not isinstance(event, Yield) or len(event.other) > 1:
        return False
    if not event.other:
        return "yield" in _FREE_OTHER
    action = event.other[0]
    match action:
        case MovSeg(seg=seg):
            name = f"mov_seg {seg.value}"
        case WrBase(seg=seg):
            name = f"wrbase {seg.value}"
        case ArchPrctl(code=code):
            name = f"arch_prctl {code.value}"
        case _:
            return False
    return f"yield/{name}" in _FREE_OTHER


def pair_problem(first: Sequence[Event], second: Sequence[Event]) -> str:
    """Why *first* and *second* are not two runs of the self-composition ("" if they are):
    the same events, except yields in which the other task does different free actions."""
    if len(first) != len(second):
        return f"the runs have {len(first)} and {len(second)} events"
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        if a != b and not (_free_yield(a) and _free_yield(b)):
            return f"event {i} differs, and not only in what the other task does in a yield"
    return ""


def _decode(system: System, model: Model, steps: list[Any], at: int) -> tuple[Event, ...]:
    out = []
    for step in steps:
        params, op = step[at], step[at + 1]
        i = model.eval(op, model_completion=True).as_long()
        values = {n: model.eval(v, model_completion=True).as_long() for n, v in params.items()}
        out.append(system.variants[i].build(values))
    return tuple(out)


# ------------------------------------------------------------------ unbounded: relational Houdini

Relation = Callable[[Any, dict[str, Any], dict[str, Any]], Any]  # (domain, a, b) -> bool


@dataclass(frozen=True, slots=True)
class NiProof:
    """``proved`` (with the relational lemmas), ``not-proved`` or ``unknown`` (and why)."""

    kind: str
    lemmas: tuple[str, ...] = ()
    reason: str = ""
    witness: tuple[tuple[Event, ...], tuple[Event, ...]] | None = None  # two runs that differ


def relational_candidates(system: System) -> list[tuple[str, Relation]]:
    """Equalities between the two copies: every field, and every field of the task's CPU
    (slot 0) while the task runs there (in the first copy; ``T.stopped`` equal makes it
    both). Written over a `Domain`, so that they evaluate on concrete pairs of worlds
    (`engines.explore`) as on symbolic ones."""
    out: list[tuple[str, Relation]] = []
    for key in system.layout:

        def same(d: Any, a: dict[str, Any], b: dict[str, Any], k: str = key) -> Any:
            return d.eq(a[k], b[k])

        out.append((f"same {key}", same))
        if key.startswith("cpu0."):  # the task only ever runs in slot 0

            def runs_there(d: Any, a: dict[str, Any], b: dict[str, Any], k: str = key) -> Any:
                return d.or_(a["T.stopped"], d.eq(a[k], b[k]))

            out.append((f"same {key} while the task runs there", runs_there))
    return out


def explored(
    system: System, cands: list[tuple[str, Relation]], observe: Sequence[str] = (),
    deadline_ms: Callable[[], int] | None = None,
) -> tuple[set[str], tuple[tuple[Event, ...], tuple[Event, ...]] | None]:  # fmt: skip
    """The candidates that no explored pair of reachable worlds falsifies
    (`engines.explore`), which the relational search starts from; and the events of the
    first explored pair that differs in an *observe*d field, if any (then noninterference
    fails, and no proof is worth trying). Once *deadline_ms* gives 0 it stops early: fewer
    candidates dropped (the solver still checks every one) and maybe no pair."""
    by_name = dict(cands)
    alive = [n for n, _ in cands]
    for a, b, first, second in explore.pair_walks(system, _FREE_OTHER):
        if deadline_ms is not None and deadline_ms() <= 0:
            break
        if observe:
            view_a, view_b = view(system.conc, a, observe), view(system.conc, b, observe)
            if any(view_a[f] != view_b[f] for f in observe):
                return set(alive), (first, second)
        alive = [n for n in alive if by_name[n](CONCRETE, a, b)]
    return set(alive), None


def _group_step(
    system: System, group: tuple[int, ...], a: dict[str, Any], b: dict[str, Any], tag: str
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(constraint, successor of a, successor of b) for one step of the product in *group*.

    Both copies take the same event with the same parameters, except that when both take
    a yield in which the other task may act freely, those actions may differ.
    """
    _, pa, opa = _copy(system, 0, f"{tag}a")
    _, pb, opb = _copy(system, 0, f"{tag}b")
    if len(group) == 1:
        i = group[0]
        cons = system.param_constraint(pa, z3.BitVecVal(i, system.op_width))
        return cons, system.variant_successor(i, a, pa), system.variant_successor(i, b, pa)
    free = [i for i in group if system.variants[i].name in _FREE_OTHER]
    same = z3.And(opa == opb, *[pa[n] == pb[n] for n in PARAMS])
    both_free = z3.And(z3.Or([opa == i for i in free]), z3.Or([opb == i for i in free]))
    cons = z3.And(
        system.group_constraint(group, pa, opa), system.group_constraint(group, pb, opb),
        z3.Or(same, both_free),
    )  # fmt: skip
    na = system.group_successor(group, a, pa, opa)
    return cons, na, system.group_successor(group, b, pb, opb)


def prove(
    system: System, inv: Invariant, lemmas: Callable[[dict[str, Any]], Any],
    deadline_ms: Callable[[], int], *, solver: str = "auto", start: Iterable[str] | None = None,
) -> NiProof:  # fmt: skip
    """Relational Houdini (from *start*'s names if given), then the implication.

    Without *start*, the candidates that a concrete exploration of the product falsifies
    (`explored`) are dropped first. Then each query is over worlds that share the fields
    the current candidates make equal (`_shared`), in a solver made for exactly the
    current candidates (fresh per query for the shared yields' group, which asks one
    candidate at a time, `_drop_each`; one for all the one-variant groups, each asking
    under its own assumptions), and a counterexample to induction drops the candidates it
    breaks. The search ends when every group has been
    checked, in a solver made for exactly the surviving set (a group checked before a
    later drop is checked again), so it is the re-check of the inductive invariant too.
    """
    d = system.d
    cands = relational_candidates(system)
    by_name = dict(cands)
    alive = {n for n, _ in cands}  # both copies start from the same world: all hold
    if start is not None:
        alive &= set(start)
    else:
        alive, witness = explored(system, cands, inv.observe, deadline_ms)
        if witness is not None:
            return NiProof("not-proved", reason="two explored runs observe different values",
                           witness=witness)  # fmt: skip
    # Cheap groups first, and back to the first after every drop: each query of a
    # one-variant group takes a fraction of a second, the shared yields' group seconds, so
    # the yields are checked again only once every cheaper group keeps the current set.
    # A cheap group that dropped candidates is asked again at once: its next
    # counterexample to induction often drops more (linux-4.6's TLS entries), and the other
    # cheap groups are then checked once with what remains instead of once per drop
    # (4.6 / intel: 19 s -> 17 s). After a drop by the yields' group and its probes (below),
    # the cheap groups are asked first: what they drop then is gone before the yields' next
    # whole (fresh) query (4.6 / intel: one yields query fewer, 20.6 s -> 19.5 s).
    groups = sorted(system.groups(), key=len)
    steps: dict[int, tuple[Any, dict[str, Any], dict[str, Any]]] = {}  # built once per group
    ta, _, _ = _copy(system, 0, "ta")
    tb, _, _ = _copy(system, 0, "tb")
    verified: list[frozenset[str]] = [frozenset()] * len(groups)  # what each group kept
    gi: int | None = 0 if groups else None
    # The one-variant groups of one candidate set share a solver (each asks under its own
    # assumptions): their queries are small, and the lemmas and candidates, asserted once,
    # were most of each one's time. The solver is new for every candidate set, so a group
    # checked there is checked with exactly that set, as in a fresh solver of its own.
    cheap: tuple[frozenset[str], Solver] | None = None
    # After a drop by the yields' group, it is asked again at once, but only for the other
    # tasks' and the other CPU's candidates (`_task_last`): those are the ones a yield
    # breaks, each a quick answer asked alone, so a chain of such drops (linux-4.6's TLS
    # slots) no longer costs a sweep of the cheap groups each. A probe that drops nothing
    # checks nothing: the group is asked whole, after the cheap groups, as before.
    probe = False
    while gi is not None:
        names = tuple(n for n, _ in cands if n in alive)
        a, b = _shared(system, names)
        if gi not in steps:
            steps[gi] = _group_step(system, groups[gi], ta, tb, "")
        cons, na, nb = _substituted(steps[gi], ta, tb, a, b)
        post = {n: by_name[n](d, na, nb) for n in names}
        if len(groups[gi]) == 1:
            if cheap is None or cheap[0] != frozenset(alive):
                shared = Solver(solver)
                shared.add(lemmas(a), lemmas(b), *[by_name[n](d, a, b) for n in names])
                cheap = (frozenset(alive), shared)
            dropped = _drop(cheap[1], post, names, alive, deadline_ms, cons)
        else:
            check = Solver(solver)
            check.add(lemmas(a), lemmas(b), cons, *[by_name[n](d, a, b) for n in names])
            order = sorted(names, key=_task_last)
            if probe:  # only the candidates a yield breaks: quick, sat or unsat
                order = [n for n in order if not _task_last(n)]
            dropped = _drop_each(check, post, order, alive, deadline_ms)
        if isinstance(dropped, NiProof):
            return dropped
        if not dropped and not probe:
            verified[gi] = frozenset(alive)
        if len(groups[gi]) > 1:
            probe = dropped  # after a drop, its other tasks' candidates again, at once
        if not dropped or (len(groups[gi]) > 1 and not probe):
            gi = next((g for g, v in enumerate(verified) if v != alive), None)
    names = tuple(n for n, _ in cands if n in alive)
    return _implied(system, inv, cands, names, lemmas, deadline_ms, solver)


def _substituted(
    step: tuple[Any, dict[str, Any], dict[str, Any]], ta: dict[str, Any], tb: dict[str, Any],
    a: dict[str, Any], b: dict[str, Any],
) -> tuple[Any, dict[str, Any], dict[str, Any]]:  # fmt: skip
    """A product step built over the template worlds *ta*, *tb*, for the worlds *a*, *b*."""
    cons, na, nb = step
    pairs = [(ta[k], a[k]) for k in ta] + [(tb[k], b[k]) for k in tb]
    terms = {"cons": cons, **{f"a{k}": v for k, v in na.items()},
             **{f"b{k}": v for k, v in nb.items()}}  # fmt: skip
    out = substitute_many(terms, pairs)
    return out["cons"], {k: out[f"a{k}"] for k in na}, {k: out[f"b{k}"] for k in nb}


def _drop(
    check: Solver, post: dict[str, Any], live: Sequence[str], alive: set[str],
    deadline_ms: Callable[[], int], *assumptions: Any,
) -> bool | NiProof:  # fmt: skip
    """One induction check of the *live* candidates (under *assumptions* too): False if
    the step keeps them all, else True after removing from *alive* those a counterexample
    falsifies (or an ``unknown`` proof saying why it stopped)."""
    bad = z3.Not(z3.And([post[n] for n in live])) if live else z3.BoolVal(False)
    answer = check.check(*assumptions, bad, deadline=deadline_ms)
    if answer.result == "unsat":
        return False
    if answer.result == "unknown":
        return NiProof("unknown", reason=f"relational lemma search: {answer.reason}")
    model = check.model()
    falsified = {n for n in live if not model.is_true(post[n])}
    if not falsified:  # the model satisfies `bad`, so one must be false: never loop on it
        return NiProof("unknown", reason="relational lemma search: the solver's model "
                       "falsifies no candidate (a bug in fsgs-smt or the solver)")  # fmt: skip
    alive -= falsified
    return True


def _task_last(name: str) -> bool:
    """The order `_drop_each` asks the yields' candidates in: the other tasks' fields and
    the other CPU's first (a yield is where the copies' other tasks act differently, so
    those are the ones a yield breaks, and asked alone a broken one is a quick sat
    answer), then the task's own and its CPU's (restored by the switch back: unsat, and
    the slow ones, fs_base and gs_base, up to 2 s each)."""
    return "same T." in name or "cpu0." in name


def _drop_each(
    check: Solver, post: dict[str, Any], live: Sequence[str], alive: set[str],
    deadline_ms: Callable[[], int],
) -> bool | NiProof:  # fmt: skip
    """`_drop`, one candidate at a time: each *live* candidate's successor is asked on its
    own, and once unsat it is asserted (it follows from what the solver holds), so that the
    next ones are asked knowing it. The first counterexample drops every candidate it
    falsifies, as `_drop` does. Over the yields' group this is quicker than one query of
    the whole conjunction (linux-5.9 / intel, the last one: 5.4 s -> 3.8 s): each query
    needs only its own candidate's part of the step."""
    for n in live:
        dropped = _drop(check, post, [n], alive, deadline_ms)
        if dropped is not False:
            if dropped is True:  # the model may falsify more than the candidate asked
                model = check.model()
                alive -= {m for m in live if not model.is_true(post[m])}
            return dropped
        check.add(post[n])
    return False


def _shared(system: System, names: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two worlds *a* and *b* in which every field that a ``same K`` lemma of *names*
    makes equal is the same variable: assuming the equality, and writing it so that the
    two copies' terms coincide (z3 shares them), which the solvers handle far better."""
    a, _, _ = _copy(system, 0, "a")
    b, _, _ = _copy(system, 0, "b")
    same = {n.removeprefix("same ") for n in names if n.startswith("same ") and " " not in n[5:]}
    return a, {k: a[k] if k in same else v for k, v in b.items()}


def _implied(
    system: System, inv: Invariant, cands: list[tuple[str, Relation]], names: tuple[str, ...],
    lemmas: Callable[[dict[str, Any]], Any], deadline_ms: Callable[[], int], solver: str,
) -> NiProof:  # fmt: skip
    """Do the inductive relational lemmas *names* imply equal observations? (twice)"""
    d = system.d
    a, b = _shared(system, names)
    view_a, view_b = view(system.sem, a, inv.observe), view(system.sem, b, inv.observe)
    differ = z3.Or([view_a[f] != view_b[f] for f in inv.observe])
    by_name = dict(cands)
    for seed in (0, 1):  # the implication, found and then re-checked in a fresh solver
        check = Solver(solver, seed=seed)
        check.add(lemmas(a), lemmas(b), *[by_name[n](d, a, b) for n in names])
        answer = check.check(differ, deadline=deadline_ms)
        if answer.result == "sat":
            return NiProof("not-proved", names, "the relational lemmas do not imply it")
        if answer.result == "unknown":
            return NiProof("unknown", reason=f"relational implication: {answer.reason}")
    return NiProof("proved", names)
