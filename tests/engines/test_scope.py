"""The small-scope search (`explore.scope_runs`, `pipeline.small_scope`): runs of simple
events tried on the concrete semantics before each depth's satisfiable query. What it finds
must be what the solver alone finds (a violation at the same, shortest depth) and must
replay on the simulator; where an invariant is proved, it must find nothing."""

from __future__ import annotations

import itertools
from functools import cache

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgs_smt import pipeline
from fsgs_smt.encode.property import Property, instantiate
from fsgs_smt.encode.system import PARAMS, System, other_actions
from fsgs_smt.engines import explore
from fsgs_smt.engines.kind import Deadline, Witness
from fsgs_smt.engines.portfolio import can_race, race
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import Options, check, evaluate, judge, replay, small_scope
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import MovSeg, Seg, Trace, Yield
from fsgs_smt.semantics.props import view
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.sim import simulate

INVS = {i.id: i for i in select_invariants(None, [])}
BMC = Options(engine="bmc", depth=4, timeout=600.0)


@cache
def _system(policy: str = "linux-4.13", cpu: str = "intel", ldt_slots: int = 2) -> System:
    return System(load_checked(policy), CPU_MODELS[cpu], Bounds(ncpus=2, ldt_slots=ldt_slots))


@pytest.mark.parametrize("ldt_slots", [1, 2])
def test_the_alphabet_is_inside_the_step_constraint_of_every_variant(ldt_slots: int) -> None:
    """Each event of the alphabet is one the encoding's steps can take (so a run of them is
    a run of the symbolic system, and "shortest" means the same for both searches)."""
    system = _system(ldt_slots=ldt_slots)
    p = system.params(0)
    alphabet = explore.scope_alphabet(system)
    for i, values in alphabet:
        assert set(values) == set(PARAMS)
        cons = system.param_constraint(p, z3.BitVecVal(i, system.op_width))
        pairs = [(p[n], z3.BitVecVal(v, PARAMS[n])) for n, v in values.items()]
        assert z3.is_true(z3.simplify(z3.substitute(cons, *pairs))), (i, values)
    events = [system.variants[i].build(v) for i, v in alphabet]
    assert len(events) == len(set(events))  # each distinct event once
    assert {v.name for v in system.variants} == {system.variants[i].name for i, _ in alphabet}


def test_runs_come_simplest_first_and_each_world_once() -> None:
    """Runs of exactly k events, by nondecreasing sum of the events' places in the alphabet,
    and no two ending in the same world."""
    system = _system()
    place = {
        system.variants[i].build(v): n for n, (i, v) in enumerate(explore.scope_alphabet(system))
    }
    runs = list(explore.scope_runs(system, 2, 2000))
    fewer = list(explore.scope_runs(system, 2, 1000))  # skipped runs count towards the limit
    sums = [sum(place[e] for e in events) for events, _ in runs]
    assert all(len(events) == 2 for events, _ in runs)
    assert sums == sorted(sums)
    keys = [explore.world_key(world) for _, world in runs]
    assert len(keys) == len(set(keys))
    assert 0 < len(fewer) < len(runs) < 1000
    assert fewer == runs[: len(fewer)]


def test_a_run_ends_in_the_world_the_simulator_reaches() -> None:
    """The search steps `System.conc` with remembered prefixes; the simulator, running each
    trace from scratch, sees the same task."""
    system = _system()
    sem = system.conc
    for events, world in itertools.islice(explore.scope_runs(system, 2), 0, 400, 13):
        run = simulate(system.policy, Trace(events=events), system.model, ncpus=2)
        assert view(sem, run.worlds[-1]) == view(sem, world), events


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_judge_on_a_world_agrees_with_evaluate_on_the_trace(data: st.DataObject) -> None:
    """The search's verdict (`judge` on the worlds `System.conc` reaches, stepped from a
    remembered world) is the simulator's re-check (`evaluate`: the trace run from scratch
    by `simulate`, its worlds judged): the two ways of running a trace agree."""
    system = _system()
    alphabet = [system.variants[i].build(v) for i, v in explore.scope_alphabet(system)]
    inv = INVS[data.draw(st.sampled_from(
        ["Q1a", "Q2a", "Q3", "fork-inherits", "arch-get-reports-live",
         "kernel-never-loads-noncanonical"]))]  # fmt: skip
    prefix = data.draw(st.lists(st.sampled_from(alphabet), max_size=3))
    assert not inv.params  # these invariants have no parameters to substitute
    nothing = (len(other_actions()),) * len(inv.events)  # an ``other: any`` yield: no action
    own = instantiate(inv.events, {}, {}, nothing) if inv.kind == "transition" else []
    world = system.initial_world()
    for event in prefix:
        world = system.conc.step(world, event).world
    after, results = world, []
    for event in own:
        out = system.conc.step(after, event)
        after, results = out.world, [*results, out.result]
    held, _ = judge(system.conc, inv, world, results, after, {})
    again, _ = evaluate(system.policy, inv, system.model, Options(), [*prefix, *own], {},
                        len(prefix))  # fmt: skip
    assert held == again


