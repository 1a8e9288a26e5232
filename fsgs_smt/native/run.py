# SPDX-License-Identifier: MIT
"""Native replay: build a trace's C program, run it on this machine, compare with the model.

Layer: native. Imports `semantics`, `sim`, `policy.ast`, `native.cgen`, `native.machine`;
never a solver or the terminal; prints nothing (the CLI renders the `ReplayReport`).

`replay()` is the whole pipeline: the model's prediction (`predict`: each event's result
as fsgs-trace/1 writes it, and the task's live FS/GS state after it), one compilation
(`compile_program`), N runs (`run_program`, each parsed by `parse_output` into
fsgs-trace/1 values), and the litmus-style comparison (`compare`): per event MATCH or
MISMATCH with both values, per trace whether the predicted outcome was seen Never,
Sometimes or Always.

The machine also acts on the task of its own accord. An interrupt that hits the task in
user mode returns through IRET, which clears a null selector 1..3 (a timer tick, an IPI);
a task that sleeps or is preempted is switched out and back in, which reloads its TLS
descriptors (after an exec, say, the CPU's GDT still holds the old ones until then). A run
that differs from the prediction is checked against the model once more with one such
event (`ASYNCHRONOUS`) inserted between two events (`async_predictions`): if that explains
the whole run, the report says so (`ReplayReport.interrupted`), and a report agrees with
the model (`ReplayReport.agrees`) when every run matched or was so explained and the runs
that matched outright are the majority. A model that is wrong everywhere still fails: it
cannot have a majority of runs explained only by such events.

The state after an event is what the task reads right after it: its CPU's registers
(`props.view`). After a tracer event the task is stopped; it reads its state once it
resumes, after the last tracer event of the stop, so that event is compared with the
model's world after the resume (the model resumes a stopped task at the next event that
is not a tracer operation); the tracer events before it have no state to compare.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from fsgs_smt.errors import CannotReplayError, FsgsError, InternalError
from fsgs_smt.native import cgen
from fsgs_smt.native.machine import MachineInfo, probe
from fsgs_smt.policy import ast
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.events import (
    Abi,
    ArchPrctl,
    Event,
    Fork,
    Interrupt,
    Migrate,
    ModifyLdt,
    MovSeg,
    Observe,
    ObserveVia,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    SetThreadArea,
    Signal,
    Trace,
    WrBase,
    Yield,
    op_name,
)
from fsgs_smt.semantics.props import view
from fsgs_smt.semantics.state import STATUS_RUNNING
from fsgs_smt.sim import bounds_for, errno_or_zero, hex_, make_semantics, simulate
from fsgs_smt.source import Span

JSON = Any
Seen = Literal["Always", "Sometimes", "Never"]

DEFAULT_RUNS: Final = 5
COMPILE_TIMEOUT_S: Final = 120.0
STATE_KEYS: Final = ("fs", "fs_base", "gs", "gs_base")
_TRACER = (PtracePeek, PtracePoke, PtraceSetregs)
_U64: Final = 2**64 - 1


# -- the prediction ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prediction:
    """What the model predicts per event: its result, and the task's state after it.

    A state is ``{"fs": "0x0", "fs_base": ..., "gs": ..., "gs_base": ...}`` or None where the
    task cannot look (it is dead after a fault, or stopped between two tracer events).
    """

    results: tuple[JSON, ...]
    states: tuple[dict[str, str] | None, ...]


def _state(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: hex_(int(values[k])) for k in STATE_KEYS}


def predict(
    policy: ast.Policy,
    trace: Trace,
    model: CpuModel,
    *,
    settings: Mapping[str, bool | int] | None = None,
    ncpus: int = 2,
    spans: Mapping[tuple[int | str, ...], Span] | None = None,
) -> Prediction:
    """The model's results and after-states for *trace* (see `Prediction`).

    Raises:
        InputError: the trace names a CPU the world does not have (from `simulate`),
            located with *spans* (`LoadedTrace.spans`).
    """
    run = simulate(policy, trace, model, settings=settings, ncpus=ncpus, spans=spans)
    sem = make_semantics(policy, model, bounds_for(trace, ncpus), settings)
    events = trace.events
    states: list[dict[str, str] | None] = []
    for i, world in enumerate(run.worlds):
        nxt = events[i + 1] if i + 1 < len(events) else None
        dead = int(world["T.status"]) != STATUS_RUNNING
        if dead or (isinstance(events[i], _TRACER) and isinstance(nxt, _TRACER)):
            states.append(None)
        elif world["T.stopped"]:  # it resumes, then reads its registers
            resumed = sem.step(world, Observe(via=ObserveVia.RDBASE)).result
            states.append(_state(resumed))
        else:
            states.append(_state(view(sem, world)))
    return Prediction(results=run.results, states=tuple(states))


# What the machine may do to the task between two events of its own accord, each as model
# events: an interrupt (its IRET), a context switch (the task slept or was preempted: the
# other task ran), and a preemption by an interrupt (a switch, then the IRET).
ASYNCHRONOUS: Final[Mapping[str, tuple[Event, ...]]] = {
    "interrupt": (Interrupt(),),
    "context switch": (Yield(),),
    "preemption": (Yield(), Interrupt()),
}


def async_predictions(
    policy: ast.Policy,
    trace: Trace,
    model: CpuModel,
    *,
    settings: Mapping[str, bool | int] | None = None,
    ncpus: int = 2,
) -> list[tuple[int, str, Prediction]]:
    """For each place *k* (0..len) before event *k* and each kind of `ASYNCHRONOUS` event,
    the prediction of the trace with that event there: ``(k, kind, prediction)``, where
    the prediction covers the inserted events too.

    A place where the model cannot take the event (the trace is not valid with it) is left
    out.
    """
    events = trace.events
    out = []
    for k in range(len(events) + 1):
        for kind, extra in ASYNCHRONOUS.items():
            longer = Trace(events=(*events[:k], *extra, *events[k:]))
            try:
                pred = predict(policy, longer, model, settings=settings, ncpus=ncpus)
            except FsgsError:
                continue
            out.append((k, kind, pred))
    return out


# -- one native run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NativeEvent:
    """What one run observed for one event, in fsgs-trace/1 form (state as in `Prediction`)."""

    result: JSON
    state: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class NativeRun:
    """One execution of the program: per-event observations and how the task ended."""

    events: tuple[NativeEvent, ...]
    task: str  # "exit 0", "signal 9", ...
    error: str  # "" for a clean run; else what went wrong (timeout, lost events, ...)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _obs(vec: Sequence[str] | None) -> dict[str, str] | None:
    if vec is None:
        return None
    return {k: hex_(int(v, 16)) for k, v in zip(STATE_KEYS, vec, strict=True)}


def native_result(event: Event, rec: Mapping[str, Any]) -> JSON:
    """The fsgs-trace/1 result of *event* from its record in the program's output.

    Records that cannot be rendered become ``"unfinished"`` (the event started and never
    ended) or ``"missing"`` (the observation it should carry is not there).
    """
    state = int(rec["state"])
    if state == 0:
        return "not-run"
    if state != 2:
        return "unfinished"
    sig = int(rec["sig"])
    ret = int(rec["ret"], 16) & _U64
    err = bool(rec["err"])
    match event:
        case MovSeg() | WrBase():
            return "ok" if sig == 0 else _signal_name(sig)
        case ArchPrctl(code=code):
            return errno_or_zero(ret) if code.is_set or err else hex_(ret)
        case ModifyLdt() | SetThreadArea() | PtracePoke() | PtraceSetregs():
            return errno_or_zero(ret)
        case PtracePeek():
            return errno_or_zero(ret) if err else hex_(ret)
        case Observe() | Fork():
            return _obs(rec.get("obs")) or "missing"
        case Signal():
            handler = _obs(rec.get("obs"))
            sc = rec.get("sc")
            if handler is None or sc is None:
                return "missing"
            return {
                "handler": handler,
                "sigcontext_gs": hex_(int(sc[1], 16)),
                "sigcontext_fs": hex_(int(sc[0], 16)),
            }
    return "ok"


def parse_output(trace: Trace, text: str) -> NativeRun:
    """The `NativeRun` in the program's standard output (see `cgen` for the lines).

    Raises:
        CannotReplayError: the program reported that the machine cannot run it.
        InternalError: the output is not what the program prints.
    """
    records: dict[int, dict[str, Any]] = {}
    end: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"replay program printed a line that is not JSON: {line[:80]!r} ({exc})"
            raise InternalError(msg) from None
        if "cannot_run" in obj:
            raise CannotReplayError(str(obj["cannot_run"]))
        if "i" in obj:
            records[int(obj["i"])] = obj
        elif "end" in obj:
            end = obj
    n = len(trace.events)
    if end is None or sorted(records) != list(range(n)):
        msg = f"replay program output is incomplete: {len(records)} of {n} events, end line " + (
            "present" if end else "missing"
        )
        raise InternalError(msg)
    events = []
    for i, event in enumerate(trace.events):
        rec = records[i]
        events.append(NativeEvent(result=native_result(event, rec), state=_obs(rec.get("after"))))
    problems = []
    if end["timeout"]:
        problems.append("timeout: the program killed its task")
    if end["error"]:
        args = ", ".join(str(a) for a in end["error_args"])
        problems.append(f"{end['error']}: {args}")
    if end["task"] != "exit 0" and not end["timeout"]:
        problems.append(f"the task ended with {end['task']}")
    elif not end["finished"] and not problems:
        problems.append("the task exited before the end of the trace")
    return NativeRun(events=tuple(events), task=str(end["task"]), error="; ".join(problems))


# -- building and running -----------------------------------------------------------------------


def compile_program(
    trace: Trace, workdir: Path, *, gcc: str = "gcc", name: str = "trace", ncpus: int = 2,
    timeout_s: int = cgen.DEFAULT_TIMEOUT_S, werror: bool = False, source: str | None = None,
) -> Path:  # fmt: skip
    """Write ``workdir/<stem>.c`` for *trace* and compile it; the executable's path.

    *source* is the program's text (default: `cgen.c_source` of *trace*, the replay
    program; a reproducer passes its own, generated for the same trace).

    Raises:
        CannotReplayError: the trace needs something the replay cannot do, or gcc failed (a
            missing static libc for a trace with exec, say); the reason is gcc's first error.
    """
    why = cgen.unsupported(trace, ncpus=ncpus)
    if why:
        raise CannotReplayError(why)
    stem = Path(name).stem
    stem = stem if stem.strip(".") else "trace"  # "", "." and ".." name no file
    workdir = workdir.absolute()  # an executable "./x" run as "x" would be looked up on PATH
    path = workdir / f"{stem}.c"
    exe = workdir / stem
    if source is None:
        source = cgen.c_source(trace, name=name, ncpus=ncpus, timeout_s=timeout_s)
    try:
        path.write_text(source)
    except OSError as exc:
        raise CannotReplayError(f"cannot write {path}: {exc.strerror or exc}") from None
    args = [gcc, *(["-Werror"] if werror else []), *cgen.build_for(trace).gcc_args(
        str(path), str(exe))]  # fmt: skip
    try:
        built = subprocess.run(  # noqa: S603 - the compiler and arguments we chose
            args, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CannotReplayError(f"cannot run {gcc}: {exc}") from None
    if built.returncode != 0:
        lines = [ln for ln in built.stderr.splitlines() if "error" in ln] or ["(no message)"]
        raise CannotReplayError(f"{gcc} could not build the replay program: {lines[0].strip()}")
    return exe


def run_program(exe: Path, trace: Trace, *, timeout_s: int = cgen.DEFAULT_TIMEOUT_S) -> NativeRun:
    """Run the compiled program once and parse what it printed.

    Raises:
        CannotReplayError: the program says the machine cannot run it.
        InternalError: it printed something else, or did not end in time.
    """
    try:
        done = subprocess.run(  # noqa: S603 - the program we just built
            [str(exe.absolute())], capture_output=True, text=True, timeout=timeout_s + 10,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        msg = f"replay program {exe} did not end within {timeout_s + 10} s"
        raise InternalError(msg) from None
    except OSError as exc:  # a directory mounted noexec, say
        raise CannotReplayError(f"cannot run {exe}: {exc.strerror or exc}") from None
    if done.returncode != 0 and "cannot_run" not in done.stdout:
        msg = f"replay program {exe} failed with exit code {done.returncode}: {done.stderr[:200]}"
        raise InternalError(msg)
    return parse_output(trace, done.stdout)


# -- the comparison -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observed:
    """One value observed for one check, and in how many runs."""

    value: JSON
    runs: int


@dataclass(frozen=True, slots=True)
class CheckReport:
    """One compared value of one event over all runs: the prediction and what was seen."""

    predicted: JSON
    observed: tuple[Observed, ...]  # distinct values, most frequent first
    matched_runs: int
    runs: int

    @property
    def match(self) -> bool:
        """True when every run observed the predicted value."""
        return self.matched_runs == self.runs


@dataclass(frozen=True, slots=True)
class EventReport:
    """One event: its result and the task's state after it, each predicted vs observed."""

    i: int
    op: str
    event: Event
    result: CheckReport
    state: CheckReport

    @property
    def match(self) -> bool:
        """Both checks matched in every run."""
        return self.result.match and self.state.match


