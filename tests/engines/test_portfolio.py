"""The solver race (`fsgs_smt.engines.portfolio`): the winner's answer and model come back
from its process intact; racers that fail or run out of time make UNKNOWN, never more."""

from __future__ import annotations

import pytest
import z3
from hypothesis import given
from hypothesis import strategies as st

from fsgs_smt.encode.property import Property
from fsgs_smt.engines.backend import Model, Solver, bitwuzla_available
from fsgs_smt.engines.kind import Deadline, Engine, Search
from fsgs_smt.engines.portfolio import Ledger, can_race, race
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import Options, check, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS

requires_race = pytest.mark.skipif(
    not can_race(), reason="the race needs fork() and at least two CPUs"
)
SOLVERS = ["z3", "bitwuzla"] if bitwuzla_available() else ["z3"]
# each solver on the encoding of the first step it races with in the pipeline, and z3 on both
RACERS = (
    [("z3", False), ("bitwuzla", True)] if bitwuzla_available() else [("z3", True), ("z3", False)]
)


def _cell(invariant: str):  # type: ignore[no-untyped-def]
    policy = load_checked("linux-5.9")
    system = system_for(policy, CPU_MODELS["amd-zen3"], Options())
    (inv,) = select_invariants(None, [invariant])
    return policy, system, inv


@pytest.mark.parametrize("backend", SOLVERS)
def test_values_rebuild_the_model(backend: str) -> None:
    """`Solver.values` then `Model.from_values` evaluates as the solver's own model does."""
    x, y = z3.BitVec("x", 64), z3.BitVec("y", 16)
    solver = Solver(backend)
    solver.add(x == 0xFFFF800000001000, z3.ULT(y, 3), y != 0, y != 1)

    assert "sat" == solver.check().result
    rebuilt = Model.from_values(solver.values())
    for term in (x, y, x + 1, z3.Extract(63, 48, x)):
        assert solver.model().as_long(term) == rebuilt.as_long(term)
    assert 0 == Model.from_values({}).as_long(z3.BitVec("never_seen", 8))  # completion


@requires_race
def test_the_race_finds_the_same_shortest_counterexample() -> None:
    """ptrace-roundtrip-accepted is VIOLATED for linux-5.9 at depth 1, with each solver
    alone and in the race; the race's model decodes to a trace the pipeline re-checks."""
    policy, system, inv = _cell("ptrace-roundtrip-accepted")
    alone = Engine(system, Property(system, inv), Deadline(120)).run(3, induction=False)
    raced = race(system, Property(system, inv), Deadline(120), RACERS, 3, induction=False)

    assert ("violated", 1) == (alone.kind, alone.depth)
    assert ("violated", 1) == (raced.kind, raced.depth)
    assert raced.model is not None
    assert len(system.decode(raced.model, 1)) == 1
    verdict = check(policy, inv, CPU_MODELS["amd-zen3"],
                    Options(depth=3, engine="bmc", race=True, timeout=120))  # fmt: skip
    assert (Status.VIOLATED, 1) == (verdict.status, verdict.depth)


@pytest.mark.parametrize("fold", [True, False])
def test_both_encodings_of_the_first_step_find_the_same_shortest_counterexample(
    fold: bool,
) -> None:
    """Q1a on linux-4.13 / intel is VIOLATED first at depth 2, whichever encoding of the
    first step the BMC uses; the decoded trace re-checks through the pipeline."""
    policy = load_checked("linux-4.13")
    system = system_for(policy, CPU_MODELS["intel"], Options())
    (inv,) = select_invariants(None, ["Q1a"])

    found = Engine(system, Property(system, inv), Deadline(120), fold_initial=fold).run(
        3, induction=False)  # fmt: skip

    assert ("violated", 2) == (found.kind, found.depth)
    assert found.model is not None
    assert 2 == len(system.decode(found.model, 2))


@requires_race
def test_a_proof_by_induction_comes_back_from_the_race() -> None:
    """kernel-never-loads-noncanonical on linux-5.9: k-induction, raced, proves or bounds it
    exactly as one solver does (the answer kind crosses the process boundary)."""
    _, system, inv = _cell("kernel-never-loads-noncanonical")
    alone = Engine(system, Property(system, inv), Deadline(120)).run(1, induction=True)
    raced = race(system, Property(system, inv), Deadline(120), RACERS, 1, induction=True)

    assert alone.kind == raced.kind
    assert raced.model is None


