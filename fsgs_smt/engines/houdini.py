# SPDX-License-Identifier: MIT
"""Strengthening lemmas, generated from the model and the policy, kept only if inductive.

Layer: engines. Imports z3, `encode.system`, `semantics.*`.

Candidates come from the structure of the world and of the policy:

* every base the CPU or a thread holds is canonical; every CPU's kernel GS base is its
  per-CPU base while in user mode; the task's CPU exists; the LDT fits its bound;
* every descriptor in the LDT, the TLS arrays and the GDT TLS slots is zero or a DPL-3
  code/data segment (what fill_ldt() builds); a nonzero selector's hidden descriptor is a
  present DPL-3 code/data segment; the running task's TLS array is in its CPU's GDT, and
  every other CPU's GDT holds the TLS of its other task;
* a thread running with a null selector (0..3) and a saved base of 0 has a live base of 0
  (true on CPUs that clear the base on a null load, under kernels that keep it so);
* from the policy: a stopped task's saved state is what the policy's switch-in would
  restore ("a task that is not running has saved exactly what it would observe"), and
  no kernel #GP has happened.

Houdini removes every candidate that is false initially or not preserved by one step
from a state satisfying all remaining ones; what survives is an inductive invariant.
The candidates are written over a `Domain`, so they also evaluate on concrete worlds:
those that a concrete exploration of reachable worlds falsifies (`engines.explore`) are
dropped before the solver sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import z3

from fsgs_smt.encode.system import System, substitute_many
from fsgs_smt.engines import explore
from fsgs_smt.engines.backend import Solver
from fsgs_smt.semantics import x86
from fsgs_smt.semantics.events import Seg
from fsgs_smt.semantics.state import TASK, Choice, Store, other_task, percpu_base
from fsgs_smt.semantics.step import Semantics

Candidate = tuple[str, Callable[[dict[str, Any]], Any]]
HOUDINI_WALKS = 100


@dataclass(frozen=True, slots=True)
class Lemmas:
    """An inductive invariant: named conjuncts over one world."""

    names: tuple[str, ...]
    build: tuple[Callable[[dict[str, Any]], Any], ...]
    sets: int  # how many candidate sets the search asked about (1 + the drops)
    template: dict[str, Any] | None = None  # a world to build over once, then substitute
    _built: list[Any] = field(default_factory=list, compare=False, repr=False)

    def conj(self, s: dict[str, Any]) -> Any:
        """All lemmas in world *s*."""
        if not self.build:
            return z3.BoolVal(True)
        if self.template is None:
            return z3.And([f(s) for f in self.build])
        if not self._built:  # some lemmas run the policy's hooks: build them only once
            self._built.append(z3.And([f(self.template) for f in self.build]))
        pairs = [(self.template[k], s[k]) for k in self.template]
        return substitute_many({"conj": self._built[0]}, pairs)["conj"]


def _any(d: Any, *terms: Any) -> Any:
    out = d.boolean(False)
    for t in terms:
        out = d.or_(out, t)
    return out


def _all(d: Any, *terms: Any) -> Any:
    out = d.boolean(True)
    for t in terms:
        out = d.and_(out, t)
    return out


def _implies(d: Any, a: Any, b: Any) -> Any:
    return d.or_(d.not_(a), b)


def _desc_ok(d: Any, word: Any) -> Any:
    """Zero, or a DPL-3 code/data descriptor with L = 0 (what fill_ldt() builds)."""
    return d.or_(
        d.eq(word, d.bv(0, 64)),
        _all(d, x86.desc_s(d, word), d.eq(x86.desc_dpl(d, word), d.bv(3, 64)),
             d.eq(d.extract(word, 53, 53), d.bv(0, 1))),
    )  # fmt: skip


Lemma = Callable[[dict[str, Any]], Any]


def _never_kernel(d: Any, key: str) -> Lemma:
    """The selector at *key* is RPL 3, in the LDT, or names no DPL-0 GDT segment (1..3).

    Users can only hold selectors they could load (DPL-3 targets, any RPL), and ptrace
    stores only null or RPL-3 selectors; a kernel (CPL-0) load of one of these never
    succeeds on a DPL-0 segment.
    """

    def lemma(s: dict[str, Any]) -> Any:
        v = s[key]
        index = d.extract(v, 15, 3)
        return _any(
            d, d.eq(d.extract(v, 1, 0), d.bv(3, 2)), d.eq(d.extract(v, 2, 2), d.bv(1, 1)),
            d.not_(_any(d, *[d.eq(index, d.bv(i, 13)) for i in (1, 2, 3)])),
        )  # fmt: skip

    return lemma


def _percpu(d: Any, key: str, slot: int, ncpus: int) -> Lemma:
    """The slot's kernel GS base is its real CPU's per-CPU base."""
    return lambda s: d.eq(s[key], percpu_base(d, s["T.cpu"], slot, ncpus))


def _canonical(d: Any, key: str, va_bits: int) -> Lemma:
    return lambda s: x86.canonical(d, s[key], va_bits)


def _well_formed(d: Any, key: str) -> Lemma:
    return lambda s: _desc_ok(d, s[key])


def _hidden_loadable(d: Any, cpu: str, seg: str) -> Lemma:
    def lemma(s: dict[str, Any]) -> Any:
        desc = s[f"{cpu}.{seg}_desc"]
        return d.or_(
            x86.null_sel(d, s[f"{cpu}.{seg}"]),
            _all(d, x86.desc_s(d, desc), d.eq(x86.desc_dpl(d, desc), d.bv(3, 64)),
                 x86.desc_present(d, desc)),
        )  # fmt: skip

    return lemma


def _gdt_holds(d: Any, cpu: str, c: int, owner: str, *, task_runs_here: bool) -> Lemma:
    def lemma(s: dict[str, Any]) -> Any:
        here = d.boolean(False) if c else d.not_(s["T.stopped"])  # T runs only in slot 0
        cond = here if task_runs_here else d.not_(here)
        same = _all(d, *[d.eq(s[f"{cpu}.gdt_tls{i}"], s[f"{owner}.tls{i}"]) for i in range(3)])
        return _implies(d, cond, same)

    return lemma


def _restores(sem: Semantics, seg: Seg, field: str) -> Lemma:
    """A stopped task's saved *field* is what the policy's switch-in puts in the register."""
    d = sem.d

    def lemma(s: dict[str, Any]) -> Any:
        store = Store(d, s)
        cpu = Choice.one(d, sem.cpus[0])  # the task's CPU and its other task
        other = Choice.one(d, sem.others[0])
        g = s["T.stopped"]
        x86.swapgs(d, store, cpu, g)
        sem.m.run_hook(store, "switch_out", g, threads={"prev": other}, cpu=cpu, current=True)
        threads = {"prev": other, "next": Choice.one(d, TASK)}
        sem.m.run_hook(store, "switch_in", g, threads=threads, cpu=cpu, current=True)
        x86.swapgs(d, store, cpu, g)
        sel_key, base_key = x86.seg_keys(seg)
        live = cpu.read(store, sel_key if field == "index" else base_key)
        return _implies(d, g, d.eq(live, s[f"T.{seg.value}{field}"]))

    return lemma


def candidates(system: System, sem: Semantics | None = None) -> list[Candidate]:
    """The candidate lemmas for *system* (see the module docstring), over the domain of
    *sem* (the system's symbolic semantics by default; `System.conc` evaluates them on
    concrete worlds)."""
    sem = system.sem if sem is None else sem
    d = sem.d
    ncpus = system.bounds.ncpus
    bits = system.model.va_bits
    out: list[Candidate] = [
        ("cpu-exists", lambda s: d.ult(s["T.cpu"], d.bv(ncpus, 8))),
        ("ldt-fits", lambda s: d.ule(s["mm.ldt_n"], d.bv(system.bounds.ldt_slots, 16))),
        ("no-kernel-gp", lambda s: d.not_(s["kernel_gp"])),
        ("stopped-means-running",
         lambda s: _implies(d, s["T.stopped"], d.eq(s["T.status"], d.bv(0, 2)))),
    ]  # fmt: skip
    for c in range(ncpus):
        cpu = f"cpu{c}"
        out.append((f"{cpu}.kernel_gs_base", _percpu(d, f"{cpu}.kernel_gs_base", c, ncpus)))
        for key in ("fs_base", "gs_base"):
            out.append((f"{cpu}.{key} canonical", _canonical(d, f"{cpu}.{key}", bits)))
        for i in range(3):
            out.append((f"{cpu}.gdt_tls{i} well-formed", _well_formed(d, f"{cpu}.gdt_tls{i}")))
        for seg in ("fs", "gs"):
            out.append((f"{cpu}.{seg} hidden descriptor loadable", _hidden_loadable(d, cpu, seg)))
            out.append((f"{cpu}.{seg} never a kernel segment", _never_kernel(d, f"{cpu}.{seg}")))
        out.append((f"{cpu} GDT holds its other task's TLS",
                    _gdt_holds(d, cpu, c, other_task(c), task_runs_here=False)))  # fmt: skip
        if c == 0:  # the task only ever runs in slot 0
            out.append((f"{cpu} GDT holds the task's TLS",
                        _gdt_holds(d, cpu, c, TASK, task_runs_here=True)))  # fmt: skip
    for task in [TASK] + [other_task(c) for c in range(ncpus)]:
        for seg in ("fs", "gs"):
            key = f"{task}.{seg}index"
            out.append((f"{key} never a kernel segment", _never_kernel(d, key)))
        for key in ("fsbase", "gsbase"):
            out.append((f"{task}.{key} canonical", _canonical(d, f"{task}.{key}", bits)))
        for i in range(3):
            out.append((f"{task}.tls{i} well-formed", _well_formed(d, f"{task}.tls{i}")))
    for k in range(system.bounds.ldt_slots):
        out.append((f"mm.ldt{k} well-formed", _well_formed(d, f"mm.ldt{k}")))
    for seg_enum in Seg:
        for part in ("index", "base"):
            name = f"stopped task restores its saved {seg_enum.value} {part}"
            out.append((name, _restores(sem, seg_enum, part)))
    for c in range(ncpus):
        for seg in ("fs", "gs"):
            name = f"cpu{c}.{seg} null with a saved base of 0 has a live base of 0"
            out.append((name, _null_zero(d, c, seg)))
    return out


def _null_zero(d: Any, c: int, seg: str) -> Lemma:
    """The thread running in slot *c* (the task, or the slot's other task) has a live base
    of 0 when its selector is null (0..3) and its saved base is 0: what a kernel that skips the
    reload of two such selectors relies on (Linux 4.7 to 5.8 on CPUs that clear the base
    on a null load: "if we report that the base is zero, it needs to actually be zero")."""

    def lemma(s: dict[str, Any]) -> Any:
        saved = s[f"{other_task(c)}.{seg}base"]
        if c == 0:  # slot 0 is the task's CPU: the task runs there unless stopped
            saved = d.ite(s["T.stopped"], saved, s[f"{TASK}.{seg}base"])
        null = x86.null_sel(d, s[f"cpu{c}.{seg}"])
        zero = d.bv(0, 64)
        return _implies(d, d.and_(null, d.eq(saved, zero)), d.eq(s[f"cpu{c}.{seg}_base"], zero))

    return lemma


def explored(system: System) -> set[str]:
    """The candidate names that no world of a concrete exploration (`engines.explore`)
    falsifies: Houdini starts from these."""
    by_name = dict(candidates(system, system.conc))
    names = list(by_name)
    worlds = explore.walks(system, count=HOUDINI_WALKS)  # some candidates run hooks: fewer
    return set(names) - explore.falsified(
        names, lambda n, w: bool(by_name[n](w)), worlds, key=explore.world_key
    )


def houdini(
    system: System,
    deadline_ms: Callable[[], int],
    *,
    solver: str = "auto",
    start: Iterable[str] | None = None,
) -> tuple[Lemmas, str]:
    """The largest subset of the candidates (or of *start*) that is inductive and true initially.

    Each query asks whether one group of event variants (`System.groups`) can break a
    candidate from a world satisfying all current ones; a counterexample to induction
    drops every candidate it falsifies. The queries of one candidate set are asked in
    solvers made for exactly that set: one shared by the one-variant groups (the lemmas
    asserted once, each group asking under its own assumptions; their queries are small,
    and the lemmas were most of each one's time), and a fresh one for the shared yields'
    group. The cheap groups go first; a cheap group that dropped candidates is asked again
    at once, and after a drop by the expensive group the search goes back to the first
    group not yet checked with the current set, so the expensive group is asked again
    only once every cheap one keeps the set. The search ends when every group has
    been checked with the surviving set in a solver made for it: the search's last pass
    is the fresh re-check of the inductive invariant.

    *start* (names recorded by an earlier run, e.g. in ``proofs/``) only narrows the
    search: the result is inductive whatever it was, and unknown names are ignored.

    Returns the lemmas and "" on success, or an empty set and the reason (a timeout, an
    ``unknown`` answer) if the search could not finish.
    """
    cands = candidates(system)
    init = system.initial()
    alive = {n for n, f in cands if z3.is_true(z3.simplify(f(init)))}
    if start is not None:
        alive &= set(start)
    else:  # what a reachable world falsifies is in no inductive invariant (`explore`)
        alive &= explored(system)
    s, p, op = system.state(0), system.params(0), system.op(0)
    template = system.template_state()
    built = {n: f(template) for n, f in cands}  # some run the policy's hooks: build once

    def at(world: dict[str, Any]) -> dict[str, Any]:
        return substitute_many(built, [(template[k], world[k]) for k in template])

    pre = at(s)
    groups = sorted(system.groups(), key=len)  # the one-variant groups first
    steps: dict[int, tuple[Any, dict[str, Any]]] = {}  # (constraint, post), built once
    verified: list[frozenset[str]] = [frozenset()] * len(groups)  # the set each group kept
    cheap: tuple[frozenset[str], Solver] | None = None
    sets = 1
    gi: int | None = 0 if groups else None
    while gi is not None:
        group = groups[gi]
        if gi not in steps:
            steps[gi] = (system.group_constraint(group, p, op),
                         at(system.group_successor(group, s, p, op)))  # fmt: skip
        cons, post = steps[gi]
        live = sorted(alive)
        bad = z3.Not(z3.And([post[n] for n in live])) if live else z3.BoolVal(False)
        if len(group) == 1:
            if cheap is None or cheap[0] != frozenset(alive):
                cheap = (frozenset(alive), Solver(solver))
                cheap[1].add(*[pre[n] for n in live])
            check = cheap[1]
            answer = check.check(cons, bad, deadline=deadline_ms)
        else:
            check = Solver(solver)
            check.add(cons, *[pre[n] for n in live])
            answer = check.check(bad, deadline=deadline_ms)
        if answer.result == "unknown":
            why = "timeout" if answer.reason == "timeout" else answer.reason
            return Lemmas((), (), sets), f"lemma search: {why}"
        if answer.result == "unsat":
            verified[gi] = frozenset(alive)
        else:
            model = check.model()
            falsified = {n for n in live if not model.is_true(post[n])}
            if not falsified:  # the model satisfies `bad`: one must be false
                return Lemmas((), (), sets), ("lemma search: the solver's model "
                                              "falsifies no candidate")  # fmt: skip
            alive -= falsified
            sets += 1
            if len(group) == 1:  # asked again at once: its next counterexample often
                continue  # drops more, and the others are then asked once for all of it
        gi = next((g for g, v in enumerate(verified) if v != alive), None)
    names = tuple(n for n, _ in cands if n in alive)
    build = tuple(f for n, f in cands if n in alive)
    return Lemmas(names, build, sets, template=system.template_state()), ""


def recheck_lemmas(
    system: System, lemmas: Lemmas, deadline_ms: Callable[[], int], *, solver: str = "auto",
    groups: Iterable[int] | None = None,
) -> str:  # fmt: skip
    """Init => L, and L /\\ T => L' for every group of event variants (or those of
    *groups*, indices into `System.groups`), each in a fresh solver.

    Returns "" when the lemmas re-check, else why not (a failing variant, a timeout).
    """
    if not z3.is_true(z3.simplify(lemmas.conj(system.initial()))):
        return "the lemmas do not hold initially"
    s, p, op = system.state(0), system.params(0), system.op(0)
    every = system.groups()
    for group in every if groups is None else [every[i] for i in groups]:
        check = Solver(solver)
        check.add(system.group_constraint(group, p, op))
        nxt = system.group_successor(group, s, p, op)
        check.add(lemmas.conj(s), z3.Not(lemmas.conj(nxt)))
        answer = check.check(deadline=deadline_ms)
        if answer.result == "sat":
            names = ", ".join(system.variants[i].name for i in group)
            return f"the lemmas are not preserved by {names}"
        if answer.result == "unknown":
            return f"re-checking the lemmas: {answer.reason}"
    return ""
