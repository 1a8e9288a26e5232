"""The noninterference product: its candidates and its steps (the proofs themselves are in
proofs/ and re-checked by `fsgs-smt check`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import z3

from fsgs_smt import proofs as pr
from fsgs_smt.encode.system import PARAMS, System
from fsgs_smt.engines import ni
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.pipeline import Options, lemmas_for, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.state import Bounds

ROOT = Path(__file__).resolve().parents[2]


@cache
def _system() -> System:
    return System(load_checked("linux-5.9"), CPU_MODELS["intel"], Bounds(ncpus=2, ldt_slots=2))


def test_every_field_has_an_equality_candidate_and_the_task_cpu_a_conditional_one() -> None:
    """The task runs only in CPU slot 0, so only slot 0's fields get "while it runs"."""
    system = _system()
    names = [n for n, _ in ni.relational_candidates(system)]

    assert len(names) == len(set(names))
    assert {f"same {k}" for k in system.layout} <= set(names)
    cpu_keys = [k for k in system.layout if k.startswith("cpu0.")]
    assert {f"same {k} while the task runs there" for k in cpu_keys} <= set(names)
    assert len(names) == len(system.layout) + len(cpu_keys)


def _values(system: System, world: dict[str, int | bool], s: dict[str, z3.ExprRef]) -> list:
    """*s* equals the concrete *world*."""
    out = []
    for k, v in world.items():
        width = system.layout[k]
        out.append(s[k] == (z3.BoolVal(bool(v)) if width == 0 else z3.BitVecVal(int(v), width)))
    return out


def test_a_product_step_outside_the_free_yields_is_the_same_event_in_both_copies() -> None:
    """From equal worlds, every single-variant group gives equal successors (same params)."""
    system = _system()
    a = {k: system.d.var(f"{k}@ta", w) for k, w in system.layout.items()}
    b = {k: system.d.var(f"{k}@tb", w) for k, w in system.layout.items()}
    world = system.conc.initial_world()
    for group in system.groups()[1:]:
        cons, na, nb = ni._group_step(system, group, a, b, "t")
        solver = z3.Solver()
        solver.add(*_values(system, world, a), *_values(system, world, b), cons)
        solver.add(z3.Or([na[k] != nb[k] for k in system.layout]))

        assert solver.check() == z3.unsat, system.variants[group[0]].name


def test_free_yields_may_differ_in_what_the_other_task_does() -> None:
    """In the shared group, the two copies' other tasks can end up different, and the same
    parameters are forced when one copy does not take a free yield."""
    system = _system()
    a = {k: system.d.var(f"{k}@ua", w) for k, w in system.layout.items()}
    b = {k: system.d.var(f"{k}@ub", w) for k, w in system.layout.items()}
    world = system.conc.initial_world()
    shared = system.groups()[0]
    cons, na, nb = ni._group_step(system, shared, a, b, "u")
    solver = z3.Solver()
    solver.add(*_values(system, world, a), *_values(system, world, b), cons)

    assert solver.check(na["O0.gsbase"] != nb["O0.gsbase"]) == z3.sat
    migrate = next(i for i in shared if system.variants[i].name == "migrate")
    opa = z3.BitVec("op@0ua", system.op_width)
    pa = {n: z3.BitVec(f"{n}@0ua", w) for n, w in PARAMS.items()}
    pb = {n: z3.BitVec(f"{n}@0ub", w) for n, w in PARAMS.items()}
    assert solver.check(opa == migrate, pa["cpu"] != pb["cpu"]) == z3.unsat


def test_shared_worlds_make_the_equal_fields_one_variable() -> None:
    """``same K`` lemmas share K's variable between the copies; conditional ones do not."""
    system = _system()
    a, b = ni._shared(system, ["same T.fsbase", "same cpu0.fs while the task runs there"])

    assert a["T.fsbase"].eq(b["T.fsbase"])
    assert not a["cpu0.fs"].eq(b["cpu0.fs"])
    assert not a["O0.fsbase"].eq(b["O0.fsbase"])