@pytest.mark.parametrize(
    ("policy", "inv"),
    [("linux-4.6", "Q1b"), ("linux-5.9", "ptrace-roundtrip-accepted")],
)  # fmt: skip
def test_the_search_finds_the_solvers_depth_and_the_trace_replays(policy: str, inv: str) -> None:
    """With and without the small-scope search: VIOLATED at one depth; the search's trace
    breaks the invariant on the simulator and says how it was found."""
    pol, intel = load_checked(policy), CPU_MODELS["intel"]
    pipeline._PREFIXES.clear()
    solver = check(pol, INVS[inv], intel, Options(engine="bmc", depth=4, small_scope=False))
    pipeline._PREFIXES.clear()  # nothing remembered: the search or the solver
    scoped = check(pol, INVS[inv], intel, BMC)

    assert (Status.VIOLATED, solver.depth) == (scoped.status, scoped.depth)
    assert "found" not in solver.details
    assert str(scoped.details["found"]).startswith("the small-scope search")
    events, params = list(scoped.trace), scoped.details["params"]
    assert isinstance(params, dict)
    ok, why = replay(pol, INVS[inv], intel, BMC, events, params, scoped.depth)
    assert ok, why


@pytest.mark.parametrize(
    "inv", ["Q1a", "Q2b", "selftest-set-gs-and-switch-to", "kernel-never-loads-noncanonical"]
)
def test_where_an_invariant_is_proved_the_search_finds_nothing(inv: str) -> None:
    """linux-5.9 on intel keeps these (recorded PROVED): every candidate the search judges
    up to depth 2 (parameters, a state invariant, a transition one) keeps them too."""
    system = _system("linux-5.9")
    find = small_scope(system, Property(system, INVS[inv]), 2)
    assert [None, None, None] == [find(k) for k in range(3)]


def test_the_search_stops_at_its_budget_and_its_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Q2a on linux-4.13 is broken by a run of two events; with one candidate or ten runs
    allowed per depth, a depth bound of one, or a spent deadline, the search gives up (and
    the solver answers, or says unknown once the deadline is spent)."""
    system = _system()
    prop = Property(system, INVS["Q2a"])
    assert small_scope(system, prop, 2)(2) is not None
    monkeypatch.setattr(pipeline, "SCOPE_TRIES", 1)
    assert small_scope(system, prop, 2)(2) is None
    monkeypatch.setattr(pipeline, "SCOPE_TRIES", 1000)
    monkeypatch.setattr(pipeline, "SCOPE_RUNS", 10)
    assert small_scope(system, prop, 2)(2) is None
    monkeypatch.setattr(pipeline, "SCOPE_RUNS", 1500)
    assert small_scope(system, prop, 2, Deadline(0.0))(2) is None  # the deadline is spent
    assert small_scope(system, prop, 2, Deadline(600.0))(2) is not None
    monkeypatch.setattr(pipeline, "SCOPE_MAX_DEPTH", 1)
    assert small_scope(system, prop, 2)(2) is None


def test_the_race_brings_a_witness_back_from_the_first_racer() -> None:
    """`race` gives *known* to its first racer: a witness at depth 1 (Q1a has none at 0,
    and no racer can find one at 1 by itself: linux-4.13's shortest is 2) comes back from
    that process as it was made."""
    if not can_race():
        pytest.skip("no fork or a single CPU: the pipeline does not race here")
    system = _system()
    prop = Property(system, INVS["Q1a"])
    witness: Witness = ((MovSeg(seg=Seg.GS, selector=1), Yield()), {}, "a test")
    asked: list[int] = []

    def known(k: int) -> Witness | None:
        asked.append(k)  # in the child: the parent's list stays empty
        return witness if k == 1 else None

    found = race(system, prop, Deadline(600.0), [("bitwuzla", True), ("bitwuzla", False)],
                 4, induction=False, known=known)  # fmt: skip
    assert ("violated", 1, witness) == (found.kind, found.depth, found.witness)
    assert [] == asked
