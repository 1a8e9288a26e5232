"""BMC without the ``auto`` engine's lemmas (``--engine bmc``, ``counterexample``) asks for
them once its search gets deep enough (`Engine`'s *strengthen_later*: from depth 1 alone,
`pipeline.LEMMAS_DEPTH`, from depth 4 in the counterexample race,
`pipeline.RACE_LEMMAS_DEPTH`) and asserts them in every world from then on, the ones
already unrolled included. The lemmas hold in every reachable world, so no real
counterexample may be lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3

from fsgs_smt import pipeline
from fsgs_smt.encode.property import Property
from fsgs_smt.engines.backend import bitwuzla_available
from fsgs_smt.engines.kind import Deadline, Engine
from fsgs_smt.engines.portfolio import can_race, race
from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.pipeline import LEMMAS_DEPTH, RACE_LEMMAS_DEPTH, Options, check, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import Trace
from fsgs_smt.semantics.props import view
from fsgs_smt.sim import bounds_for, make_semantics, simulate

AT = 3  # the depth the engine tests ask for the lemmas at

# Four different events are needed to reach such a world (both selectors loaded, then both
# bases written): the shortest counterexample is exactly as deep as the lemmas come in.
DEEP = """\
fsgs-invariants: 1
invariants:
  - id: deep
    statement: "No running task has FS = 0x2b with base 1 and GS = 0x2b with base 2."
    source: "a test of the late lemmas"
    always: "!(fs == 0x2b && fs_base == 1 && gs == 0x2b && gs_base == 2 && !stopped)"
"""


def _engine(invariant: str, later: Any, at: int = AT) -> tuple[Engine, Any]:
    policy = load_checked("linux-5.9")
    system = system_for(policy, CPU_MODELS["intel"], Options())
    (inv,) = select_invariants(None, [invariant])
    engine = Engine(system, Property(system, inv), Deadline(600), strengthen_later=(at, later))
    return engine, system


def test_the_lemmas_are_asked_for_once_at_their_depth_and_asserted_in_every_world() -> None:
    """Not before their depth; there, once, and then in worlds 1..k (the initial
    world is fixed) and in every world unrolled later."""
    calls: list[int] = []
    strengthened: list[str] = []

    def lemma(world: dict[str, Any]) -> Any:  # a true fact, tagged by the world it is about
        strengthened.append(str(world["T.fsbase"]))
        return z3.BoolVal(True)

    def later() -> Any:
        calls.append(1)
        return lemma

    engine, system = _engine("kernel-never-loads-noncanonical", later)
    for k in range(AT):
        assert "bounded" == engine.base_case(k).kind
    assert [] == calls and [] == strengthened
    assert "bounded" == engine.base_case(AT).kind
    assert [1] == calls and AT == engine.strengthened_at
    worlds = [str(system.state(t)["T.fsbase"]) for t in range(1, AT + 2)]
    assert worlds[:-1] == strengthened
    found = engine.run(AT + 1, induction=False)
    assert [1] == calls  # asked once
    assert worlds == strengthened  # the next world got it as it was unrolled
    assert ("bounded", AT + 1) == (found.kind, found.depth)
    assert f"lemmas asserted from depth {AT}" in found.reason


def test_no_lemmas_means_the_plain_search_and_k_induction_never_asks() -> None:
    """A provider with no lemmas (Houdini did not finish) leaves the search as it was; a
    k-induction search never asks (its certificate is re-checked without lemmas)."""
    calls: list[int] = []

    def none() -> None:
        calls.append(1)

    engine, _ = _engine("kernel-never-loads-noncanonical", none)
    found = engine.run(AT, induction=False)
    assert [1] == calls and engine.strengthened_at is None
    assert ("bounded", "") == (found.kind, found.reason)

    induct, _ = _engine("kernel-never-loads-noncanonical", none, at=0)
    induct.run(1, induction=True)
    assert [1] == calls and induct.strengthened_at is None


@pytest.mark.parametrize("race", [False, True])
def test_a_counterexample_deeper_than_the_lemmas_is_still_found(tmp_path: Path, race: bool) -> None:
    """With the lemmas asserted (from depth 1 alone, from depth 4 in the race), BMC still
    finds the shortest violation of an invariant that needs four events, and it replays."""
    assert LEMMAS_DEPTH < 4 and RACE_LEMMAS_DEPTH <= 4  # the lemmas are in at depth 4
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP, encoding="utf-8")
    (inv,) = select_invariants(path, [])
    policy = load_checked("linux-5.9")

    verdict = check(policy, inv, CPU_MODELS["intel"],
                    Options(engine="bmc", depth=5, timeout=600, race=race))  # fmt: skip

    assert (Status.VIOLATED, 4) == (verdict.status, verdict.depth)
    run = simulate(policy, Trace(events=verdict.trace, cpu="intel"), CPU_MODELS["intel"])
    sem = make_semantics(policy, CPU_MODELS["intel"], bounds_for(run.trace, 2), None)
    seen = view(sem, run.worlds[-1], ("fs", "fs_base", "gs", "gs_base"))
    assert (0x2B, 1, 0x2B, 2) == (seen["fs"], seen["fs_base"], seen["gs"], seen["gs_base"])


def test_bounded_bmc_says_it_used_the_lemmas() -> None:
    """``--engine bmc`` past the lemmas' depth: BOUNDED, naming the lemmas it relied on."""
    policy = load_checked("linux-5.9")
    (inv,) = select_invariants(None, ["kernel-never-loads-noncanonical"])

    verdict = check(policy, inv, CPU_MODELS["intel"],
                    Options(engine="bmc", depth=2, timeout=600))  # fmt: skip

    assert (Status.BOUNDED, 2) == (verdict.status, verdict.depth)
    assert f"inductive lemmas asserted from depth {LEMMAS_DEPTH}" in verdict.reason