def _recorded() -> tuple[str, ...]:
    recorded = pr.load(pr.path_for(ROOT / "proofs", "linux-5.9"))
    (rec,) = [r for r in recorded.records
              if r.invariant == "no-cross-task-leak" and r.cpu == "intel"]  # fmt: skip
    return rec.lemmas


def test_a_recorded_relational_invariant_is_rechecked_and_a_wrong_hint_dropped() -> None:
    """From the recorded names, the proof is re-checked at once; with a hint added that
    is not inductive (the other tasks of the two copies may set different bases in a
    yield), the search drops it and proves the same."""
    policy = load_checked("linux-5.9")
    options = Options(lemma_hints=_recorded())  # the system lemmas: from the record too
    system = system_for(policy, CPU_MODELS["intel"], options)
    lemmas, why = lemmas_for(system, Deadline(600), options)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    names = {n for n, _ in ni.relational_candidates(system)}
    recorded = [n for n in _recorded() if n in names]

    again = ni.prove(system, inv, lemmas.conj, Deadline(600).left_ms, start=recorded)
    wrong = ni.prove(system, inv, lemmas.conj, Deadline(600).left_ms,
                     start=[*recorded, "same O1.fsbase"])  # fmt: skip

    assert "" == why
    assert ("proved", set(recorded)) == (again.kind, set(again.lemmas))
    assert ("proved", set(recorded)) == (wrong.kind, set(wrong.lemmas))


