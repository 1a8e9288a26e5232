# SPDX-License-Identifier: MIT
"""The replay takes no context switch the trace does not call for (found by `conform`).

* The task is a tracee only during its ptrace stops: it calls PTRACE_TRACEME right before
  stopping itself and the tracer detaches after its events. Traced all along, every
  signal (the ``signal`` event's SIGUSR1, a fault's SIGSEGV, SIGCHLD after a fork) was a
  ptrace stop too, whose switch-in reloaded a selector whose LDT entry had been deleted:
  the machine showed 0 where the model keeps the selector.
* Woken by the other task at the end of a ``yield``, the task waits until that task has
  blocked again, so that the other task does not preempt it later.
"""

from __future__ import annotations

from fsgs_smt.native import cgen
from fsgs_smt.native.machine import probe
from fsgs_smt.native.run import replay
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import (
    Event,
    ModifyLdt,
    MovSeg,
    Observe,
    ObserveVia,
    PtraceField,
    PtracePeek,
    Seg,
    Signal,
    Trace,
    UserDesc,
    Yield,
)
from tests.native.conftest import requires_native
from tests.native.test_replay import explain

DATA = UserDesc(base_addr=0xBAADF00D, limit=0xFFFFF, seg_32bit=1, limit_in_pages=1)
EMPTY = UserDesc(read_exec_only=1, seg_not_present=1)


def _deleted_under_fs(*then: Event) -> Trace:
    """LDT entry 0 loaded into FS (selector 4), then deleted; then *then*."""
    return Trace(events=(
        ModifyLdt(entry=0, desc=DATA), MovSeg(seg=Seg.FS, selector=4),
        ModifyLdt(entry=0, desc=EMPTY), *then,
    ))  # fmt: skip


def test_the_task_is_traced_only_during_its_stops() -> None:
    """PTRACE_TRACEME in each stop, PTRACE_DETACH after it; never PTRACE_TRACEME at the
    start of the task."""
    text = cgen.c_source(_deleted_under_fs(Signal(), PtracePeek(field=PtraceField.FS)))
    stop = text[text.index("static UNUSED void stop_for_tracer") :]

    assert "rsys(NR_ptrace, PTRACE_TRACEME" in stop[: stop.index("S->stop_at = k;")]
    assert "ptrace(PTRACE_DETACH, pid, 0, 0);" in text
    assert "ptrace(PTRACE_TRACEME, 0, 0, 0)" not in text


def test_the_task_waits_until_the_other_task_blocks() -> None:
    text = cgen.c_source(Trace(events=(Yield(),)))

    assert "t->parked = last;" in text
    assert "while (o->parked != token)" in text


@requires_native
def test_signals_outside_the_ptrace_stops_are_not_ptrace_stops() -> None:
    """The selector of a deleted LDT entry stays through a signal and a fault-observe,
    as the model says, although the trace has a ptrace event (after them)."""
    trace = _deleted_under_fs(Signal(), Observe(via=ObserveVia.FAULT),
                              PtracePeek(field=PtraceField.FS))  # fmt: skip
    info = probe()
    report = replay(trace, load_checked("linux-5.9"), CPU_MODELS[info.cpu_model], runs=3,
                    info=info)  # fmt: skip

    assert report.agrees, explain(report)
    assert "0x4" == report.events[3].state.predicted["fs"]
    assert "0x4" == report.events[5].result.predicted


@requires_native
def test_yields_with_a_deleted_entry_under_the_selector() -> None:
    """Each yield reloads FS from the LDT (deleted: 0); nothing else switches the task."""
    trace = _deleted_under_fs(Observe(), Yield(), Observe(), Yield(), Observe())
    info = probe()
    report = replay(trace, load_checked("linux-5.9"), CPU_MODELS[info.cpu_model], runs=5,
                    info=info)  # fmt: skip

    assert report.agrees, explain(report)
    assert "0x4" == report.events[3].result.predicted["fs"]
    assert "0x0" == report.events[5].result.predicted["fs"]