@dataclass(frozen=True, slots=True)
class Interrupted:
    """A run that did not match the prediction, but matched the prediction of the trace
    with one asynchronous event (*kind*, an `ASYNCHRONOUS` key) before event *before*
    (``len``: after the last)."""

    run: int  # counted from 1
    before: int
    kind: str = "interrupt"


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """A trace replayed natively N times and compared with one policy on one CPU model."""

    name: str
    trace: Trace
    policy: str
    cpu: str
    runs: int
    matched_runs: int  # runs in which every event matched and nothing went wrong
    events: tuple[EventReport, ...]
    errors: tuple[str, ...]  # "run 3: timeout: ..." for runs that went wrong
    c_source: str | None  # where the C program was kept (--keep-c), if anywhere
    interrupted: tuple[Interrupted, ...] = ()  # the other runs that an interrupt explains

    @property
    def seen(self) -> Seen:
        """Whether the predicted outcome was seen in every run, in some, or in none."""
        if self.matched_runs == self.runs:
            return "Always"
        return "Sometimes" if self.matched_runs else "Never"

    @property
    def ok(self) -> bool:
        """True when every run matched the prediction."""
        return self.seen == "Always"

    @property
    def agrees(self) -> bool:
        """Every run matched the prediction or is explained by one asynchronous event,
        and the runs that matched outright are the majority."""
        explained = len(self.interrupted)
        return self.matched_runs + explained == self.runs and self.matched_runs > explained


