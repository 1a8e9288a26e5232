# SPDX-License-Identifier: MIT
"""Conformance runs: many traces replayed natively and compared with the model.

Layer: native. Imports `native.run`, `native.randtrace`, `native.machine`, `native.cgen`,
`traces.fsgs_json`; never a solver or the terminal; prints nothing (`native.render`
renders the `ConformReport`, the CLI prints it).

The cases are random traces (`randtrace`, seeded) and litmus traces (the ``*.json`` of a
directory). Each is replayed with `run.replay` (one compilation, R runs) against one
policy on one CPU model; compilations run in a thread pool (gcc is a child process, so
two workers keep two cores busy). A case the machine cannot run (`CannotReplayError`:
`cgen.unsupported`, or a feature this machine lacks) is skipped and counted with its
reason, never dropped silently; a program that misbehaves (`InternalError`) is an error
and counts as a disagreement.

A disagreeing case is replayed again (*recheck* runs, a new compilation) to tell what kind
of disagreement it is: ``never`` (the model's outcome never shows), ``sometimes`` (it
shows in some runs only: the machine has outcomes the model lacks) or ``transient`` (every
recheck run agrees: an event outside the trace hit the first run). Each still counts as a
disagreement. A case whose differing runs are each the prediction with one asynchronous
interrupt inserted (an interrupt's IRET cleared a null selector 1..3; see `run`) and whose
recheck agrees is ``interrupted``: the model has that outcome, so it counts as agreeing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fsgs_smt.errors import CannotReplayError, InputError, InternalError
from fsgs_smt.native import cgen
from fsgs_smt.native.machine import MachineInfo, probe
from fsgs_smt.native.randtrace import Features, random_trace
from fsgs_smt.native.run import ReplayReport, replay
from fsgs_smt.policy import ast
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.events import Trace
from fsgs_smt.source import Span
from fsgs_smt.traces.fsgs_json import SpanKey, load_trace


@dataclass(frozen=True, slots=True)
class Case:
    """One trace to check: its name (``random-17``, or the litmus file) and the trace."""

    name: str
    trace: Trace
    origin: str  # "random" or "litmus"
    spans: Mapping[SpanKey, Span] | None = field(default=None, compare=False)  # a litmus file's


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case replayed: its report, or why it was skipped, or the error of its program."""

    case: Case
    report: ReplayReport | None
    skipped: str = ""  # the reason the machine cannot run it
    error: str = ""  # the replay program misbehaved (a bug of the replay)
    recheck: ReplayReport | None = None  # a disagreement replayed again

    @property
    def kind(self) -> str:
        """agree, interrupted (agrees, see the module), skipped, error, or for a
        disagreement: never, sometimes, transient (by the recheck; ``unchecked`` without
        one)."""
        if self.skipped:
            return "skipped"
        if self.error:
            return "error"
        if self.report is not None and self.report.agrees:
            return "agree"
        if self._interrupted():
            return "interrupted"
        if self.recheck is None:
            return "unchecked"
        return {"Always": "transient", "Sometimes": "sometimes", "Never": "never"}[
            self.recheck.seen
        ]

    def _interrupted(self) -> bool:
        report, again = self.report, self.recheck
        if report is None or again is None or report.errors or not again.agrees:
            return False
        return report.matched_runs + len(report.interrupted) == report.runs

    @property
    def agrees(self) -> bool:
        """Replayed, and every run matched the prediction (`ReplayReport.agrees`), or the
        runs that did not are explained by an asynchronous interrupt and the recheck agrees."""
        if self.report is None or self.skipped or self.error:
            return False
        return self.report.agrees or self._interrupted()

    @property
    def disagrees(self) -> bool:
        """Replayed (or tried) and not in agreement: a mismatch, a failed run, an error."""
        return not self.skipped and not self.agrees


@dataclass(frozen=True, slots=True)
class OpCount:
    """Per event kind: events that agreed, that disagreed, and traces whose first
    disagreement is at an event of this kind."""

    op: str
    agree: int
    disagree: int
    first: int


