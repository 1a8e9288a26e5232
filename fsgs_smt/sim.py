# SPDX-License-Identifier: MIT
"""The concrete simulator: the one semantics over Python integers.

Layer: sim. Imports `semantics.*`, `policy.*`, `errors`. Never a solver.

Runs a trace event by event and renders each event's result as fsgs-trace/1
writes it; keeps the world after every event for the table renderer and for
re-checking counterexamples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fsgs_smt.errors import InputError
from fsgs_smt.policy import ast
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.domain import CONCRETE
from fsgs_smt.semantics.events import (
    ArchPrctl,
    Event,
    Fork,
    ModifyLdt,
    MovSeg,
    Observe,
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
from fsgs_smt.semantics.interp import Machine
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.semantics.step import Semantics
from fsgs_smt.source import Span

# Linux errno numbers (include/uapi/asm-generic/errno-base.h, errno.h): ABI, not policy.
ERRNO_NAMES = {1: "EPERM", 3: "ESRCH", 5: "EIO", 14: "EFAULT", 22: "EINVAL", 38: "ENOSYS"}
_SIGNALS = {1: "SIGSEGV", 2: "SIGBUS", 3: "SIGILL"}

JSON = object


@dataclass(frozen=True, slots=True)
class SimRun:
    """A simulated trace: results as fsgs-trace/1 writes them, and the world after each event."""

    trace: Trace
    results: tuple[JSON, ...]
    initial: dict[str, int | bool]
    worlds: tuple[dict[str, int | bool], ...]
    raw: tuple[dict[str, int | bool], ...]


def hex_(value: int) -> str:
    """A value as fsgs-trace/1 writes numbers."""
    return hex(value)


def errno_or_zero(value: int) -> JSON:
    """0, or the negative errno name ("-EPERM") of a 64-bit two's-complement return value."""
    if value == 0:
        return 0
    if value >= 1 << 63:
        num = (1 << 64) - value
        return f"-{ERRNO_NAMES.get(num, f'E{num}')}"
    return hex_(value)


def _observed(values: Mapping[str, int | bool], prefix: str = "") -> JSON:
    if values.get(f"{prefix}fault", 0):
        return _SIGNALS[int(values[f"{prefix}fault"])]
    return {
        "fs": hex_(int(values[f"{prefix}fs"])),
        "fs_base": hex_(int(values[f"{prefix}fs_base"])),
        "gs": hex_(int(values[f"{prefix}gs"])),
        "gs_base": hex_(int(values[f"{prefix}gs_base"])),
    }


def render_result(event: Event, values: Mapping[str, int | bool]) -> JSON:
    """The fsgs-trace/1 result of *event* from the step's named result values."""
    if not values["ran"]:
        return "not-run"
    match event:
        case MovSeg() | WrBase():
            fault = int(values["fault"])
            return "ok" if fault == 0 else _SIGNALS[fault]
        case ArchPrctl(code=code):
            ret = int(values["ret"])
            return errno_or_zero(ret) if code.is_set else hex_(ret)
        case ModifyLdt() | SetThreadArea() | PtracePoke() | PtraceSetregs():
            return errno_or_zero(int(values["ret"]))
        case PtracePeek():
            return hex_(int(values["ret"]))
        case Observe() | Fork():
            return _observed(values)
        case Signal():
            return {
                "handler": _observed(values, "handler."),
                "sigcontext_gs": hex_(int(values["sigcontext_gs"])),
                "sigcontext_fs": hex_(int(values["sigcontext_fs"])),
            }
    return "ok"


def _iter_all(events: tuple[Event, ...]) -> list[Event]:
    out: list[Event] = []
    for e in events:
        out.append(e)
        if isinstance(e, Yield):
            out.extend(e.other)
    return out


def bounds_for(trace: Trace, ncpus: int = 2) -> Bounds:
    """A world big enough for every LDT entry the trace writes (at least 8 slots)."""
    slots = 8
    for e in _iter_all(trace.events):
        if isinstance(e, ModifyLdt) and e.entry < 8192:
            slots = max(slots, e.entry + 1)
    return Bounds(ncpus=ncpus, ldt_slots=slots)


def make_semantics(
    policy: ast.Policy,
    model: CpuModel,
    bounds: Bounds,
    settings: Mapping[str, bool | int] | None = None,
) -> Semantics:
    """The concrete semantics of *policy* on *model*."""
    return Semantics(Machine(CONCRETE, policy, model, bounds, settings))


def simulate(
    policy: ast.Policy,
    trace: Trace,
    model: CpuModel,
    *,
    settings: Mapping[str, bool | int] | None = None,
    ncpus: int = 2,
    spans: Mapping[tuple[int | str, ...], Span] | None = None,
) -> SimRun:
    """Run *trace* from the default initial world.

    Raises:
        InputError: an event names a CPU the world does not have.
    """
    for i, e in enumerate(trace.events):
        if hasattr(e, "cpu") and not 0 <= e.cpu < ncpus:
            span = (spans or {}).get((i, "cpu"))
            raise InputError(
                span, f"migrate to CPU {e.cpu}: expected a CPU number in 0..{ncpus - 1}"
            )
    sem = make_semantics(policy, model, bounds_for(trace, ncpus), settings)
    world = sem.initial_world()
    initial = dict(world)
    results: list[JSON] = []
    worlds: list[dict[str, int | bool]] = []
    raw: list[dict[str, int | bool]] = []
    for event in trace.events:
        outcome = sem.step(world, event)
        world = outcome.world
        results.append(render_result(event, outcome.result))
        worlds.append(dict(world))
        raw.append(dict(outcome.result))
    return SimRun(trace, tuple(results), initial, tuple(worlds), tuple(raw))


def result_entries(run: SimRun) -> list[dict[str, JSON]]:
    """The ``results`` array of fsgs-trace/1 output."""
    return [
        {"i": i, "op": op_name(e), "result": r}
        for i, (e, r) in enumerate(zip(run.trace.events, run.results, strict=True))
    ]
