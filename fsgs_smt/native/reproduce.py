# SPDX-License-Identifier: MIT
"""Standalone C reproducers of counterexamples: generated, built, run N times.

Layer: native. Imports `native.cgen`, `native.run`, `native.render`, `native.machine` and
the layers below; never a solver or the terminal; prints nothing.

A reproducer is the replay program of the trace (`cgen.c_source`) with the model's
prediction built in (`cgen.Expected`): each event's result and the task's state after it,
as `render.value_text` writes them, for one policy and CPU model. It runs the trace once,
prints the prediction beside what it observed, and says VIOLATION REPRODUCED (exit 0)
when every value is the predicted one: the prediction of a counterexample trace is the
violating outcome, so a run that shows all of it shows the violation. NOT REPRODUCED
(exit 1) lists the values that differ; 2 is a run that failed (timeout, infrastructure
error), 3 a machine that cannot run it. `reproduce()` builds one and runs it N times:
reproduced Always, Sometimes or Never.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fsgs_smt.errors import CannotReplayError, InternalError
from fsgs_smt.native import cgen
from fsgs_smt.native.machine import MachineInfo, probe
from fsgs_smt.native.render import value_text
from fsgs_smt.native.run import (
    Seen,
    check_machine,
    compile_program,
    predict,
)
from fsgs_smt.policy import ast
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.events import Trace

REPRODUCED: Final = 0
NOT_REPRODUCED: Final = 1
RUN_FAILED: Final = 2
CANNOT_RUN: Final = 3
_CANNOT: Final = "CANNOT RUN on this machine: "


def expected(
    trace: Trace, policy: ast.Policy, model: CpuModel, *,
    settings: Mapping[str, bool | int] | None = None, heading: Sequence[str] = (),
    verdict: str = "",
) -> cgen.Expected:  # fmt: skip
    """The model's prediction for *trace* (`run.predict`) as a reproducer's text.

    Raises:
        InputError: the trace names a CPU the model's world does not have.
    """
    prediction = predict(policy, trace, model, settings=settings)
    return cgen.Expected(
        heading=tuple(heading) or (f"reproducer: {policy.name} on {model.name}",),
        results=tuple(value_text(r) for r in prediction.results),
        states=tuple(value_text(s) for s in prediction.states),
        verdict=verdict or (
            f"every result and state is the one {policy.name} predicts on {model.name}"
        ),
    )  # fmt: skip


def reproducer_source(
    trace: Trace, policy: ast.Policy, model: CpuModel, *,
    settings: Mapping[str, bool | int] | None = None, name: str = "reproducer",
    heading: Sequence[str] = (), verdict: str = "", timeout_s: int = cgen.DEFAULT_TIMEOUT_S,
) -> str:  # fmt: skip
    """The standalone C reproducer of *trace* under *policy* on *model* (module docstring).

    Raises:
        CannotReplayError: the replay cannot execute the trace (`cgen.unsupported`).
        InputError: the trace names a CPU the model's world does not have.
    """
    why = cgen.unsupported(trace)
    if why:
        raise CannotReplayError(why)
    expect = expected(trace, policy, model, settings=settings, heading=heading, verdict=verdict)
    return cgen.c_source(trace, name=name, timeout_s=timeout_s, expect=expect)


@dataclass(frozen=True, slots=True)
class ReproRun:
    """One execution of a reproducer: its exit code and what it printed."""

    code: int
    output: str

    @property
    def reproduced(self) -> bool:
        """The run showed every predicted value (exit code 0)."""
        return self.code == REPRODUCED


@dataclass(frozen=True, slots=True)
class Reproduction:
    """A reproducer built once and run N times."""

    name: str
    policy: str
    cpu: str
    runs: tuple[ReproRun, ...]
    c_source: str | None  # where the program was kept, if anywhere

    @property
    def reproduced_runs(self) -> int:
        """How many runs reproduced the violation."""
        return sum(r.reproduced for r in self.runs)

    @property
    def seen(self) -> Seen:
        """Whether the violation was reproduced in every run, in some, or in none."""
        n = self.reproduced_runs
        if n == len(self.runs):
            return "Always"
        return "Sometimes" if n else "Never"

    def first_failure(self) -> ReproRun | None:
        """The first run that did not reproduce it, if any (its output says why)."""
        return next((r for r in self.runs if not r.reproduced), None)


def run_reproducer(exe: Path, *, timeout_s: int = cgen.DEFAULT_TIMEOUT_S) -> ReproRun:
    """Run a built reproducer once.

    Raises:
        CannotReplayError: it says this machine cannot run it (exit code 3).
        InternalError: it crashed or did not end in time (a bug of the generator).
    """
    try:
        done = subprocess.run(  # noqa: S603 - the program we just built
            [str(exe)], capture_output=True, text=True, timeout=timeout_s + 10, check=False
        )
    except subprocess.TimeoutExpired:
        msg = f"reproducer {exe} did not end within {timeout_s + 10} s"
        raise InternalError(msg) from None
    if done.returncode == CANNOT_RUN:
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_CANNOT)), "")
        raise CannotReplayError(line.removeprefix(_CANNOT) or done.stdout.strip()[:200])
    if done.returncode not in (REPRODUCED, NOT_REPRODUCED, RUN_FAILED):
        msg = f"reproducer {exe} failed with exit code {done.returncode}: {done.stderr[:200]}"
        raise InternalError(msg)
    return ReproRun(code=done.returncode, output=done.stdout)


def reproduce(
    trace: Trace,
    policy: ast.Policy,
    model: CpuModel,
    *,
    runs: int = 5,
    name: str = "reproducer",
    settings: Mapping[str, bool | int] | None = None,
    heading: Sequence[str] = (),
    verdict: str = "",
    info: MachineInfo | None = None,
    keep_c: Path | None = None,
    timeout_s: int = cgen.DEFAULT_TIMEOUT_S,
) -> Reproduction:
    """Build the reproducer of *trace* (`reproducer_source`) once and run it *runs* times.

    *keep_c* is an existing directory to keep the C program and its executable in (the
    CLI checks it, as for ``replay --keep-c``); else they go in a temporary one.

    Raises:
        ValueError: *runs* < 1, or *keep_c* is not an existing directory.
        CannotReplayError: this machine (or the replay) cannot run the trace.
        InputError: the trace names a CPU the model's world does not have.
        InternalError: the program misbehaved (a bug of the generator).
    """
    if runs < 1:
        msg = f"runs must be >= 1, got {runs}"
        raise ValueError(msg)
    if keep_c is not None and not keep_c.is_dir():  # as `run.replay`: never made here
        msg = f"keep_c must be an existing directory, got {str(keep_c)!r}"
        raise ValueError(msg)
    machine = info if info is not None else probe()
    check_machine(trace, machine)
    source = reproducer_source(trace, policy, model, settings=settings, name=name,
                               heading=heading, verdict=verdict, timeout_s=timeout_s)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fsgs-repro-") as tmp:
        workdir = Path(tmp)
        if keep_c is not None:  # the program (and its executable) stay there
            workdir = keep_c
        exe = compile_program(trace, workdir, gcc=machine.gcc or "gcc", name=name,
                              timeout_s=timeout_s, source=source)  # fmt: skip
        done = tuple(run_reproducer(exe, timeout_s=timeout_s) for _ in range(runs))
    kept = str(exe.with_suffix(".c")) if keep_c is not None else None
    return Reproduction(name=name, policy=policy.name, cpu=model.name, runs=done, c_source=kept)