@requires_race
def test_failing_racers_make_unknown_with_their_reasons() -> None:
    """A solver that does not exist fails in its process: UNKNOWN, saying why."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")

    racers = [("no-such-solver", True), ("no-such-solver", False)]
    found = race(system, Property(system, inv), Deadline(60), racers, 2, induction=False)

    assert "unknown" == found.kind
    assert found.reason.count("no-such-solver:") == 2


@requires_race
def test_a_spent_deadline_makes_unknown() -> None:
    """No time left: every racer answers unknown (timeout), and so does the race."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")

    found = race(system, Property(system, inv), Deadline(0), RACERS, 2, induction=False)

    assert "unknown" == found.kind
    assert "timeout" in found.reason


@requires_race
@pytest.mark.parametrize(("policy", "cpu", "invariant", "depth"), [
    ("linux-5.9", "amd-zen3", "ptrace-roundtrip-accepted", 1),  # odd: the second racer's
    ("linux-4.13", "intel", "selftest-ptrace-write-gs-read-base", 2),  # even: the first's
])  # fmt: skip
def test_the_split_race_finds_the_sequential_searchs_depth(
    policy: str, cpu: str, invariant: str, depth: int
) -> None:
    """With the racers splitting the depths (even, odd), the race still answers at the
    shortest depth, the one the sequential search finds, and its model decodes."""
    system = system_for(load_checked(policy), CPU_MODELS[cpu], Options())
    (inv,) = select_invariants(None, [invariant])

    raced = race(system, Property(system, inv), Deadline(120), RACERS, 3, induction=False,
                 lookahead=True)  # fmt: skip

    assert ("violated", depth) == (raced.kind, raced.depth)
    assert raced.model is not None
    assert depth == len(system.decode(raced.model, depth))


@requires_race
def test_a_split_violation_waits_for_the_shallower_depths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second racer finds ptrace-roundtrip-accepted broken at depth 1, but depth 0
    cannot be shown clean (its query fails in every process, the first racer's and the
    helper's that the second racer's free core starts): that is no shortest
    counterexample, so the race is UNKNOWN, saying which depth was not shown clean."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")
    real = Engine.base_case

    def refuse_depth_0(self: Engine, k: int) -> Search:
        if k == 0:
            raise RuntimeError("depth 0 refused by the test")
        return real(self, k)

    monkeypatch.setattr(Engine, "base_case", refuse_depth_0)  # the children are forks

    ahead = race(system, Property(system, inv), Deadline(120), RACERS, 3, induction=False,
                 lookahead=True)  # fmt: skip

    assert "unknown" == ahead.kind
    assert ahead.reason.count("depth 0 refused by the test") == 2  # the racer, the helper
    assert "a violation at depth 1, but depth 0 was not shown clean" in ahead.reason


@requires_race
def test_a_racer_with_a_violation_asks_the_depths_its_rival_left() -> None:
    """The first racer fails at once, so nobody asks depth 0 in the split; the second finds
    ptrace-roundtrip-accepted broken at depth 1 and then, its core being free, asks depth 0
    itself: clean, so its violation is the answer, as the sequential search's is."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")
    racers = [("no-such-solver", True), RACERS[-1]]

    ahead = race(system, Property(system, inv), Deadline(120), racers, 3, induction=False,
                 lookahead=True)  # fmt: skip

    assert ("violated", 1) == (ahead.kind, ahead.depth)
    assert ahead.model is not None and 1 == len(system.decode(ahead.model, 1))


@requires_race
def test_the_split_race_is_bounded_once_every_depth_is_clean() -> None:
    """kernel-never-loads-noncanonical holds for linux-5.9: neither racer sees every depth
    (the first asks 0, the second 1), yet together they show both clean, which is
    BOUNDED(1), as the sequential search says."""
    _, system, inv = _cell("kernel-never-loads-noncanonical")
    alone = Engine(system, Property(system, inv), Deadline(120)).run(1, induction=False)

    raced = race(system, Property(system, inv), Deadline(120), RACERS, 1, induction=False,
                 lookahead=True)  # fmt: skip

    assert ("bounded", 1) == (alone.kind, alone.depth)
    assert ("bounded", 1) == (raced.kind, raced.depth)


@requires_race
def test_a_witness_past_a_depth_nobody_cleared_waits_for_the_shorter_one() -> None:
    """The first racer's *known* (the small-scope search) is asked at every depth, the odd
    ones it leaves to the second racer too. Here it names a violation at depth 2 of
    ptrace-roundtrip-accepted, which is no answer while depth 1 is not shown clean. With
    the second racer failing, the first racer's core, free once it has that witness, asks
    depth 1 and finds the shorter violation; with a real second racer, that one finds it.
    Either way the answer is the shortest, the sequential search's, with a model."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")
    prop = Property(system, inv)

    def known(k: int):  # type: ignore[no-untyped-def]
        return ((), {}, "a witness of the test") if k == 2 else None

    failing = [RACERS[0], ("no-such-solver", False)]
    alone = race(system, prop, Deadline(120), failing, 3, induction=False, known=known,
                 lookahead=True)  # fmt: skip
    both = race(system, prop, Deadline(120), RACERS, 3, induction=False, known=known,
                lookahead=True)  # fmt: skip

    for found in (alone, both):
        assert ("violated", 1) == (found.kind, found.depth)
        assert found.witness is None and found.model is not None