def _key(value: JSON) -> str:
    return json.dumps(value, sort_keys=True)


def _check(predicted: JSON, values: Sequence[JSON]) -> CheckReport:
    counts = Counter(_key(v) for v in values)
    first: dict[str, JSON] = {}
    for v in values:
        first.setdefault(_key(v), v)
    observed = tuple(Observed(first[k], n) for k, n in counts.most_common())
    return CheckReport(
        predicted=predicted,
        observed=observed,
        matched_runs=counts.get(_key(predicted), 0),
        runs=len(values),
    )


def _same(run: NativeRun, results: Sequence[JSON], states: Sequence[JSON]) -> bool:
    return all(
        _key(r.result) == _key(p) and _key(r.state) == _key(s)
        for r, p, s in zip(run.events, results, states, strict=True)
    )


def _explained(run: NativeRun, prediction: Prediction, k: int, alt: Prediction) -> bool:
    """*run* equals *alt*, the prediction with asynchronous events inserted before event
    *k*: the events before them as predicted, the events from *k* on as *alt* has them.
    They may have come between event k - 1 and the task's read of its registers, so that
    event's state may also be the one after them."""
    extra = len(alt.results) - len(prediction.results)
    results = [*prediction.results[:k], *alt.results[k + extra :]]
    states = [*prediction.states[:k], *alt.states[k + extra :]]
    if _same(run, results, states):
        return True
    if k == 0:
        return False
    states[k - 1] = alt.states[k + extra - 1]
    return _same(run, results, states)


