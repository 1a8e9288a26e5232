"""Concrete exploration (`fsgs_smt.engines.explore`): its runs are the system's own, and
what it drops is false in a reachable world, so the lemma searches find the same sets."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import z3

from fsgs_smt.encode.system import PARAMS, System
from fsgs_smt.engines import explore, ni
from fsgs_smt.engines.backend import Answer, Solver, _flat
from fsgs_smt.engines.houdini import candidates, houdini, recheck_lemmas
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import Options, check
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import Event, Trace
from fsgs_smt.semantics.props import view
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.sim import simulate

ROOT = Path(__file__).resolve().parents[2]


@cache
def _system(policy: str = "linux-5.9", cpu: str = "intel") -> System:
    return System(load_checked(policy), CPU_MODELS[cpu], Bounds(ncpus=2, ldt_slots=2))


def test_sampled_parameters_satisfy_the_step_constraint_for_every_variant() -> None:
    """Every sample is in the ranges `System.param_constraint` asks of the encoding's steps
    (so each explored world is a world the symbolic system reaches too)."""
    system = _system()
    rng = random.Random(7)  # noqa: S311
    p = system.params(0)
    for i, variant in enumerate(system.variants):
        cons = system.param_constraint(p, z3.BitVecVal(i, system.op_width))
        for _ in range(40):
            values = explore.sample_params(rng, variant.name, system)
            assert set(values) == set(PARAMS)
            pairs = [(p[n], z3.BitVecVal(v, PARAMS[n])) for n, v in values.items()]
            assert z3.is_true(z3.simplify(z3.substitute(cons, *pairs))), (variant.name, values)


def test_a_walk_is_a_trace_the_simulator_replays() -> None:
    """The worlds of a walk are those `simulate` reaches on the same events: the walk is
    the one semantics, not a copy of it."""
    system = _system("linux-4.13")
    rng = random.Random(3)  # noqa: S311
    weights = explore._weights(system)
    events = []
    for _ in range(30):
        (i,) = rng.choices(range(len(system.variants)), weights)
        events.append(system.variants[i].build(
            explore.sample_params(rng, system.variants[i].name, system)))  # fmt: skip
    world = system.initial_world()
    worlds = []
    for event in events:
        world = system.conc.step(world, event).world
        worlds.append(world)
    run = simulate(system.policy, Trace(events=tuple(events)), system.model, ncpus=2)

    # the simulator models more LDT entries; the walk writes only the system's two
    assert [{k: w[k] for k in system.layout} for w in run.worlds] == worlds


def test_walks_start_from_the_initial_world_and_are_reproducible() -> None:
    system = _system()
    first = list(explore.walks(system, count=3, length=5))
    again = list(explore.walks(system, count=3, length=5))

    assert first[0] == system.initial_world()
    assert 1 + 3 * 5 == len(first)
    assert first == again
    assert first != list(explore.walks(system, seed=1, count=3, length=5))


def test_falsified_names_exactly_the_candidates_some_world_breaks() -> None:
    worlds = iter([{"x": 1}, {"x": 2}, {"x": 3}])
    holds = {"x<3": lambda w: w["x"] < 3, "x>0": lambda w: w["x"] > 0,
             "x!=2": lambda w: w["x"] != 2}  # fmt: skip

    out = explore.falsified(list(holds), lambda n, w: holds[n](w), worlds)

    assert {"x<3", "x!=2"} == out


def test_falsified_with_a_key_asks_each_distinct_world_once() -> None:
    """A world seen before is skipped: the candidates are evaluated once per distinct world,
    and what they falsify is the same."""
    worlds = [{"x": 1, "y": 0}, {"y": 0, "x": 1}, {"x": 2, "y": 0}, {"x": 1, "y": 0}]
    calls: list[int] = []

    def holds(name: str, w: dict[str, int]) -> bool:
        calls.append(w["x"])
        return w["x"] != 2 if name == "x!=2" else True

    out = explore.falsified(["x!=2", "true"], holds, iter(worlds), key=explore.world_key)

    assert {"x!=2"} == out
    assert [1, 1, 2, 2] == calls  # two distinct worlds, two candidates each
    assert {"x!=2"} == explore.falsified(["x!=2", "true"], holds, iter(worlds))
    assert 4 + 7 == len(calls)  # without a key: every world, every live candidate


def test_pairs_differ_only_through_what_the_other_task_does() -> None:
    """In every explored pair the task's own view is equal in linux-5.9 (noninterference
    holds there), while the other tasks' state does differ somewhere."""
    system = _system()
    differs = set()
    for a, b, _, _ in explore.pair_walks(system, ni._FREE_OTHER, count=40, length=10):
        for k in ("T.fsbase", "T.gsbase", "T.fsindex", "T.gsindex", "T.cpu", "mm.ldt0"):
            assert a[k] == b[k], k
        differs |= {k for k in a if a[k] != b[k]}

    assert {"O0.fsbase", "O0.gsbase"} <= differs


