"""The proof matrix as a benchmark: the time of each policy x invariant x CPU model, and the total.

Run: ``python bench/matrix.py [--policy NAME]... [--cpu NAME]... [--depth K] [--timeout S]``.
Targets (issue "Proofs and counterexamples"): the whole shipped matrix decided with no
UNKNOWN in 60 s on the 2-core machine; each counterexample in 2 s; BMC to depth 32 of one
invariant in 5 s. This script measures; it asserts nothing (timed assertions do not
belong in tests).
"""

from __future__ import annotations

import argparse
import time

from fsgs_smt.pipeline import Options, check
from fsgs_smt.policy.catalog import load_checked, shipped_policies
from fsgs_smt.proving import shipped_invariants
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES, CPU_MODELS


def main() -> None:
    """Print one line per cell, then totals per verdict and the wall time."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", action="append", default=[])
    parser.add_argument("--cpu", action="append", default=[])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    policies = args.policy or [p.name for p in shipped_policies()]
    cpus = args.cpu or list(CPU_MODEL_NAMES)
    options = Options(depth=args.depth, timeout=args.timeout)
    start = time.perf_counter()
    counts: dict[str, int] = {}
    print(f"{'policy':<16}{'invariant':<36}{'cpu':<12}{'verdict':<13}{'seconds':>8}")
    for name in policies:
        policy = load_checked(name)
        for cpu in cpus:
            for inv in shipped_invariants():
                verdict = check(policy, inv, CPU_MODELS[cpu], options)
                counts[verdict.status.value] = counts.get(verdict.status.value, 0) + 1
                print(f"{name:<16}{inv.id:<36}{cpu:<12}{verdict.label:<13}{verdict.seconds:>8.1f}")
    total = time.perf_counter() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"total {total:.1f} s: {summary}")


if __name__ == "__main__":
    main()