@pytest.mark.skipif(not can_race(), reason="the race needs fork() and at least two CPUs")
def test_the_races_bounded_answer_says_it_used_the_lemmas() -> None:
    """In the split race the first racer asks depths 0 and 2, with the lemmas from 2 on,
    the second depth 1 without: BOUNDED(2), saying from which depth lemmas were relied on
    (the answer is the ledger's, not a racer's, so the racers report it with each depth)."""
    system = system_for(load_checked("linux-5.9"), CPU_MODELS["intel"], Options())
    (inv,) = select_invariants(None, ["kernel-never-loads-noncanonical"])
    prop = Property(system, inv)
    racers = [("bitwuzla" if bitwuzla_available() else "z3", True), ("z3", False)]

    def later() -> Any:
        return lambda world: z3.BoolVal(True)

    plain = race(system, prop, Deadline(600), racers, 2, induction=False, lookahead=True)
    helped = race(system, prop, Deadline(600), racers, 2, induction=False, lookahead=True,
                  strengthen_later=(2, later))  # fmt: skip

    assert ("bounded", 2, "") == (plain.kind, plain.depth, plain.reason)
    assert ("bounded", 2) == (helped.kind, helped.depth)
    assert "the system's inductive lemmas asserted from depth 2" == helped.reason


def test_pdrs_bounded_answer_says_why_there_is_no_proof_and_what_bmc_relied_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--engine pdr``: when Spacer gives no proof (here at once, by a stand-in), BMC goes
    on with the lemmas from depth 1; the BOUNDED verdict keeps both reasons."""
    policy = load_checked("linux-5.9")
    (inv,) = select_invariants(None, ["kernel-never-loads-noncanonical"])

    def no_proof(*_: Any) -> Verdict:
        return Verdict(status=Status.UNKNOWN, depth=0, engine="pdr", reason="spacer: stand-in")

    monkeypatch.setattr(pipeline, "_prove_by_spacer", no_proof)
    verdict = check(policy, inv, CPU_MODELS["intel"], Options(engine="pdr", depth=2, timeout=600))

    assert (Status.BOUNDED, 2) == (verdict.status, verdict.depth)
    assert verdict.reason == (
        f"spacer: stand-in; the system's inductive lemmas asserted from depth {LEMMAS_DEPTH}"
    )