def test_each_explored_pair_is_what_its_two_runs_reach() -> None:
    """The second copy is stepped only once the copies part (until then it is the first's
    world): each pair is still the worlds that its two runs reach from the start."""
    system = _system()

    def run(events: tuple[Event, ...]) -> dict[str, Any]:
        world = system.initial_world()
        for event in events:
            world = system.conc.step(world, event).world
        return world

    pairs = list(explore.pair_walks(system, ni._FREE_OTHER, count=12, length=8))
    apart = [n for n, (_, _, ea, eb) in enumerate(pairs) if ea != eb]
    assert apart and apart[0] > 1  # some pairs before the copies part, some after
    for a, b, ea, eb in pairs[1::3]:
        assert (run(ea), run(eb)) == (a, b)


@pytest.mark.parametrize("policy", ["linux-5.9", "linux-4.13"])
def test_exploration_keeps_every_relational_lemma_of_the_recorded_proof(policy: str) -> None:
    """What the exploration drops is false in a reachable pair, so no relational lemma of a
    recorded proof is among it; and it does drop the other task's own fields."""
    system = _system(policy)
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    kept, witness = ni.explored(system, ni.relational_candidates(system), inv.observe)
    doc = json.loads((ROOT / "proofs" / f"{policy}.json").read_text())
    (rec,) = [r for r in doc["records"]
              if r["invariant"] == "no-cross-task-leak" and r["cpu"] == "intel"]  # fmt: skip
    recorded = {n for n in rec["lemmas"] if n.startswith("same ")}

    assert witness is None  # noninterference holds for both on intel
    assert recorded
    assert recorded <= kept
    assert "same O0.fsbase" not in kept


def test_exploration_finds_the_leak_of_linux_4_6_on_old_amd() -> None:
    """On a CPU whose null load keeps the base, linux-4.6 leaks the other task's base: some
    explored pair observes different values, and the proof is not attempted."""
    system = _system("linux-4.6", "amd-legacy")
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    cands = ni.relational_candidates(system)

    witness = ni.explored(system, cands, inv.observe)[1]
    assert witness is not None
    first, second = witness
    assert len(first) == len(second) > 0
    runs = [simulate(system.policy, Trace(events=e), system.model, ncpus=2) for e in witness]
    views = [view(system.conc, {k: r.worlds[-1][k] for k in system.layout}) for r in runs]
    assert any(views[0][f] != views[1][f] for f in inv.observe)  # the pair replays and differs
    proof = ni.prove(system, inv, lambda s: z3.BoolVal(True), lambda: 60_000)
    assert ("not-proved", "two explored runs observe different values") == (
        proof.kind, proof.reason)  # fmt: skip
    assert witness == proof.witness


@pytest.mark.parametrize("policy", ["linux-4.13", "lutomirski-2016"])
def test_every_lemma_candidate_means_the_same_on_concrete_and_symbolic_worlds(policy: str) -> None:
    """The candidates are written once over a `Domain`: on explored worlds, and on those
    with some fields changed at random, each one's value on the simulator's domain is the
    z3 term's value with that world substituted."""
    system = _system(policy)
    concrete = candidates(system, system.conc)
    template = system.template_state()
    symbolic = [(n, f(template)) for n, f in candidates(system)]
    seen: dict[str, set[bool]] = {n: set() for n, _ in symbolic}
    d, layout = system.d, system.layout
    rng = random.Random(5)  # noqa: S311
    worlds = list(explore.walks(system, count=30, length=12))[::4]
    # and each with some fields set at random (the meaning must agree on any world)
    worlds += [{k: (rng.random() < 0.5 if layout[k] == 0 else rng.getrandbits(layout[k]))
                if rng.random() < 0.2 else v for k, v in w.items()} for w in worlds]  # fmt: skip
    for world in worlds:
        pairs = [(template[k], d.boolean(bool(v)) if layout[k] == 0 else d.bv(int(v), layout[k]))
                 for k, v in world.items()]  # fmt: skip
        for (name, f), (_, term) in zip(concrete, symbolic, strict=True):
            value = bool(f(world))
            assert value == z3.is_true(z3.simplify(z3.substitute(term, *pairs))), name
            seen[name].add(value)
    assert any(False in v for v in seen.values())  # the comparison saw falsified ones too