def test_a_search_that_skips_depths_reports_each_clean_one_and_refuses_induction() -> None:
    """`Engine.run`'s *only* skips depths (their queries, not their unrolling) and *bounded*
    hears of each depth found clean; skipping depths cannot prove by induction."""
    _, system, inv = _cell("ptrace-roundtrip-accepted")
    prop = Property(system, inv)
    clean: list[int] = []

    found = Engine(system, prop, Deadline(120)).run(
        3, induction=False, only=lambda k: k % 2 == 0, bounded=clean.append
    )
    full: list[int] = []
    shortest = Engine(system, prop, Deadline(120)).run(3, induction=False, bounded=full.append)

    assert ("violated", 1) == (shortest.kind, shortest.depth)
    assert [0] == full
    assert ("violated", 2) == (found.kind, found.depth)  # depth 1 was never asked
    assert [0] == clean
    with pytest.raises(ValueError, match="induction"):
        Engine(system, prop, Deadline(120)).run(2, induction=True, only=lambda k: True)


_REPORTS = st.lists(
    st.tuples(st.sampled_from(["clean", "violation"]), st.integers(0, 6)), max_size=20
)


@given(max_depth=st.integers(0, 5), reports=_REPORTS)
def test_the_ledger_answers_a_violation_only_above_clean_depths(
    max_depth: int, reports: list[tuple[str, int]]
) -> None:
    """Whatever the racers report, in any order: a violation at depth d is the answer only
    once every depth below d was reported clean, and BOUNDED only once every depth was."""
    ledger = Ledger(max_depth)
    clean: set[int] = set()
    for what, k in reports:
        if what == "clean":
            clean.add(k)
            answer = ledger.found_clean(k)
        else:
            answer = ledger.found_violation(Search("violated", k))
        if answer is None:
            continue
        if answer.kind == "violated":
            assert clean.issuperset(range(answer.depth))
        else:
            assert ("bounded", max_depth) == (answer.kind, answer.depth)
            assert clean.issuperset(range(max_depth + 1))
        return


@given(data=st.data(), max_depth=st.integers(0, 5))
def test_truthful_reports_give_the_shortest_violation(data: st.DataObject, max_depth: int) -> None:
    """If the shortest violation is at depth v (none: v = max_depth + 1), racers that
    report only the truth (depths below v clean, violations at v or deeper), in any
    order, get exactly that answer once depth v's violation and the depths below it are
    in: never a deeper violation, never BOUNDED while one exists."""
    v = data.draw(st.integers(0, max_depth + 1), label="shortest")
    cleans = [("clean", k) for k in range(v)] * 2  # each depth maybe from both racers
    deeper = (
        data.draw(st.lists(st.integers(v + 1, max_depth), max_size=3), label="deeper")
        if v < max_depth else []
    )  # fmt: skip
    violations = [("violation", d) for d in [v, *deeper] if d <= max_depth]
    reports = data.draw(st.permutations(cleans + violations), label="order")
    ledger = Ledger(max_depth)
    answer = None
    for what, k in reports:
        answer = (ledger.found_clean(k) if what == "clean"
                  else ledger.found_violation(Search("violated", k)))  # fmt: skip
        if answer is not None:
            break
    assert answer is not None  # everything needed was reported
    if v <= max_depth:
        assert ("violated", v) == (answer.kind, answer.depth)
    else:
        assert ("bounded", max_depth) == (answer.kind, answer.depth)
    assert "" == ledger.unsettled()  # what decided it is not held back


@given(max_depth=st.integers(0, 5), reports=_REPORTS)
def test_the_ledger_is_undecided_exactly_while_a_depth_is_missing(
    max_depth: int, reports: list[tuple[str, int]]
) -> None:
    """`missing` (what a racer with a free core asks next) is empty exactly when the search
    is decided, and names only depths not yet shown clean, below every violation held."""
    ledger = Ledger(max_depth)
    for what, k in reports:
        if what == "clean":
            ledger.found_clean(k)
        elif k <= max_depth:  # an engine reports no violation beyond its bound
            ledger.found_violation(Search("violated", k))
        missing = ledger.missing()
        assert (ledger.settled() is None) == bool(missing)
        assert not set(missing) & ledger.clean
        assert all(d <= max_depth and all(d < v for v in ledger.pending) for d in missing)
        assert missing == sorted(missing)
