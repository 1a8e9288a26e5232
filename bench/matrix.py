"""The proof matrix as a benchmark: the time of each policy x invariant x CPU model, and the total.

Run: ``python bench/matrix.py [--policy NAME]... [--cpu NAME]... [--jobs N] [--warm]``.

* cold (default): everything decided from scratch, as ``fsgs-smt check --update`` does;
* ``--warm``: as ``fsgs-smt check`` does, from the records in ``proofs/`` (Houdini starts
  from the recorded lemmas; counterexamples are replayed).

Targets (issue "Proofs and counterexamples"): the whole shipped matrix decided with no
UNKNOWN in 60 s on the 2-core machine; each counterexample in 2 s; BMC to depth 32 of one
invariant in 5 s (``bench/targets.py`` measures the last two). This script measures; it
asserts nothing (timed assertions do not belong in tests).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fsgs_smt import proofs as pr
from fsgs_smt.proving import shipped_invariants
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES


def main() -> None:
    """Print one line per cell, then totals per verdict and the wall time."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--cpu", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--warm", action="store_true")
    parser.add_argument("--proofs", type=Path, default=Path("proofs"))
    args = parser.parse_args()
    policies = args.policy or pr.shipped_policy_names()
    cpus = args.cpu or list(CPU_MODEL_NAMES)
    recorded = None
    settings = pr.Settings()
    if args.warm:
        recorded = {n: pr.load(pr.path_for(args.proofs, n)) for n in policies}  # own settings
    print(f"{'policy':<16}{'invariant':<36}{'cpu':<12}{'verdict':<13}{'seconds':>8}")

    def line(o: pr.Outcome) -> None:
        print(f"{o.policy:<16}{o.invariant:<36}{o.cpu:<12}{o.now:<13}{o.seconds:>8.1f}",
              flush=True)  # fmt: skip

    start = time.perf_counter()
    results = pr.decide_matrix(policies, shipped_invariants(), cpus, settings,
                               solver=args.solver, jobs=args.jobs, recorded=recorded,
                               progress=line)  # fmt: skip
    wall = time.perf_counter() - start
    counts: dict[str, int] = {}
    for _, o in results:
        key = o.now.split("(")[0]
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    solving = sum(o.seconds for _, o in results)
    mode = "warm (from proofs/)" if args.warm else "cold"
    print(f"{mode}: {len(results)} cells in {wall:.1f} s wall, {solving:.1f} s of checking "
          f"with --jobs {args.jobs}: {summary}")  # fmt: skip


if __name__ == "__main__":
    main()