def test_the_search_from_every_candidate_finds_the_recorded_invariant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The full relational search (the one-variant groups sharing one solver per candidate
    set) ends with the recorded relational invariant; some of its drops happen in that
    shared solver, and the queries after a drop are in a new one."""
    policy = load_checked("linux-5.9")
    options = Options(lemma_hints=_recorded())
    system = system_for(policy, CPU_MODELS["intel"], options)
    lemmas, _ = lemmas_for(system, Deadline(600), options)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    names = {n for n, _ in ni.relational_candidates(system)}
    drops: list[tuple[int, int]] = []  # (id of the solver, how many were dropped)
    real = ni._drop

    def spy(check, post, live, alive, deadline_ms, *assumptions):  # type: ignore[no-untyped-def]
        before = len(alive)
        out = real(check, post, live, alive, deadline_ms, *assumptions)
        if assumptions:  # a one-variant group: its step constraint is an assumption
            drops.append((id(check), before - len(alive)))
        return out

    monkeypatch.setattr(ni, "_drop", spy)
    proof = ni.prove(system, inv, lemmas.conj, Deadline(600).left_ms)

    assert ("proved", {n for n in _recorded() if n in names}) == (proof.kind, set(proof.lemmas))
    dropping = [k for k, (_, n) in enumerate(drops) if n]
    assert dropping, "no one-variant group dropped a candidate: the test lost its point"
    first = dropping[0]
    assert drops[first + 1][0] != drops[first][0]  # a new solver for the new set


def test_a_model_that_falsifies_no_candidate_is_unknown_not_a_loop() -> None:
    """`_drop` on a "sat" answer whose model makes every candidate true (a solver or
    translation bug) says UNKNOWN instead of checking the same set forever."""
    from fsgs_smt.engines.backend import Answer, Model  # noqa: PLC0415

    class Lying:
        def check(self, *_: object, deadline: object = None) -> Answer:
            return Answer("sat")

        def model(self) -> Model:
            return Model(lambda term: z3.BoolVal(True))

    x, y = z3.BitVecs("x y", 8)
    alive = {"same x"}
    out = ni._drop(Lying(), {"same x": x == y}, ["same x"], alive, lambda: 1000)  # type: ignore[arg-type]

    assert isinstance(out, ni.NiProof)
    assert "unknown" == out.kind
    assert {"same x"} == alive


def test_a_pair_of_runs_differs_only_in_free_yields() -> None:
    """`pair_problem` accepts the same events, or yields where the other task does
    different free actions; anything else (its own LDT write, a task event, a length) is
    not a pair of the self-composition."""
    from fsgs_smt.semantics import events as ev  # noqa: PLC0415

    mov = ev.MovSeg(seg=ev.Seg.FS, selector=1)
    other_wr = ev.Yield(other=(ev.WrBase(seg=ev.Seg.FS, value=5),))
    other_arch = ev.Yield(other=(ev.ArchPrctl(code=ev.ArchCode.SET_GS, value=7),))
    ldt = ev.Yield(other=(ev.ModifyLdt(entry=0, desc=ev.UserDesc()),))

    assert "" == ni.pair_problem([mov, other_wr], [mov, ev.Yield()])
    assert "" == ni.pair_problem([mov, other_wr], [mov, other_arch])
    assert "event 1" in ni.pair_problem([mov, ldt], [mov, ev.Yield()])
    assert "event 0" in ni.pair_problem([mov, ev.Yield()], [ev.WrBase(seg=ev.Seg.FS, value=5),
                                                           ev.Yield()])  # fmt: skip
    assert "2 and 1 events" in ni.pair_problem([mov, ev.Yield()], [mov])


def test_the_free_yields_are_exactly_the_free_variants() -> None:
    """`pair_problem`'s notion of a free yield is the product's: every yield variant's event
    is free exactly when its name is in `_FREE_OTHER`."""
    system = _system()
    params = dict.fromkeys(PARAMS, 0)
    for v in system.variants:
        if v.name.startswith("yield"):
            assert ni._free_yield(v.build(params)) == (v.name in ni._FREE_OTHER), v.name


@pytest.mark.parametrize("engine", ["auto", "bmc"])
def test_an_explored_pair_is_shrunk_first_and_the_product_only_rules_out_shorter_ones(
    monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """lutomirski-2016 on amd-legacy: the exploration's 7-event pair (the proof's, or with
    BMC alone, as ``fsgs-smt counterexample`` asks, the same exploration) shrinks on the
    simulator to [mov fs 1, yield] (the other task acting in one copy), so the product BMC
    is asked only for depth 1 (no shorter pair exists) and never for the pair itself: its
    satisfiable depth-2 query took 10 s."""
    from fsgs_smt import pipeline  # noqa: PLC0415
    from fsgs_smt.engines.verdict import Status  # noqa: PLC0415
    from fsgs_smt.semantics import events as ev  # noqa: PLC0415

    depths: list[int] = []
    real = ni.search

    def spy(system, inv, depth, deadline, **kw):  # type: ignore[no-untyped-def]
        depths.append(depth)
        return real(system, inv, depth, deadline, **kw)

    monkeypatch.setattr(ni, "search", spy)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    verdict = pipeline.check(load_checked("lutomirski-2016"), inv, CPU_MODELS["amd-legacy"],
                             Options(engine=engine))  # fmt: skip

    assert (Status.VIOLATED, 2) == (verdict.status, verdict.depth)
    assert [1] == depths
    first, second = list(verdict.trace), list(verdict.details["other_trace"])
    assert "" == ni.pair_problem(first, second)
    assert ev.MovSeg(seg=ev.Seg.FS, selector=1) == first[0] == second[0]
    observed = verdict.details["observed"]
    assert observed[0] != observed[1]


def test_one_candidate_at_a_time_drops_what_the_first_counterexample_falsifies() -> None:
    """`_drop_each` asks each candidate alone, in order: all unsat keeps the set; the first
    sat answer drops every candidate its model falsifies, asked or not, and stops there."""
    from fsgs_smt.engines.backend import Solver  # noqa: PLC0415

    x, y = z3.BitVecs("x y", 8)
    check = Solver("z3")
    check.add(x == 1)
    kept = {"a": x == 1, "b": x + 1 == 2}
    alive = set(kept)
    assert ni._drop_each(check, kept, ["a", "b"], alive, lambda: 10_000) is False
    assert {"a", "b"} == alive

    check = Solver("z3")
    check.add(x == 1)
    post = {"a": x == 1, "b": x == 2, "c": x == 3, "d": y + 0 == y}
    alive = set(post)
    assert ni._drop_each(check, post, ["a", "b", "c", "d"], alive, lambda: 10_000) is True
    assert {"a", "d"} == alive


def test_an_explored_pair_is_reported_even_when_the_product_bmc_runs_out_of_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The exploration's pair replays on the simulator: a product BMC that answers
    unknown (a timeout) does not turn that real violation into UNKNOWN."""
    from fsgs_smt import pipeline  # noqa: PLC0415
    from fsgs_smt.engines.verdict import Status  # noqa: PLC0415

    def timed_out(system, inv, depth, deadline, **kw):  # type: ignore[no-untyped-def]
        return ni.NiSearch("unknown", 0, reason="timeout")

    monkeypatch.setattr(ni, "search", timed_out)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    verdict = pipeline.check(load_checked("linux-4.7"), inv, CPU_MODELS["amd-legacy"],
                             Options())  # fmt: skip

    assert (Status.VIOLATED, 2) == (verdict.status, verdict.depth)
    observed = verdict.details["observed"]
    assert observed[0] != observed[1]