def compare(
    name: str, trace: Trace, policy: str, cpu: str, prediction: Prediction,
    runs: Sequence[NativeRun], *, c_source: str | None = None,
    alternatives: Callable[[], Sequence[tuple[int, str, Prediction]]] | None = None,
) -> ReplayReport:  # fmt: skip
    """The litmus-style report of *runs* against *prediction*.

    *alternatives* gives the predictions with one asynchronous event inserted
    (`async_predictions`); it is called only if some run differs, and a run it explains is
    recorded in `ReplayReport.interrupted`.
    """
    events = []
    for i, event in enumerate(trace.events):
        events.append(
            EventReport(
                i=i,
                op=op_name(event),
                event=event,
                result=_check(prediction.results[i], [r.events[i].result for r in runs]),
                state=_check(prediction.states[i], [r.events[i].state for r in runs]),
            )
        )
    matched = 0
    errors = []
    interrupted = []
    alts: Sequence[tuple[int, str, Prediction]] | None = None
    for n, run in enumerate(runs, 1):
        if run.error:
            errors.append(f"run {n}: {run.error}")
            continue
        if _same(run, prediction.results, prediction.states):
            matched += 1
            continue
        if alternatives is None:
            continue
        if alts is None:
            alts = alternatives()
        found = next(((k, kind) for k, kind, alt in alts if _explained(run, prediction, k, alt)),
                     None)  # fmt: skip
        if found is not None:
            interrupted.append(Interrupted(run=n, before=found[0], kind=found[1]))
    return ReplayReport(
        name=name, trace=trace, policy=policy, cpu=cpu, runs=len(runs), matched_runs=matched,
        events=tuple(events), errors=tuple(errors), c_source=c_source,
        interrupted=tuple(interrupted),
    )  # fmt: skip


