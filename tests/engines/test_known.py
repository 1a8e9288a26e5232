"""Counterexamples found by replaying an earlier counterexample's events (`pipeline._known`):
the same verdict and depth as the solver's, and nothing that the simulator does not confirm."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from fsgs_smt import pipeline
from fsgs_smt.cli import app
from fsgs_smt.encode.property import Property
from fsgs_smt.engines.kind import Deadline, Engine, Witness
from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.pipeline import Options, check, replay, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.cpu import CPU_MODELS

POLICY = load_checked("linux-4.13")
INTEL = CPU_MODELS["intel"]
# without the small-scope search, which would find these counterexamples before the pool
OPTIONS = Options(engine="bmc", depth=4, timeout=600.0, small_scope=False)
INVS = {i.id: i for i in select_invariants(None, [])}


@pytest.fixture(autouse=True)
def _empty_pool() -> Iterator[None]:
    saved = dict(pipeline._PREFIXES)
    pipeline._PREFIXES.clear()
    yield
    pipeline._PREFIXES.clear()
    pipeline._PREFIXES.update(saved)


def _check(inv: str) -> Verdict:
    return check(POLICY, INVS[inv], INTEL, OPTIONS)


def test_a_later_invariant_reuses_an_earlier_counterexample_with_the_same_verdict() -> None:
    """Q1b after Q1a: found by replaying Q1a's events, at the depth the solver finds alone,
    and the trace replays on the simulator as any counterexample must."""
    alone = _check("Q1b")
    pipeline._PREFIXES.clear()
    _check("Q1a")
    reused = _check("Q1b")

    assert "found" not in alone.details
    assert "found" in reused.details
    assert (Status.VIOLATED, alone.depth) == (reused.status, reused.depth)
    events = list(reused.trace)
    params = reused.details["params"]
    assert isinstance(params, dict)
    ok, why = replay(POLICY, INVS["Q1b"], INTEL, OPTIONS, events, params,
                     len(events) - len(INVS["Q1b"].events))  # fmt: skip
    assert ok, why


def test_remembered_events_that_break_nothing_are_not_a_counterexample() -> None:
    """A pool of events that do not break Q1b leaves the search to the solver."""
    key = pipeline._key(POLICY, INTEL, OPTIONS)
    pipeline._PREFIXES[key] = [(ev.Interrupt(), ev.Interrupt()), (ev.Interrupt(),), ()]

    verdict = _check("Q1b")

    assert (Status.VIOLATED, 2) == (verdict.status, verdict.depth)
    assert "found" not in verdict.details


def test_a_parameter_that_makes_no_run_is_skipped() -> None:
    """Q1b's CPU parameter takes the prefix's numbers too: 0x2b is no CPU of a 2-CPU world,
    so the simulator refuses that candidate (an input error), and the search goes on."""
    key = pipeline._key(POLICY, INTEL, OPTIONS)
    pipeline._PREFIXES[key] = [(ev.MovSeg(seg=ev.Seg.GS, selector=0x2B), ev.Interrupt())]

    verdict = _check("Q1b")

    assert (Status.VIOLATED, 2) == (verdict.status, verdict.depth)


def test_the_engine_asks_for_a_known_violation_only_after_the_shorter_depths() -> None:
    """`Engine.run` asks *known* for depth k only once depths 0..k-1 were unsatisfiable, and
    a witness it gives is the answer at that depth (no query at k)."""
    system = system_for(POLICY, INTEL, OPTIONS)
    asked: list[int] = []
    witness: Witness = ((ev.Interrupt(),), {}, "a test")

    def known(k: int) -> Witness | None:
        asked.append(k)
        return witness if k == 2 else None

    engine = Engine(system, Property(system, INVS["Q1a"]), Deadline(600.0))
    found = engine.run(4, induction=False, known=known)

    assert [0, 1, 2] == asked
    assert ("violated", 2, witness) == (found.kind, found.depth, found.witness)
    assert 0 == engine.base_depth  # one transition unrolled (for depth 1), none for depth 2


def test_prove_json_says_which_counterexample_was_found_by_replaying() -> None:
    """`prove --format json` says how a trace was found without the solver: Q1a by the
    small-scope search, Q1b by replaying Q1a's events (tried first)."""
    result = CliRunner().invoke(
        app, ["prove", "linux-4.13", "-i", "Q1a", "-i", "Q1b", "--cpu", "intel", "--engine",
              "bmc", "--format", "json"],
    )  # fmt: skip

    docs = {d["invariant"]: d for d in json.loads(result.stdout)}
    assert 1 == result.exit_code
    assert docs["Q1a"]["found"].startswith("the small-scope search")
    assert docs["Q1b"]["found"].startswith("an earlier counterexample")
    assert (docs["Q1b"]["verdict"], docs["Q1b"]["depth"]) == ("VIOLATED", 2)