def test_houdini_without_exploration_drops_by_solver_and_its_lemmas_recheck() -> None:
    """linux-4.13 drops candidates (its switch does not restore every base). Started from
    every candidate (no exploration), the solver's counterexamples drop them, over several
    candidate sets; the result re-checks, every group in a fresh solver, and exploring
    first gives the same lemmas."""
    system = _system("linux-4.13")
    every = [n for n, _ in candidates(system)]  # a start: no exploration, the solver drops
    lemmas, why = houdini(system, lambda: 600_000, start=every)

    assert "" == why
    assert "stopped task restores its saved fs base" not in lemmas.names
    assert lemmas.sets > 1
    assert "" == recheck_lemmas(system, lemmas, lambda: 600_000)
    assert lemmas.names == houdini(system, lambda: 600_000)[0].names


def test_houdini_asks_each_group_last_with_exactly_the_final_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The search's last pass is the re-check: after the last drop, every group is asked
    once, unsatisfiably, in a solver made after that drop that holds exactly the
    surviving lemmas (the cheap groups' shared one; the yields' own, with its constraint)."""
    system = _system("linux-4.13")
    every = [n for n, _ in candidates(system)]
    asserted: dict[int, int] = {}
    asked: list[tuple[int, str]] = []
    alive: list[Solver] = []  # kept, so that no solver's id is reused
    original_add, original_check = Solver.add, Solver.check

    def add(self: Solver, *terms: Any) -> None:
        asserted[id(self)] = asserted.get(id(self), 0) + len(list(_flat(terms)))
        alive.append(self)
        original_add(self, *terms)

    def check(self: Solver, *assumptions: Any, deadline: Any = None) -> Answer:
        answer = original_check(self, *assumptions, deadline=deadline)
        asked.append((id(self), answer.result))
        return answer

    monkeypatch.setattr(Solver, "add", add)
    monkeypatch.setattr(Solver, "check", check)
    lemmas, why = houdini(system, lambda: 600_000, start=every)

    assert "" == why
    assert lemmas.sets > 1  # it dropped some
    last_drop = max(i for i, (_, result) in enumerate(asked) if result == "sat")
    after = asked[last_drop + 1 :]
    assert len(system.groups()) == len(after)
    assert all(result == "unsat" for _, result in after)
    solvers = sorted({sid for sid, _ in after}, key=lambda sid: asserted[sid])
    assert [len(lemmas.names), len(lemmas.names) + 1] == [asserted[sid] for sid in solvers]
    assert all(sid not in {s for s, _ in asked[: last_drop + 1]} for sid in solvers)


def test_an_explored_leak_beyond_the_product_bmc_depth_is_still_violated() -> None:
    """With the product BMC limited to depth 0 (where both copies are equal), the pair the
    exploration found is the counterexample: shrunk, replayed, VIOLATED, never BOUNDED."""
    (inv,) = select_invariants(None, ["no-cross-task-leak"])
    policy = load_checked("linux-4.6")

    verdict = check(policy, inv, CPU_MODELS["amd-legacy"], Options(depth=0))

    assert Status.VIOLATED == verdict.status
    first, second = verdict.trace, verdict.details["other_trace"]
    assert first and len(first) == len(second) == verdict.depth
    assert "" == ni.pair_problem(first, second)
    observed = verdict.details["observed"]
    assert observed[0] != observed[1]


@pytest.mark.parametrize(
    "only", [("fs", "fs_base", "gs", "gs_base"), ("gs_table",), ("tls2", "kgs_ok")]
)
def test_a_partial_view_has_the_full_views_values(only: tuple[str, ...]) -> None:
    """`view(..., only)` gives what the full view gives for those fields, on explored
    worlds concretely and on a symbolic world term for term."""
    system = _system("linux-4.13", "amd-legacy")
    for world in list(explore.walks(system, count=5, length=8)):
        full, part = view(system.conc, world), view(system.conc, world, only)
        assert {f: full[f] for f in only} == {f: part[f] for f in only}
    s = system.state(0)
    full, part = view(system.sem, s), view(system.sem, s, only)
    assert all(z3.eq(full[f], part[f]) for f in only)
