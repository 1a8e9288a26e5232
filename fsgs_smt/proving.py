# SPDX-License-Identifier: MIT
"""Which invariants to check, on which CPU models, in how many processes.

Layer: pipeline. Imports `pipeline`, `policy.*`, `sim`; prints nothing (progress goes to
a callback the CLI supplies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.errors import InputError
from fsgs_smt.pipeline import Options, check
from fsgs_smt.policy import ast
from fsgs_smt.policy.invariants import Invariant, check_cpus, load_invariants
from fsgs_smt.policy.load import SPECS_DIR
from fsgs_smt.semantics.cpu import CPU_MODELS, same_architecture
from fsgs_smt.semantics.events import Trace
from fsgs_smt.sim import SimRun, simulate
from fsgs_smt.source import Span

INVARIANTS_DIR = SPECS_DIR / "invariants"


def shipped_invariants() -> list[Invariant]:
    """Every invariant under specs/invariants, in file order."""
    out: list[Invariant] = []
    for path in sorted(INVARIANTS_DIR.glob("*.yaml")):
        out.extend(load_invariants(path))
    return out


def select_invariants(
    path: Path | None, ids: list[str], extra: list[Invariant] | None = None
) -> list[Invariant]:
    """The invariants of *path* (default: the shipped ones) and *extra* (a policy's own
    ``invariants:`` section), restricted to *ids* if given.

    Raises:
        InputError: an unknown id, or an extra invariant whose id is already taken.
    """
    invs = load_invariants(path) if path is not None else shipped_invariants()
    taken = {i.id: i for i in invs}
    for inv in extra or []:
        if inv.id in taken:
            raise InputError(inv.span, f"invariant id {inv.id!r} is already used (at "
                                       f"{taken[inv.id].span}): expected a new id")  # fmt: skip
        taken[inv.id] = inv
        invs.append(inv)
    if not ids:
        return invs
    by_id = {i.id: i for i in invs}
    out = []
    for inv_id in ids:
        if inv_id not in by_id:
            raise InputError(
                Span("<command line>", 1, 1),
                f"unknown invariant {inv_id!r}: expected one of {', '.join(by_id)}",
            )
        out.append(by_id[inv_id])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ProveRequest:
    """What ``fsgs-smt prove`` was asked."""

    policy: ast.Policy
    invariants: list[Invariant]
    cpus: list[str]
    depth: int = 6
    engine: str = "auto"
    timeout: float = 600.0
    settings: Mapping[str, bool | int] | None = None
    jobs: int = 1
    solver: str = "auto"
    ncpus: int = 2  # the world's bounds (`semantics.state.Bounds`)
    ldt_slots: int = 2

    def options(self) -> Options:
        """The pipeline's options for this request."""
        return Options(
            depth=self.depth, engine=self.engine, timeout=self.timeout, ncpus=self.ncpus,
            ldt_slots=self.ldt_slots, settings=self.settings, solver=self.solver,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Result:
    """One cell of the matrix: an invariant on a CPU model."""

    invariant: Invariant
    cpu: str
    verdict: Verdict


def _one_cpu(request: ProveRequest, cpu: str) -> list[Result]:
    options = request.options()
    return [
        Result(inv, cpu, check(request.policy, inv, CPU_MODELS[cpu], options))
        for inv in request.invariants
    ]


def run_prove(request: ProveRequest, progress: Callable[[str], None] | None = None) -> list[Result]:
    """Check every invariant on every CPU model (CPU models in parallel with ``jobs > 1``).

    A CPU model with the same architectural parameters as one before it in ``cpus``
    (`CpuModel.architecture`) is the same transition system: it gets that model's verdicts,
    marked ``details["same_as"]``, and is not decided again.
    """
    for inv in request.invariants:  # here, before any run (`check` does it in each process)
        check_cpus(inv, request.ncpus)
    same = same_architecture(request.cpus)
    decide = list(same)
    if request.jobs > 1 and len(decide) > 1:
        with ProcessPoolExecutor(max_workers=min(request.jobs, len(decide))) as pool:
            futures = [pool.submit(_one_cpu, request, cpu) for cpu in decide]
            grouped = [f.result() for f in futures]
    else:
        grouped = []
        for cpu in decide:
            row: list[Result] = []
            options = request.options()
            for inv in request.invariants:
                if progress is not None:
                    progress(f"[{cpu}] {inv.id} ...")
                row.append(Result(inv, cpu, check(request.policy, inv, CPU_MODELS[cpu], options)))
            grouped.append(row)
    flat = []
    for row in grouped:
        for r in row:
            flat.append(r)
            for cpu in same[r.cpu][1:]:
                details = {**r.verdict.details, "same_as": r.cpu}
                flat.append(Result(r.invariant, cpu, replace(r.verdict, seconds=0.0,
                                                             details=details)))  # fmt: skip
    order = {inv.id: n for n, inv in enumerate(request.invariants)}
    return sorted(flat, key=lambda r: (order[r.invariant.id], request.cpus.index(r.cpu)))


def counterexample(
    policy: ast.Policy, inv: Invariant, cpu: str, depth: int, timeout: float,
    settings: Mapping[str, bool | int] | None, *, race: bool = False, ncpus: int = 2,
    ldt_slots: int = 2,
) -> tuple[Verdict, SimRun | None]:  # fmt: skip
    """The shortest violating trace (BMC), replayed on the simulator; None if there is none.

    *race*: two BMC searches at once, in two processes (`engines.portfolio`). *ncpus* and
    *ldt_slots* bound the world, as in ``prove``.
    """
    options = Options(depth=depth, engine="bmc", timeout=timeout, settings=settings, race=race,
                      ncpus=ncpus, ldt_slots=ldt_slots)  # fmt: skip
    verdict = check(policy, inv, CPU_MODELS[cpu], options)
    if verdict.status is not Status.VIOLATED:
        return verdict, None
    run = simulate(policy, Trace(events=verdict.trace, cpu=cpu), CPU_MODELS[cpu],
                   settings=settings, ncpus=ncpus)  # fmt: skip
    return verdict, run
