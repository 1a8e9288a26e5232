# SPDX-License-Identifier: MIT
"""check(policy, invariant, cpu) -> Verdict: the stages, and the re-checks before any answer.

Layer: pipeline. Imports everything below the CLI; prints nothing.

Soundness rules enforced here:

* a VIOLATED verdict carries a trace that `sim.simulate` (what ``fsgs-smt simulate``
  runs) replays from the default initial world and that breaks the invariant there; if
  the replay does not show the violation the verdict is UNKNOWN, naming the mismatch;
* a PROVED verdict carries a k-induction certificate that was checked again, base and
  step, in fresh solvers;
* an invariant's own ``lemmas`` are claims, never assumptions: PROVED needs them proved as
  well (implied by the inductive invariant that proves it, or k-inductive along with it);
* anything else (timeouts, ``unknown``, a false lemma, no induction) is BOUNDED or UNKNOWN.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fsgs_smt.encode.property import Property
from fsgs_smt.encode.system import System
from fsgs_smt.engines.backend import Answer, Sink, Solver, bitwuzla_available, recording
from fsgs_smt.engines.houdini import Lemmas, houdini
from fsgs_smt.engines.kind import (
    Deadline,
    Engine,
    Known,
    Search,
    Strengthening,
    Witness,
    recheck_certificate,
)
from fsgs_smt.engines.portfolio import Racer, can_race, race
from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.errors import InputError
from fsgs_smt.policy import ast
from fsgs_smt.policy.invariants import Invariant, check_cpus
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.events import Event, Trace, Yield
from fsgs_smt.semantics.props import Evaluator, result_names, view
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.semantics.step import Semantics
from fsgs_smt.sim import bounds_for, make_semantics, simulate

MAX_TIMEOUT = 1_000_000.0
"""The largest time budget in seconds (about 11.6 days) that fsgs-smt accepts: the
solvers take their budgets in milliseconds in 32 bits (z3 unsigned, ``poll`` signed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How hard to try."""

    depth: int = 8
    engine: str = "auto"  # auto | bmc | kind | pdr
    timeout: float = 60.0
    ncpus: int = 2
    ldt_slots: int = 2
    settings: Mapping[str, bool | int] | None = None
    solver: str = "auto"  # auto | z3 | bitwuzla (see engines.backend)
    lemma_hints: tuple[str, ...] | None = None  # recorded lemma names to start Houdini from
    race: bool = False  # run the BMC search with every solver at once (`engines.portfolio`)
    small_scope: bool = True  # try the small-scope search at each depth first (`small_scope`)


def check(policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options) -> Verdict:
    """Decide *inv* for *policy* on *model*; every answer is re-checked before it is returned.

    Raises:
        InputError: *inv* migrates to a CPU that the world of *options* does not have.
    """
    check_cpus(inv, options.ncpus)
    start = time.monotonic()
    system = system_for(policy, model, options)
    if inv.kind == "noninterference":
        verdict = _noninterference(policy, inv, model, options, system)
        return Verdict(
            status=verdict.status, depth=verdict.depth, engine=verdict.engine,
            reason=verdict.reason, trace=verdict.trace, certificate=verdict.certificate,
            seconds=time.monotonic() - start, details=verdict.details,
        )  # fmt: skip
    prop = Property(system, inv)
    deadline = Deadline(options.timeout)
    proved: Verdict | None = None
    if options.engine == "auto":
        proved = _prove_by_lemmas(system, prop, deadline, options)
    elif options.engine == "pdr":
        proved = _prove_by_spacer(system, prop, deadline, options)
    if proved is not None and proved.status in (Status.PROVED, Status.VACUOUS):
        verdict = proved
    else:
        strengthen = None
        if options.engine == "auto":
            lemmas, why = lemmas_for(system, deadline, options)
            strengthen = None if why else lemmas.conj
        induction = options.engine == "kind"
        racers = _racers(options)
        later = None
        if options.engine in ("bmc", "pdr"):
            later = (RACE_LEMMAS_DEPTH if racers else LEMMAS_DEPTH,
                     _late_lemmas(system, deadline, options))  # fmt: skip
        scope = small_scope(system, prop, options.ncpus, deadline) if options.small_scope else None
        if racers:
            search = race(system, prop, deadline, racers, options.depth, induction=induction,
                          strengthen=strengthen, known=scope, lookahead=LOOKAHEAD,
                          strengthen_later=later)  # fmt: skip
        else:
            engine = Engine(system, prop, deadline, solver=options.solver, strengthen=strengthen,
                            strengthen_later=later)  # fmt: skip
            known = _either(_known(policy, inv, model, options, prop), scope)
            search = engine.run(options.depth, induction=induction, known=known)
        verdict = _conclude(policy, inv, model, options, system, prop, search)
        if proved is not None and verdict.status is Status.BOUNDED:
            # why there is no proof, then what the bounded search relied on (if anything)
            why = "; ".join(r for r in (proved.reason, verdict.reason) if r)
            verdict = Verdict(
                status=Status.BOUNDED, depth=verdict.depth, engine=verdict.engine, reason=why
            )  # fmt: skip
    return Verdict(
        status=verdict.status, depth=verdict.depth, engine=verdict.engine, reason=verdict.reason,
        trace=verdict.trace, certificate=verdict.certificate,
        seconds=time.monotonic() - start, details=verdict.details,
    )  # fmt: skip


def certify(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, verdict: Verdict,
    sink: Sink,
) -> Verdict:  # fmt: skip
    """Decide a PROVED cell again, handing every solver query to *sink*
    (`backend.recording`): the proof's verification conditions, each a standalone SMT-LIB
    benchmark with the answer it got, for another solver to check.

    A proof by lemmas starts again from its own lemmas (``details["lemmas"]``), so the
    queries are those of that inductive invariant: true in the initial world (Houdini
    evaluates that without a solver, so it is asked here as a query of its own), kept by
    every group of events, and implying the invariant and its own lemmas. The lemma cache
    is bypassed, so that each of them is asked (and recorded) again. The verdict is the new
    one's: PROVED again, or whatever stopped it.
    """
    names = verdict.details.get("lemmas")
    hints = tuple(str(n) for n in names) if isinstance(names, tuple | list) else None
    again = replace(options, race=False, lemma_hints=hints)
    key = _key(policy, model, again)
    _LEMMAS.pop(key, None)
    try:
        with recording(sink):
            found = check(policy, inv, model, again)
            lemmas, why = _LEMMAS.get(key, (None, "no lemmas"))
            if found.status is not Status.PROVED or lemmas is None or why:
                return found
            import z3  # noqa: PLC0415 - engines own the solver; this stage composes queries

            initial = system_for(policy, model, again).initial()
            holds = lemmas.conj(initial)
            base = _implied(z3.BoolVal(True), holds, Deadline(options.timeout), again)
            if base.result != "unsat":
                return Verdict(status=Status.UNKNOWN, depth=0, engine=found.engine,
                               reason=f"the lemmas in the initial world: {base.result} "
                               f"{base.reason}".strip())  # fmt: skip
            return found
    finally:
        _LEMMAS.pop(key, None)


def _racers(options: Options) -> tuple[Racer, ...]:
    """What to race (`Options.race`), when the machine can: bitwuzla in two configurations
    (`backend.CONFIGS`), each on one encoding of the first step (`engines.portfolio`)."""
    if not options.race or options.solver != "auto" or not can_race():
        return ()
    return (("bitwuzla", True), ("bitwuzla/rewrite-1", False)) if bitwuzla_available() else ()


NI_MAX_DEPTH = 2
# BMC without the `auto` engine's lemmas (`--engine bmc`, `pdr`'s fallback) asserts them
# from depth 1 on (`Engine`'s *strengthen_later*): without them the queries of the shipped
# invariants take seconds from depth 2 or 3 on (linux-5.9 / intel, every invariant to
# depth 6: over 120 s without, 56 s from depth 4, 24 s from depth 1, Houdini included).
# `fsgs-smt counterexample`'s race, whose target is 2 s a counterexample, only from depth
# 4: every shipped counterexample is shallower, and Houdini takes 1.5 s.
LEMMAS_DEPTH = 1
RACE_LEMMAS_DEPTH = 4
LOOKAHEAD = True  # the race's second racer asks only the odd depths (`engines.portfolio`)
_SYSTEMS: dict[tuple[object, ...], System] = {}
_LEMMAS: dict[tuple[object, ...], tuple[Lemmas, str]] = {}
# The prefixes (the events before the invariant's own) of the counterexamples found so far
# in this process, per system: a later invariant's BMC tries them before its satisfiable
# query (`_known`). Invariants of one policy are often broken by the same few events.
_PREFIXES: dict[tuple[object, ...], list[tuple[Event, ...]]] = {}
KNOWN_TRIES = 48  # candidates replayed per depth before the solver is asked


def _remember(policy: ast.Policy, model: CpuModel, options: Options, prefix: list[Event]) -> None:
    pool = _PREFIXES.setdefault(_key(policy, model, options), [])
    if tuple(prefix) not in pool:
        pool.append(tuple(prefix))


def _param_values(
    inv: Invariant, prop: Property, ncpus: int, prefix: tuple[Event, ...],
    more: tuple[int, ...] = (),
) -> Iterator[dict[str, int]]:  # fmt: skip
    """Values for the invariant's own parameters: each from 0, 1, the prefix's numbers and
    *more*, within its width (a CPU to migrate to, within the world's CPUs)."""
    from fsgs_smt.minimize import numbers  # noqa: PLC0415

    values = sorted({0, 1, *more} | {v for e in prefix for v in numbers(e)})
    names = sorted(inv.params)
    for combo in itertools.product(values, repeat=len(names)):
        fits = all(v < 1 << inv.params[n] for n, v in zip(names, combo, strict=True))
        if fits and all(v < ncpus for n, v in zip(names, combo, strict=True)
                        if n in prop.cpu_params):  # fmt: skip
            yield dict(zip(names, combo, strict=True))


def _known(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, prop: Property
) -> Known | None:  # fmt: skip
    """Depth k -> a violation of *inv* made of a remembered prefix of k events and the
    invariant's own events (its parameters from 0, 1 and the prefix's numbers; no action
    of the other task in an ``other: any`` yield), confirmed on the simulator; or None.
    The engine asks only once every shorter depth is unsatisfiable."""
    from fsgs_smt.encode.property import instantiate  # noqa: PLC0415
    from fsgs_smt.encode.system import other_actions  # noqa: PLC0415

    pool = _PREFIXES.get(_key(policy, model, options))
    if not pool:
        return None

    def find(k: int) -> Witness | None:
        tries = 0
        nothing = (len(other_actions()),) * len(inv.events)  # out of range: no action
        for prefix in (p for p in pool if len(p) == k):
            for params in _param_values(inv, prop, options.ncpus, prefix):
                if tries == KNOWN_TRIES:
                    return None
                tries += 1
                own = inv.kind == "transition"
                events = [*prefix, *(instantiate(inv.events, params, {}, nothing) if own else [])]
                try:
                    holds, _ = evaluate(policy, inv, model, options, events, params, k)
                except InputError:  # not a run (a parameter out of its event's range)
                    continue
                if not holds:
                    return tuple(events), params, "an earlier counterexample's events, replayed"
        return None

    return find


# The small-scope search's bounds. Its runs grow as the alphabet's (123 events) k-th power;
# on the shipped matrix it finds 110 of the 116 counterexamples of depth <= 2 within 1500
# runs of their depth (at most 0.8 s each on the Zen 1 guest), and none of the 4 of depth
# 3 within 15000, where a miss costs seconds; the solver is asked after either bound.
SCOPE_MAX_DEPTH = 2
SCOPE_RUNS = 1500  # runs stepped per depth (those ending in a world seen before included)
SCOPE_TRIES = 1000  # candidates (a run and the invariant's parameters) judged per depth


def small_scope(
    system: System, prop: Property, ncpus: int, deadline: Deadline | None = None
) -> Known:
    """Depth k -> a violation of the invariant made of k events of the small-scope alphabet
    (`explore.scope_runs`, simplest first) and the invariant's own events (its parameters
    as `_param_values` gives them, with the alphabet's numbers at depth 0; no action of the
    other task in an ``other: any`` yield), judged on the system's concrete semantics; or
    None after `SCOPE_RUNS` runs or `SCOPE_TRIES` candidates, beyond `SCOPE_MAX_DEPTH`, or
    once *deadline* is spent (the engine's next query then answers ``unknown``).

    A small-scope search before the solver: the counterexamples of the shipped matrix are
    runs of a few simple events, which the simulator finds in milliseconds each, where the
    depth's satisfiable query takes seconds. The engine asks it only once every shorter
    depth is unsatisfiable, so what it finds is a shortest counterexample too; the
    pipeline replays it on the simulator as any other."""
    from fsgs_smt.encode.property import instantiate  # noqa: PLC0415
    from fsgs_smt.encode.system import other_actions  # noqa: PLC0415
    from fsgs_smt.engines import explore  # noqa: PLC0415

    inv = prop.inv
    conc = system.conc
    nothing = (len(other_actions()),) * len(inv.events)  # out of range: no action
    at_zero = (*explore.SCOPE_VALUES, *explore.SCOPE_SELECTORS)
    transition = inv.kind == "transition"

    def find(k: int) -> Witness | None:
        if k > SCOPE_MAX_DEPTH:
            return None
        tries = 0
        for prefix, world in explore.scope_runs(system, k, SCOPE_RUNS):
            more = at_zero if k == 0 else ()
            if deadline is not None and deadline.left_ms() <= 0:
                return None
            for params in _param_values(inv, prop, ncpus, prefix, more):
                if tries == SCOPE_TRIES:
                    return None
                tries += 1
                own = instantiate(inv.events, params, {}, nothing) if transition else []
                after, results = world, []
                for event in own:
                    out = conc.step(after, event)
                    after = out.world
                    results.append(out.result)
                if not judge(conc, inv, world, results, after, params)[0]:
                    return (*prefix, *own), params, "the small-scope search, replayed"
        return None

    return find


def _either(*finds: Known | None) -> Known | None:
    """The first witness any of *finds* gives at a depth."""
    present = [f for f in finds if f is not None]
    if not present:
        return None

    def find(k: int) -> Witness | None:
        for f in present:
            hit = f(k)
            if hit is not None:
                return hit
        return None

    return find


def _key(policy: ast.Policy, model: CpuModel, options: Options) -> tuple[object, ...]:
    settings = tuple(sorted((options.settings or {}).items()))
    return (
        policy.text_hash, policy.path, model.name, options.ncpus, options.ldt_slots, settings,
        options.solver, options.lemma_hints,
    )  # fmt: skip


def system_for(policy: ast.Policy, model: CpuModel, options: Options) -> System:
    """The transition system of *policy* on *model* (built once per process)."""
    key = _key(policy, model, options)
    if key not in _SYSTEMS:
        bounds = Bounds(ncpus=options.ncpus, ldt_slots=options.ldt_slots)
        _SYSTEMS[key] = System(policy, model, bounds, options.settings)
    return _SYSTEMS[key]


def lemmas_for(system: System, deadline: Deadline, options: Options) -> tuple[Lemmas, str]:
    """The inductive lemmas of *system*: found by Houdini (whose last pass re-checks them in
    solvers made for exactly them), cached."""
    key = _key(system.policy, system.model, options)
    if key not in _LEMMAS:
        lemmas, why = houdini(
            system, deadline.left_ms, solver=options.solver, start=options.lemma_hints
        )  # its last pass checks every group with exactly the final set, in fresh solvers
        if why:
            return lemmas, why  # a timeout is not cached: a later call may have more time
        _LEMMAS[key] = (lemmas, why)
    return _LEMMAS[key]


def _late_lemmas(
    system: System, deadline: Deadline, options: Options
) -> Callable[[], Strengthening | None]:
    """For BMC without the ``auto`` engine's lemmas (``bmc``, and ``pdr`` after Spacer): the
    lemmas as `Engine`'s *strengthen_later*, found when a search gets deep enough to need them
    (None if Houdini does not finish: the search goes on without them)."""

    def later() -> Strengthening | None:
        lemmas, why = lemmas_for(system, deadline, options)
        return None if why else lemmas.conj

    return later


def _prove_by_lemmas(
    system: System, prop: Property, deadline: Deadline, options: Options
) -> Verdict:
    """PROVED if the inductive lemmas imply the invariant and its own lemmas (checked
    twice); else why not."""
    lemmas, why = lemmas_for(system, deadline, options)
    if why:
        return Verdict(status=Status.UNKNOWN, depth=0, engine="houdini", reason=why)
    s = system.state(0)
    # the invariant's own lemmas are claims proved along with it, never assumed: the
    # generated inductive lemmas must imply each of them too (else BMC checks them)
    own = _own_lemmas(prop, lemmas.conj(s), s, deadline, options)
    if own.result != "unsat":
        status = Status.BOUNDED if own.result == "sat" else Status.UNKNOWN
        return Verdict(status=status, depth=0, engine="houdini", reason=own.reason)
    answer = _implied(lemmas.conj(s), prop.holds(s, "0"), deadline, options)
    if answer.result == "sat":
        return Verdict(
            status=Status.BOUNDED, depth=0, engine="houdini",
            reason="not implied by the inductive lemmas (a counterexample to induction "
            "exists; no real one within the depth)",
        )  # fmt: skip
    if answer.result == "unknown":
        return Verdict(
            status=Status.UNKNOWN, depth=0, engine="houdini",
            reason=f"lemma implication: {answer.reason}",
        )  # fmt: skip
    # Only now, the premises: a world where the lemmas hold and the invariant does not
    # (the "sat" above) meets them, so a broken invariant never pays this query.
    if prop.inv.kind == "transition":
        vacuous = _vacuous(system, prop, lemmas, deadline, options)
        if vacuous is not None:  # VACUOUS, or UNKNOWN when that could not be decided
            return vacuous
    bounds = system.bounds
    certificate = (
        f"inductive invariant of {len(lemmas.names)} lemmas ({', '.join(lemmas.names)}) "
        f"implies {prop.inv.id}, for {bounds.describe()}"
    )
    return Verdict(
        status=Status.PROVED, depth=1, engine="houdini", certificate=certificate,
        details={"lemmas": lemmas.names},
    )  # fmt: skip


def _implied(assumed: Any, goal: Any, deadline: Deadline, options: Options) -> Answer:
    """Does *assumed* imply *goal*? Found, then re-checked in a fresh solver: "unsat" if so,
    else the first answer that is not."""
    import z3  # noqa: PLC0415 - engines own the solver; this stage only composes queries

    answer = Answer("unsat")
    for seed in (0, 1):  # the search, then the re-check
        solver = Solver(options.solver, seed=seed)
        solver.add(assumed)
        answer = solver.check(z3.Not(goal), deadline=deadline.left_ms)
        if answer.result != "unsat":
            return answer
    return answer


def _own_lemmas(
    prop: Property, assumed: Any, s: dict[str, Any], deadline: Deadline, options: Options
) -> Answer:
    """Does *assumed* (an inductive invariant of the system, in world *s*) imply each of the
    invariant's own ``lemmas``? "unsat" if so; else "sat" or "unknown" with the lemma and
    why. A PROVED verdict needs this: the lemmas are claims, never assumptions."""
    inv = prop.inv
    for i, lemma in enumerate(prop.lemmas(s)):
        answer = _implied(assumed, lemma, deadline, options)
        if answer.result == "sat":
            return Answer("sat", f"lemma {i} of {inv.id} (at {inv.lemmas[i].span}) is not "
                          "implied by the inductive invariant")  # fmt: skip
        if answer.result == "unknown":
            return Answer("unknown", f"implication of lemma {i} of {inv.id}: {answer.reason}")
    return Answer("unsat")


def _prove_by_spacer(
    system: System, prop: Property, deadline: Deadline, options: Options
) -> Verdict:
    """PROVED if Spacer's invariant re-checks; otherwise why not (BMC then looks for a trace)."""
    from fsgs_smt.engines import pdr  # noqa: PLC0415

    # Spacer gets half the budget: the other half is for BMC's counterexample or bound.
    found = pdr.run(system, prop, max(1.0, deadline.left_ms() / 2000), solver=options.solver)
    if found.kind == "proved":
        own = _own_lemmas(prop, found.invariant, system.state(0), deadline, options)
        if own.result != "unsat":
            return Verdict(status=Status.UNKNOWN, depth=0, engine="pdr", reason=own.reason)
        size = len(str(found.invariant))
        return Verdict(
            status=Status.PROVED, depth=1, engine="pdr",
            certificate=f"Spacer's inductive invariant ({size} characters), re-checked per "
            "event in fresh solvers, implies the invariant",
            details={"invariant": str(found.invariant)},
        )  # fmt: skip
    reason = "spacer found a counterexample" if found.kind == "violated" else found.reason
    return Verdict(status=Status.UNKNOWN, depth=0, engine="pdr", reason=reason)


def _noninterference(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, system: System
) -> Verdict:
    """Relational Houdini over the self-composition (auto engine), else BMC over it; a
    pair of runs that the concrete exploration found to differ (the proof's, or the same
    exploration before BMC alone) is shrunk first, so that BMC only rules out shorter
    ones. A difference is VIOLATED only if both traces replay and differ."""
    from fsgs_smt.engines import ni  # noqa: PLC0415

    deadline = Deadline(options.timeout)
    why_not = ""
    witness = None
    if options.engine == "auto":  # the proof gets most of the budget, BMC the rest
        proof_deadline = Deadline(options.timeout * 0.7)
        lemmas, why = lemmas_for(system, proof_deadline, options)
        if not why:  # the invariant's own lemmas are claims too, never assumed
            s = system.state(0)
            own = _own_lemmas(Property(system, inv), lemmas.conj(s), s, proof_deadline, options)
            why = own.reason
        if why:
            why_not = why
        else:
            proof = ni.prove(
                system, inv, lemmas.conj, proof_deadline.left_ms, solver=options.solver,
                start=options.lemma_hints,
            )  # fmt: skip
            if proof.kind == "proved":
                bounds = system.bounds
                return Verdict(
                    status=Status.PROVED, depth=1, engine="ni-houdini",
                    certificate=f"relational inductive invariant of {len(proof.lemmas)} "
                    f"equalities between the two copies, with the {len(lemmas.names)} lemmas "
                    f"of each copy, implies {inv.id}, for {bounds.describe()}",
                    details={"lemmas": (*lemmas.names, *proof.lemmas)},
                )  # fmt: skip
            why_not, witness = proof.reason, proof.witness
    else:  # no proof asked for: the proof's exploration of the product, for a pair that
        # differs (lutomirski-2016 / amd-legacy: found in its first walks, where the
        # product BMC's satisfiable query took 10 s)
        witness = ni.explored(system, [], inv.observe, deadline.left_ms)[1]
    from fsgs_smt.minimize import shrink_pair  # noqa: PLC0415

    def observed(events: list[Event]) -> dict[str, Any]:
        return observe(policy, inv, model, options, events)

    def differ(first: list[Event], second: list[Event]) -> bool:
        return observed(first) != observed(second)

    depth = min(options.depth, NI_MAX_DEPTH)
    if witness is not None and differ(list(witness[0]), list(witness[1])):
        # The exploration's pair, shrunk on the simulator first: the product BMC then only
        # has to rule out shorter pairs (its unsat queries), not find one of this length
        # (lutomirski-2016 / amd-legacy: a depth-2 satisfiable query of 10 s, skipped).
        first, second = shrink_pair(list(witness[0]), list(witness[1]), differ)
        if not ni.pair_problem(first, second) and differ(first, second):
            witness = (tuple(first), tuple(second))
            depth = min(depth, max(len(first) - 1, 0))
    found = ni.search(system, inv, depth, deadline, solver=options.solver)
    if found.kind in ("bounded", "unknown") and witness is not None:
        # no pair within the product BMC's depth (or it ran out of time), but the
        # exploration found one: a real violation, shrunk and re-checked below like any
        # other; its length is then all that is known about the shortest
        found = ni.NiSearch("violated", len(witness[0]), witness[0], witness[1])
    if found.kind == "bounded":
        reason = (
            f"noninterference is searched by bounded self-composition to depth {NI_MAX_DEPTH} "
            "(deeper product searches exceed the time budget)"
        )
        return Verdict(
            status=Status.BOUNDED, depth=found.depth, engine="ni-bmc",
            reason=f"{reason}; not proved: {why_not}" if why_not else reason,
        )  # fmt: skip
    if found.kind != "violated":
        return Verdict(status=Status.UNKNOWN, depth=found.depth, engine="ni-bmc",
                       reason=found.reason)  # fmt: skip
    first, second = list(found.first), list(found.second)
    if not differ(first, second):
        return Verdict(
            status=Status.UNKNOWN, depth=found.depth, engine="ni-bmc",
            reason="the two traces did not replay to different observations: a bug in fsgs-smt",
        )  # fmt: skip
    first, second = shrink_pair(first, second, differ)
    views = [observed(first), observed(second)]  # re-checked after the shrinking
    problem = ni.pair_problem(first, second) or (
        "they observe the same values" if views[0] == views[1] else ""
    )
    if problem:
        return Verdict(
            status=Status.UNKNOWN, depth=found.depth, engine="ni-bmc",
            reason=f"the shrunk traces are not two runs that differ ({problem}): a bug in "
            "fsgs-smt",
        )  # fmt: skip
    # the depth is the pair's length: no shorter pair differs (the product BMC found none,
    # and shrinking keeps the difference), or, for an explored pair, all it is known to be
    return Verdict(
        status=Status.VIOLATED, depth=len(first), engine="ni-bmc", trace=tuple(first),
        details={"other_trace": tuple(second), "observed": views},
    )  # fmt: skip


def observe(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, events: list[Event]
) -> dict[str, Any]:
    """What a noninterference invariant observes (its ``observe`` fields of the task's
    view) after *events*, run on the simulator as ``fsgs-smt simulate`` runs them."""
    trace = Trace(events=tuple(events))
    run = simulate(policy, trace, model, settings=options.settings, ncpus=options.ncpus)
    sem = make_semantics(policy, model, bounds_for(trace, options.ncpus), options.settings)
    world = run.worlds[-1] if run.worlds else run.initial
    return {f: view(sem, world, inv.observe)[f] for f in inv.observe}


def _vacuous(
    system: System, prop: Property, lemmas: Lemmas, deadline: Deadline, options: Options
) -> Verdict | None:
    """VACUOUS if no world satisfying the inductive lemmas meets the invariant's premises."""
    s = system.state(0)
    solver = Solver(options.solver)
    solver.add(lemmas.conj(s), prop.premise(s, "0"))
    answer = solver.check(deadline=deadline.left_ms)
    if answer.result == "unknown":  # a proof of an unsatisfiable premise is no proof
        return Verdict(
            status=Status.UNKNOWN, depth=0, engine="houdini",
            reason=f"could not decide whether the premises of {prop.inv.id} are "
            f"satisfiable: {answer.reason}",
        )  # fmt: skip
    if answer.result == "sat":
        return None
    return Verdict(
        status=Status.VACUOUS, depth=0, engine="houdini",
        reason=f"the premises of {prop.inv.id} (the task running, and its assume) hold in no "
        "reachable world",
    )  # fmt: skip


def _conclude(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, system: System,
    prop: Property, search: Search,
) -> Verdict:  # fmt: skip
    engine = options.engine if options.engine in ("kind", "pdr") else "bmc"
    match search.kind:
        case "violated":
            events, params = _decode(system, prop, search)
            found = events[: len(events) - _n(inv)]
            ok, why = replay(policy, inv, model, options, events, params, len(events) - _n(inv))
            if ok:
                ok, why = _readable(events)
            if ok:
                events, params = _shrink(policy, inv, model, options, events, params)
                ok, why = replay(policy, inv, model, options, events, params, len(events) - _n(inv))
            if not ok:
                return Verdict(
                    status=Status.UNKNOWN, depth=search.depth, engine=engine,
                    reason=f"counterexample did not replay on the simulator ({why}): "
                    "a bug in fsgs-smt, please report it",
                )  # fmt: skip
            for prefix in (found, events[: len(events) - _n(inv)]):  # as found, and shrunk
                _remember(policy, model, options, prefix)
            details: dict[str, Any] = {"params": params}
            if search.witness is not None:
                details["found"] = search.witness[2]
            return Verdict(
                status=Status.VIOLATED, depth=search.depth, engine=engine, trace=tuple(events),
                details=details,
            )  # fmt: skip
        case "lemma-false":
            return Verdict(
                status=Status.UNKNOWN, depth=search.depth, engine=engine,
                reason=f"a lemma of {inv.id} fails at depth {search.depth}",
            )  # fmt: skip
        case "proved":
            again = recheck_certificate(
                system, prop, search.k, options.timeout, solver=options.solver
            )
            if again.kind != "proved":
                return Verdict(
                    status=Status.UNKNOWN, depth=search.k, engine=engine,
                    reason=f"the {search.k}-induction certificate did not re-check ({again.kind})",
                )  # fmt: skip
            lemmas = " && ".join(f"lemma{i}" for i in range(len(inv.lemmas)))
            cert = f"{search.k}-inductive: {inv.id}" + (f" && {lemmas}" if lemmas else "")
            return Verdict(status=Status.PROVED, depth=search.k, engine=engine, certificate=cert)
        case "bounded":
            return Verdict(
                status=Status.BOUNDED, depth=search.depth, engine=engine, reason=search.reason
            )
    return Verdict(status=Status.UNKNOWN, depth=search.depth, engine=engine, reason=search.reason)


def _readable(events: list[Event]) -> tuple[bool, str]:
    """Does the trace survive fsgs-trace/1 (what ``fsgs-smt simulate`` reads) unchanged?"""
    from fsgs_smt.traces.fsgs_json import dumps_trace, parse_trace  # noqa: PLC0415

    trace = Trace(events=tuple(events))
    try:
        back = parse_trace(dumps_trace(trace), "<counterexample>").trace
    except InputError as exc:
        return False, f"not a valid fsgs-trace/1 document: {exc.one_line()}"
    if back.events != trace.events:
        return False, "fsgs-trace/1 does not read it back as written"
    return True, ""


def _shrink(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, events: list[Event],
    params: Mapping[str, int],
) -> tuple[list[Event], dict[str, int]]:  # fmt: skip
    """The counterexample and the invariant's parameters after the minimisation passes
    (each step re-checked on the simulator)."""
    from fsgs_smt.encode.property import substitute_params  # noqa: PLC0415
    from fsgs_smt.minimize import shrink, shrink_params  # noqa: PLC0415
    from fsgs_smt.policy.invariants import is_any_other  # noqa: PLC0415

    tail = _n(inv)

    def broken(candidate: list[Event], values: Mapping[str, int]) -> bool:
        holds, _ = evaluate(policy, inv, model, options, candidate, values, len(candidate) - tail)
        return not holds

    free = tuple(j for j, e in enumerate(inv.events) if is_any_other(e)) if tail else ()
    events = shrink(events, len(events) - tail, lambda c: broken(c, params), free)
    if not params:
        return events, dict(params)
    prefix = events[: len(events) - tail]

    def with_params(values: Mapping[str, int]) -> list[Event]:
        # the invariant's events with *values*; an ``other: any`` yield keeps its (shrunk) action
        own = [e if is_any_other(raw) else substitute_params(raw, values)
               for raw, e in zip(inv.events, events[len(prefix):], strict=True)]  # fmt: skip
        return [*prefix, *own]

    values = shrink_params(dict(params), lambda v: broken(with_params(v), v))
    return with_params(values), values


def _not_own_events(inv: Invariant, tail: list[Event], params: Mapping[str, int]) -> str:
    """Why *tail* is not the invariant's own events with *params* ("" when it is): each
    event as written with the parameters put in, an ``other: any`` yield with at most one
    action of the other task (any action, any values)."""
    from fsgs_smt.encode.property import substitute_params  # noqa: PLC0415
    from fsgs_smt.policy.invariants import is_any_other  # noqa: PLC0415

    for i, (raw, event) in enumerate(zip(inv.events, tail, strict=True)):
        if is_any_other(raw):
            if not (isinstance(event, Yield) and len(event.other) <= 1):
                return f"{inv.id}'s own event {i} is a yield of at most one other-task action"
        elif event != substitute_params(raw, params):
            return f"{inv.id}'s own event {i} is not as the invariant writes it with the parameters"
    return ""


def _n(inv: Invariant) -> int:
    return len(inv.events) if inv.kind == "transition" else 0


def _decode(system: System, prop: Property, search: Search) -> tuple[list[Event], dict[str, int]]:
    if search.witness is not None:
        known, values, _ = search.witness
        return list(known), dict(values)
    assert search.model is not None  # noqa: S101
    events = system.decode(search.model, search.depth)
    params: dict[str, int] = {}
    if prop.inv.kind == "transition":
        tail, params = prop.concrete_events(search.model, str(search.depth))
        events.extend(tail)
    return events, params


def evaluate(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, events: list[Event],
    params: Mapping[str, int], prefix: int,
) -> tuple[bool, dict[str, Any]]:  # fmt: skip
    """Run *events* on the simulator; does the invariant hold at the end? (and the names read)

    The first *prefix* events lead to the world before a transition invariant's own events,
    which follow; *params* gives each of the invariant's parameters a value (`replay` checks
    evidence read from a file for both).
    """
    trace = Trace(events=tuple(events))
    run = simulate(policy, trace, model, settings=options.settings, ncpus=options.ncpus)
    sem = make_semantics(policy, model, bounds_for(trace, options.ncpus), options.settings)
    if inv.kind == "state":
        world = run.worlds[-1] if run.worlds else run.initial
        return judge(sem, inv, world, (), world, params)
    before = run.worlds[prefix - 1] if prefix > 0 else run.initial
    return judge(sem, inv, before, run.raw[prefix:], run.worlds[-1], params)


def judge(
    sem: Semantics, inv: Invariant, before: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]], after: Mapping[str, Any], params: Mapping[str, int],
) -> tuple[bool, dict[str, Any]]:  # fmt: skip
    """Does *inv* hold on concrete worlds? (and the names it read) *before* is the world
    before a transition invariant's own events, *results* their results and *after* the
    world they end in; a state invariant reads *after* only."""
    ev_ = Evaluator(sem)
    if inv.kind == "state":
        assert inv.always is not None  # noqa: S101
        names: dict[str, Any] = view(sem, after)
        return bool(ev_.eval(inv.always, names)), names
    names = {f"before.{k}": v for k, v in view(sem, before).items()}
    names.update({f"after.{k}": v for k, v in view(sem, after).items()})
    for i, raw in enumerate(results):
        names.update({f"r{i}.{k}": v for k, v in result_names(raw).items()})
    names.update({f"p.{k}": v for k, v in params.items()})
    assume = bool(ev_.eval(inv.assume, names)) if inv.assume is not None else True
    assert inv.expect is not None  # noqa: S101
    holds = not (names["before.running"] and assume) or bool(ev_.eval(inv.expect, names))
    return holds, names


def replay(
    policy: ast.Policy, inv: Invariant, model: CpuModel, options: Options, events: list[Event],
    params: Mapping[str, int], prefix: int,
) -> tuple[bool, str]:  # fmt: skip
    """Does the simulator confirm that *events* break *inv*? (and why not, if not)

    Evidence read from a file may be short of events or parameters: that is a "no"."""
    own = len(inv.events) if inv.kind == "transition" else 0
    if len(events) < own:
        return False, f"{len(events)} events, fewer than the invariant's own {own}"
    if not 0 <= prefix == len(events) - own:
        return False, f"{len(events)} events, not {prefix} and the invariant's own {own}"
    missing = sorted(set(inv.params) - set(params))
    if missing:
        return False, f"no value for the parameters {', '.join(missing)}"
    wrong = _not_own_events(inv, events[prefix:], params)
    if wrong:
        return False, wrong
    holds, _ = evaluate(policy, inv, model, options, events, params, prefix)
    if holds:
        return False, f"{inv.id} holds after the {len(events)} events on the simulator"
    return True, ""