@dataclass(frozen=True, slots=True)
class ConformReport:
    """Every case of a conformance run against one policy on one CPU model."""

    policy: str
    cpu: str
    runs: int
    recheck: int  # runs of each disagreeing case's recheck
    seed: int
    depth: int
    random: int  # how many random traces
    litmus: tuple[str, ...]  # the litmus directories
    results: tuple[CaseResult, ...]

    @property
    def agreeing(self) -> list[CaseResult]:
        """Cases that agreed in every run."""
        return [r for r in self.results if r.agrees]

    @property
    def disagreeing(self) -> list[CaseResult]:
        """Cases that disagreed (a mismatch, a failed run, an error), in case order."""
        return [r for r in self.results if r.disagrees]

    @property
    def skipped(self) -> list[CaseResult]:
        """Cases this machine cannot run, each with its reason."""
        return [r for r in self.results if r.skipped]

    @property
    def ok(self) -> bool:
        """No case disagreed."""
        return not self.disagreeing

    def per_op(self) -> list[OpCount]:
        """Agree/disagree counts per event kind, over the events the model runs (an event
        after a fault is counted only if the machine disagrees about it)."""
        agree: Counter[str] = Counter()
        disagree: Counter[str] = Counter()
        first: Counter[str] = Counter()
        ops: list[str] = []
        for res in self.results:
            if res.report is None:
                continue
            seen_first = False
            for ev in res.report.events:
                if ev.op not in ops:
                    ops.append(ev.op)
                if ev.match:
                    agree[ev.op] += ev.result.predicted != "not-run"
                    continue
                disagree[ev.op] += 1
                if not seen_first:
                    first[ev.op] += 1
                    seen_first = True
        order = sorted(ops, key=lambda op: -(agree[op] + disagree[op]))
        return [OpCount(op, agree[op], disagree[op], first[op]) for op in order]


def random_cases(count: int, seed: int, depth: int, features: Features) -> list[Case]:
    """*count* random traces of *seed*, at most *depth* events each (`randtrace`)."""
    out = []
    for k in range(count):
        trace = random_trace(seed, k, max_events=depth, features=features)
        out.append(Case(name=f"random-{k}", trace=trace, origin="random"))
    return out


def litmus_cases(directory: Path) -> list[Case]:
    """The ``*.json`` traces of *directory*, by name.

    Raises:
        InputError: the directory does not exist or holds no trace, or a trace is
            malformed (located in its file).
    """
    if not directory.is_dir():
        got = "a file" if directory.exists() else "nothing"
        raise InputError(Span("<command line>", 1, 1), f"--litmus {directory}: expected a "
                         f"directory of fsgs-trace/1 files, got {got}")  # fmt: skip
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise InputError(Span("<command line>", 1, 1),
                         f"--litmus {directory}: expected *.json traces, got none")  # fmt: skip
    cases = []
    for path in paths:
        loaded = load_trace(path)
        cases.append(Case(name=str(path), trace=loaded.trace, origin="litmus", spans=loaded.spans))
    return cases


def features_of(info: MachineInfo) -> Features:
    """What random traces may use on the machine *info* describes."""
    return Features(
        ia32=info.ia32_emulation or not info.c_probe_ran,
        modify_ldt=info.modify_ldt,
        ptrace=info.ptrace,
    )


def conform(
    cases: Sequence[Case],
    policy: ast.Policy,
    model: CpuModel,
    *,
    runs: int = 1,
    recheck: int = 10,
    seed: int = 0,
    depth: int = 0,
    litmus: Sequence[str] = (),
    info: MachineInfo | None = None,
    jobs: int = 2,
    settings: Mapping[str, bool | int] | None = None,
    timeout_s: int = cgen.DEFAULT_TIMEOUT_S,
    progress: Callable[[CaseResult], None] | None = None,
) -> ConformReport:
    """Replay every case *runs* times against *policy* on *model*, *jobs* at a time, and
    each disagreeing one *recheck* more times (0: not at all).

    *seed*, *depth* and *litmus* are recorded in the report (how the cases were made).

    Raises:
        CannotReplayError: this machine cannot replay anything (no gcc, no FSGSBASE, ...).
        InputError: a litmus trace names a CPU the model's world does not have.
    """
    if runs < 1 or jobs < 1 or recheck < 0:
        msg = f"runs and jobs must be >= 1 and recheck >= 0, got {runs}, {jobs}, {recheck}"
        raise ValueError(msg)
    machine = info if info is not None else probe()
    why = machine.native_unavailable()
    if why:
        raise CannotReplayError(why)

    def one(case: Case) -> CaseResult:
        try:
            report = replay(case.trace, policy, model, name=case.name, runs=runs,
                            settings=settings, info=machine, timeout_s=timeout_s,
                            spans=case.spans)  # fmt: skip
            again = None
            if not report.agrees and recheck:
                again = replay(case.trace, policy, model, name=case.name, runs=recheck,
                               settings=settings, info=machine, timeout_s=timeout_s)  # fmt: skip
            result = CaseResult(case=case, report=report, recheck=again)
        except CannotReplayError as exc:
            result = CaseResult(case=case, report=None, skipped=str(exc))
        except InternalError as exc:
            result = CaseResult(case=case, report=None, error=str(exc))
        if progress is not None:
            progress(result)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = tuple(pool.map(one, cases))
    random_count = sum(c.origin == "random" for c in cases)
    return ConformReport(
        policy=policy.name, cpu=model.name, runs=runs, recheck=recheck, seed=seed, depth=depth,
        random=random_count, litmus=tuple(litmus), results=results,
    )  # fmt: skip