def check_machine(trace: Trace, info: MachineInfo) -> None:
    """Raise `CannotReplayError` if this machine cannot replay *trace* natively (one line why)."""
    why = info.native_unavailable()
    if why:
        raise CannotReplayError(why)
    events = list(trace.events)
    for e in trace.events:
        if isinstance(e, Yield):
            events.extend(e.other)
    if any(isinstance(e, _TRACER) for e in events) and not info.ptrace:
        raise CannotReplayError("the trace has ptrace events, but PTRACE_TRACEME fails here")
    if any(isinstance(e, ModifyLdt) for e in events) and not info.modify_ldt:
        raise CannotReplayError("the trace calls modify_ldt, which this kernel refuses")
    ia32 = any(isinstance(e, SetThreadArea) and e.abi is Abi.IA32 for e in events)
    if ia32 and info.c_probe_ran and not info.ia32_emulation:
        raise CannotReplayError("the trace uses int $0x80, but IA32 emulation is off here")
    needed = 1 + max([int(e.cpu) for e in events if isinstance(e, Migrate)], default=0)
    if info.ncpus < max(needed, 2):
        raise CannotReplayError(
            f"the replay needs {max(needed, 2)} CPUs, this machine has {info.ncpus}"
        )


def replay(
    trace: Trace,
    policy: ast.Policy,
    model: CpuModel,
    *,
    name: str = "trace",
    runs: int = DEFAULT_RUNS,
    settings: Mapping[str, bool | int] | None = None,
    keep_c: Path | None = None,
    info: MachineInfo | None = None,
    timeout_s: int = cgen.DEFAULT_TIMEOUT_S,
    spans: Mapping[tuple[int | str, ...], Span] | None = None,
) -> ReplayReport:
    """Replay *trace* natively *runs* times and compare with *policy* on *model*.

    Args:
        trace: the trace (its ``cpu`` key is not used: the CPU is this machine's).
        policy: the policy whose prediction is compared.
        model: the CPU model of the prediction.
        name: the trace's name in the report (its file name).
        runs: how many times the compiled program runs.
        settings: policy setting overrides.
        keep_c: an existing directory to keep the C program in (``<stem>.c``, and the
            executable ``<stem>``); else a temporary one.
        info: the machine facts (default: `probe()`).
        timeout_s: each run's time bound.
        spans: the trace's source spans, to locate input errors.

    Raises:
        InputError: the trace names a CPU the model's world does not have.
        CannotReplayError: this machine (or the replay) cannot run the trace.
        InternalError: the program misbehaved (a bug of the replay).
    """
    if runs < 1:
        msg = f"runs must be >= 1, got {runs}"
        raise ValueError(msg)
    prediction = predict(policy, trace, model, settings=settings, spans=spans)
    machine = info if info is not None else probe()
    check_machine(trace, machine)
    gcc = machine.gcc or "gcc"
    with tempfile.TemporaryDirectory(prefix="fsgs-replay-") as tmp:
        workdir = Path(tmp)
        if keep_c is not None:  # the program (and its executable) stay there
            workdir = keep_c
        exe = compile_program(trace, workdir, gcc=gcc, name=name, timeout_s=timeout_s)
        results = [run_program(exe, trace, timeout_s=timeout_s) for _ in range(runs)]
    kept = str(exe.parent / f"{exe.name}.c") if keep_c is not None else None  # "a.b" keeps "a.b.c"
    return compare(
        name, trace, policy.name, model.name, prediction, results, c_source=kept,
        alternatives=lambda: async_predictions(policy, trace, model, settings=settings),
    )  # fmt: skip
