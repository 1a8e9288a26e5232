"""z3 against bitwuzla on the same queries (the engines build z3 terms; bitwuzla gets them
translated node by node).

Run: ``python bench/solvers.py [--policy NAME] [--cpu NAME]``. For one policy on one CPU
model it times, in each solver and in a fresh solver per query:

* the 28 lemma re-check queries (L and one event variant, then not L'), which are what
  every proof costs;
* the BMC queries of one invariant at depths 0..3, without and with the lemmas.

It prints one line per query and the totals. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import z3

from fsgs_smt.encode.property import Property
from fsgs_smt.engines.backend import Solver, version
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.pipeline import Options, lemmas_for, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS

SOLVERS = ("z3", "bitwuzla")


def timed(assertions: list[object], solver: str, timeout: float) -> tuple[float, str]:
    """Seconds and answer of one fresh query."""
    start = time.perf_counter()
    check = Solver(solver)
    check.add(*assertions)
    answer = check.check(deadline=Deadline(timeout).left_ms)
    return time.perf_counter() - start, answer.result


def main() -> None:
    """Print the per-query times of both solvers and their totals."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", default="linux-5.9")
    parser.add_argument("--cpu", default="intel")
    parser.add_argument("--invariant", default="Q1b")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    policy = load_checked(args.policy)
    options = Options(solver="bitwuzla")
    system = system_for(policy, CPU_MODELS[args.cpu], options)
    lemmas, why = lemmas_for(system, Deadline(1800), options)
    if why:
        raise SystemExit(f"no lemmas: {why}")
    print(f"{args.policy} on {args.cpu}: {len(lemmas.names)} lemmas; "
          f"{', '.join(version(s) for s in SOLVERS)}")  # fmt: skip
    totals = dict.fromkeys(SOLVERS, 0.0)
    s, p = system.state(0), system.params(0)
    print(f"{'query':<40}" + "".join(f"{n:>14}" for n in SOLVERS))
    for i, variant in enumerate(system.variants):
        query = [
            system.param_constraint(p, z3.BitVecVal(i, system.op_width)),
            lemmas.conj(s), z3.Not(lemmas.conj(system.variant_successor(i, s, p))),
        ]  # fmt: skip
        cells = []
        for name in SOLVERS:
            seconds, result = timed(query, name, args.timeout)
            totals[name] += seconds
            cells.append(f"{seconds:8.2f} {result:<5}")
        print(f"{'re-check ' + variant.name:<40}" + "".join(f"{c:>14}" for c in cells))
    (inv,) = select_invariants(None, [args.invariant])
    prop = Property(system, inv)
    for strengthen in (False, True):
        for k in range(4):
            query = [system.init_constraint(system.state(0))]
            for t in range(k):
                query.append(system.trans(t))
                if strengthen:
                    query.append(lemmas.conj(system.state(t + 1)))
            query.append(z3.Not(prop.holds(system.state(k), str(k))))
            cells = []
            for name in SOLVERS:
                seconds, result = timed(query, name, args.timeout)
                totals[name] += seconds
                cells.append(f"{seconds:8.2f} {result:<5}")
            label = f"bmc {inv.id} depth {k}" + (" + lemmas" if strengthen else "")
            print(f"{label:<40}" + "".join(f"{c:>14}" for c in cells))
    print(f"{'total':<40}" + "".join(f"{totals[n]:14.1f}" for n in SOLVERS))


if __name__ == "__main__":
    main()
