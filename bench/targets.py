"""The two per-query targets: each counterexample in 2 s; BMC to depth 32 in 5 s.

Run: ``python bench/targets.py [--policy NAME] [--cpu NAME] [--invariant ID|all]
[--depth 32]``, or
``python bench/targets.py --all`` for the counterexamples of every policy and CPU model
(and no BMC), with the number above 2 s.

* every VIOLATED cell of the policy's recorded proofs, found again with ``fsgs-smt
  counterexample`` (pure BMC from the initial world, then the replay and the shrinking;
  for noninterference, the product's exploration and BMC);
* BMC of one PROVED invariant to the given depth (no violation exists, so every depth is
  an unsatisfiable query), with the re-checked lemmas asserted in every world as the
  ``auto`` engine does, and the time to find those lemmas printed apart; with
  ``--invariant all``, of every invariant but noninterference, one line each (a violated
  one stops at its depth) and how many took more than 5 s.

It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fsgs_smt import proofs as pr
from fsgs_smt.encode.property import Property
from fsgs_smt.engines.kind import Deadline, Engine
from fsgs_smt.errors import InputError
from fsgs_smt.pipeline import Options, lemmas_for, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import counterexample, select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS


def counterexamples(policy_name: str, cpu: str, timeout: float, *, race: bool) -> list[float]:
    """Find each VIOLATED cell's counterexample of *policy_name* on *cpu* again, as
    ``fsgs-smt counterexample`` does; print and return the time of each."""
    policy = load_checked(policy_name)
    pf = pr.load(pr.path_for(Path("proofs"), policy_name))
    times = []
    for rec in pf.records:
        if rec.cpu != cpu or rec.verdict != "VIOLATED":  # noninterference pairs too
            continue
        (inv,) = select_invariants(None, [rec.invariant])
        start = time.perf_counter()
        verdict, _ = counterexample(policy, inv, cpu, pf.settings.depth, timeout, None, race=race)
        times.append(time.perf_counter() - start)
        found = verdict.details.get("found", "")
        print(f"counterexample {policy_name:<16}{cpu:<11}{rec.invariant:<36}{verdict.label:<10}"
              f"{times[-1]:8.2f} s  {found}", flush=True)  # fmt: skip
    return times


def main() -> None:
    """Print the time of each counterexample and of each BMC depth."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", default="linux-4.13")
    parser.add_argument("--cpu", default="intel")
    parser.add_argument("--invariant", default="kernel-never-loads-noncanonical")
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--no-race",
        action="store_true",
        help="counterexamples with the default solver only, as before the race",
    )
    parser.add_argument(
        "--all", action="store_true", help="every policy's and CPU model's counterexamples"
    )
    args = parser.parse_args()
    try:  # before the counterexamples, so that a typo costs nothing
        load_checked(args.policy)
        if args.invariant != "all":
            select_invariants(None, [args.invariant])
    except InputError as exc:
        parser.exit(2, f"{exc}\n")
    if not args.all and args.cpu not in CPU_MODELS:
        parser.exit(2, f"--cpu {args.cpu}: expected one of {', '.join(CPU_MODELS)}\n")
    cells = (
        [(p, c) for p in pr.shipped_policy_names() for c in CPU_MODELS]
        if args.all
        else [(args.policy, args.cpu)]
    )
    times = [
        t for p, c in cells for t in counterexamples(p, c, args.timeout, race=not args.no_race)
    ]
    if args.all:
        over = sum(t > 2.0 for t in times)
        print(f"{len(times)} counterexamples in {sum(times):.1f} s; "
              f"{over} above 2 s, the longest {max(times):.1f} s")  # fmt: skip
        return
    policy = load_checked(args.policy)
    options = Options()
    system = system_for(policy, CPU_MODELS[args.cpu], options)
    start = time.perf_counter()
    lemmas, why = lemmas_for(system, Deadline(args.timeout), options)
    print(f"lemmas: {len(lemmas.names)} in {time.perf_counter() - start:.1f} s {why}")
    every = args.invariant == "all"
    invs = select_invariants(None, [] if every else [args.invariant])
    ends = []
    for inv in invs:
        if inv.kind == "noninterference":  # its BMC is over the product, to depth 2
            continue
        engine = Engine(system, Property(system, inv), Deadline(args.timeout),
                        strengthen=None if why else lemmas.conj)  # fmt: skip
        start = time.perf_counter()
        for k in range(args.depth + 1):
            found = engine.base_case(k)
            if not every or found.kind != "bounded" or k == args.depth:
                print(f"bmc {inv.id} depth {k:>2}: {found.kind:<8} "
                      f"{time.perf_counter() - start:8.2f} s cumulative", flush=True)  # fmt: skip
            if found.kind != "bounded":
                break
        else:
            ends.append(time.perf_counter() - start)
    if every:
        print(
            f"{len(ends)} invariants bounded to depth {args.depth}: "
            f"{sum(t > 5.0 for t in ends)} above 5 s, the longest {max(ends, default=0):.1f} s"
        )


if __name__ == "__main__":
    main()