def test_after_a_yields_drop_it_asks_the_other_tasks_candidates_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """linux-4.6 / intel from its recorded relational invariant plus three candidates that
    a yield breaks (the other tasks' TLS slot 2 and the other CPU's copy of it): after the
    yields' group drops one, it is asked again at once for the other tasks' and the other
    CPU's candidates only (no sweep of the cheap groups in between), and the search ends
    with the recorded invariant."""
    recorded = pr.load(pr.path_for(ROOT / "proofs", "linux-4.6"))
    (rec,) = [r for r in recorded.records
              if r.invariant == "no-cross-task-leak" and r.cpu == "intel"]  # fmt: skip
    options = Options(lemma_hints=rec.lemmas)
    system = system_for(load_checked("linux-4.6"), CPU_MODELS["intel"], options)
    lemmas, _ = lemmas_for(system, Deadline(600), options)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    names = {n for n, _ in ni.relational_candidates(system)}
    relational = [n for n in rec.lemmas if n in names]
    broken = ["same O0.tls2", "same O1.tls2", "same cpu1.gdt_tls2"]
    asked: list[tuple[tuple[str, ...], int]] = []  # the yields' group: (asked, dropped)
    real = ni._drop_each

    def spy(check, post, live, alive, deadline_ms):  # type: ignore[no-untyped-def]
        before = len(alive)
        out = real(check, post, live, alive, deadline_ms)
        asked.append((tuple(live), before - len(alive)))
        return out

    monkeypatch.setattr(ni, "_drop_each", spy)
    proof = ni.prove(system, inv, lemmas.conj, Deadline(600).left_ms,
                     start=[*relational, *broken])  # fmt: skip

    assert ("proved", set(relational)) == (proof.kind, set(proof.lemmas))
    first = next(k for k, (_, n) in enumerate(asked) if n)
    probe, _ = asked[first + 1]
    assert probe and not any(ni._task_last(n) for n in probe)
    assert any(ni._task_last(n) for n in asked[-1][0])  # the last ask is whole


def test_the_product_exploration_stops_when_the_time_is_spent() -> None:
    """The pair exploration (2 s on linux-5.9, which drops candidates but finds no pair)
    honours the check's deadline: with none left it drops nothing and finds nothing, and a
    counterexample search of noninterference with a tiny --timeout ends UNKNOWN."""
    from fsgs_smt import pipeline  # noqa: PLC0415
    from fsgs_smt.engines.verdict import Status  # noqa: PLC0415

    system = _system()
    cands = ni.relational_candidates(system)
    spent = ni.explored(system, cands, (), lambda: 0)
    assert ({n for n, _ in cands}, None) == spent
    assert len(ni.explored(system, cands, ())[0]) < len(cands)

    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    verdict = pipeline.check(load_checked("linux-5.9"), inv, CPU_MODELS["intel"],
                             Options(engine="bmc", timeout=0.2))  # fmt: skip
    assert Status.UNKNOWN is verdict.status  # never BOUNDED or PROVED after a timeout
    assert "timeout" in verdict.reason
