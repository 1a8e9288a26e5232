# SPDX-License-Identifier: MIT
"""An fsgs-trace/1 trace as one self-contained C program (gcc and libc only).

Layer: native. Imports `semantics.events`, `semantics.step` (the model's constants),
`sim` (errno names), `traces.fsgs_json` (event comments); pure: text in, text out,
nothing run or printed.

The program (`c_source`) has three parts:

* the *supervisor* (``main``): ordinary libc code. It maps a shared record area (a
  memfd, so that it survives the task's ``execve``), forks the task, is its tracer for
  each ptrace stop (the task calls ``PTRACE_TRACEME`` and stops itself; the supervisor
  performs the tracer's events and detaches (``PTRACE_DETACH``), so that no other signal
  of the trace becomes a ptrace stop, a context switch the model does not have), bounds the
  run with ``alarm``, kills and reaps every child, and prints one JSON object per line: a
  header, one line per event, an end line.
* the *task*: after its setup (pinning to CPU 0, signal handlers, the other tasks'
  threads, the ``struct user_desc`` page below 4 GiB) it sets FS and GS to the model's
  state "as after exec", (0, 0) each, and from then on runs with a foreign FS: no libc
  call, raw ``syscall`` instructions only, no stack protector; it writes every
  observation into the shared area and ends with a raw ``exit_group``, so it never needs
  its libc FS back (the supervisor, another process, prints).
* one *other task* per CPU that needs one: a raw ``clone(CLONE_VM|CLONE_THREAD)`` thread
  (it shares the LDT, like the model's ``O<c>``), pinned to its CPU, that starts from the
  model's other-task state and, when the task yields on its CPU, runs the ``yield``'s
  ``other`` events and hands the CPU back through a futex (the task blocks in
  ``FUTEX_WAIT`` until the other task's counter says it ran, on that CPU).

After every event the task reads its live state without disturbing it (``mov %fs``,
``mov %gs``, RDFSBASE, RDGSBASE). An ``observe`` with ``via: "fault"`` reads each base as
the kernel selftest's read_base() does, but exactly: a 1-byte load through the segment
whose SIGSEGV reports the base in ``si_addr``; where the base is mapped memory (no
fault), RDxBASE's value and a SIGSEGV from a PROT_NONE guard page, so that a signal
round trip follows the read either way (one per segment; the model takes one for both,
which is the same state on any kernel whose round trip keeps the bases).

Any page fault returns through IRET, which nulls a selector 1..3, so the task touches
every page it uses before the trace starts (and its private pages again inside a ``fork``
event, after the copy-on-write): the only faults left are the ones the events call for.
A fault of the task (SIGSEGV, SIGBUS, SIGILL) is caught, recorded and ends the trace; an
``exec`` re-executes the program itself (``/proc/self/exe --task K FD``), built
``-static-pie`` with an entry point that records FS and GS before libc starts.

The output lines (parsed by `fsgs_smt.native.run`)::

    {"replay": 1, "events": N, "ncpus": 2}
    {"i": 0, "state": 2, "sig": 0, "ret": "0x0", "err": 0, "obs": [fs, fs_base, gs, gs_base],
     "sc": [fs, gs], "after": [fs, fs_base, gs, gs_base]}        (obs, sc, after if recorded)
    {"end": 1, "task": "exit 0", "finished": 1, "timeout": 0, "error": "", "error_args": [a, b]}

or, when the machine cannot run the program at all, ``{"cannot_run": "reason"}``.
``state`` is 0 (not run), 1 (started, never finished) or 2 (done); ``ret`` is the raw
64-bit return value (a negative errno as two's complement); ``err`` is 1 when ``ret`` is
an error for a value-returning event (arch_prctl GET, ptrace_peek).

With ``expect`` (an `Expected`: the model's prediction as text) the same program is a
standalone reproducer (`fsgs_smt.native.reproduce`): instead of JSON lines it prints the
heading, each result and state predicted and observed (rendered as
`fsgs_smt.native.render.value_text` writes them), and VIOLATION REPRODUCED (exit 0),
NOT REPRODUCED with the differing values (1), RUN FAILED (2) or CANNOT RUN (3).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fsgs_smt.semantics.events import (
    Abi,
    ArchPrctl,
    Event,
    Exec,
    Fork,
    Interrupt,
    Migrate,
    ModifyLdt,
    MovSeg,
    Observe,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    SetThreadArea,
    Signal,
    Trace,
    UserDesc,
    WrBase,
    Yield,
    op_name,
    slot_offset,
)
from fsgs_smt.semantics.step import OTHER_FS_BASE, OTHER_FS_STRIDE
from fsgs_smt.sim import ERRNO_NAMES
from fsgs_smt.traces.fsgs_json import event_to_json

# x86-64 system-call numbers (arch/x86/entry/syscalls/syscall_64.tbl) and the one i386 call.
NR_MODIFY_LDT: Final = 154
NR_ARCH_PRCTL: Final = 158
NR_SET_THREAD_AREA_64: Final = 205
NR_SET_THREAD_AREA_IA32: Final = 243  # int $0x80 (arch/x86/entry/syscalls/syscall_32.tbl)
ARCH_CODES: Final = {"SET_GS": 0x1001, "SET_FS": 0x1002, "GET_FS": 0x1003, "GET_GS": 0x1004}

# The C field of struct user_regs_struct (<sys/user.h>) for each slot name of the format.
USER_REGS_C_FIELDS: Final = {
    "r15": "r15", "r14": "r14", "r13": "r13", "r12": "r12", "bp": "rbp", "bx": "rbx",
    "r11": "r11", "r10": "r10", "r9": "r9", "r8": "r8", "ax": "rax", "cx": "rcx",
    "dx": "rdx", "si": "rsi", "di": "rdi", "orig_ax": "orig_rax", "ip": "rip", "cs": "cs",
    "flags": "eflags", "sp": "rsp", "ss": "ss", "fs_base": "fs_base", "gs_base": "gs_base",
    "ds": "ds", "es": "es", "fs": "fs", "gs": "gs",
}  # fmt: skip

# Slots a PTRACE_SETREGS of the replay cannot change: they move the task's code or stack,
# or (cx, r11, flags) force the resume through IRET, which the format leaves out.
UNSAFE_SETREGS_SLOTS: Final = ("ip", "sp", "cs", "ss", "flags", "cx", "r11")

DEFAULT_TIMEOUT_S: Final = 10
PAGE: Final = 4096

_TRACER = (PtracePeek, PtracePoke, PtraceSetregs)


@dataclass(frozen=True, slots=True)
class Build:
    """How to build a generated program: the extra gcc flags it needs."""

    static_pie: bool  # the trace has an exec: the entry point must run before libc starts

    def gcc_args(self, source: str, exe: str) -> list[str]:
        """The gcc arguments after the compiler's name (``-Werror`` is the caller's choice)."""
        args = [
            "-std=gnu11", "-O1", "-Wall", "-fno-stack-protector", "-fno-builtin",
            "-fno-tree-loop-distribute-patterns", "-U_FORTIFY_SOURCE", "-fcf-protection=none",
        ]  # fmt: skip
        if self.static_pie:
            args += ["-static-pie", "-Wl,-e,fsgs_entry"]
        return [*args, "-o", exe, source]


def build_for(trace: Trace) -> Build:
    """The build of *trace*'s program."""
    return Build(static_pie=any(isinstance(e, Exec) for e in trace.events))


def needs_ptrace(trace: Trace) -> bool:
    """True if the supervisor must trace the task."""
    return any(isinstance(e, _TRACER) for e in trace.events)


def unsupported(trace: Trace, *, ncpus: int = 2) -> str:
    """Why the replay cannot execute *trace* ("" when it can)."""
    for i, event in enumerate(trace.events):
        if isinstance(event, Migrate) and not 0 <= event.cpu < ncpus:
            return f"event {i} migrates to CPU {event.cpu}, but the replay uses CPUs 0..{ncpus - 1}"
        if isinstance(event, PtraceSetregs):
            bad = [slot for slot, _ in event.fields if slot in UNSAFE_SETREGS_SLOTS]
            if bad:
                return (
                    f"event {i} ptrace_setregs changes {', '.join(bad)}: the replayed task "
                    "cannot survive a new instruction or stack pointer, and cx, r11 and flags "
                    "force an IRET return, which fsgs-trace/1 leaves out"
                )
    return ""


def tracer_groups(events: Sequence[Event]) -> list[tuple[int, int]]:
    """The (first, last) indices of each run of consecutive tracer events (one ptrace stop)."""
    groups: list[tuple[int, int]] = []
    i = 0
    while i < len(events):
        if isinstance(events[i], _TRACER):
            j = i
            while j + 1 < len(events) and isinstance(events[j + 1], _TRACER):
                j += 1
            groups.append((i, j))
            i = j + 1
        else:
            i += 1
    return groups


def task_cpus(trace: Trace) -> list[int]:
    """The CPU the task is on during each event (it starts on CPU 0; a migrate moves it)."""
    cpus = []
    cpu = 0
    for event in trace.events:
        if isinstance(event, Migrate):
            cpu = int(event.cpu)
        cpus.append(cpu)
    return cpus


def _u64(value: int) -> str:
    return f"0x{value & (2**64 - 1):x}UL"


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


@dataclass
class _Gen:
    """The parts generated while walking the trace: the descriptors and the fresh pages."""

    descs: list[str]
    fresh: int = 0

    def desc(self, entry: int, desc: UserDesc) -> str:
        """A ``struct user_desc`` in the low-4-GiB page, initialised during setup."""
        j = len(self.descs)
        fields = ", ".join(
            f".{name} = {int(getattr(desc, name))}"
            for name in (
                "seg_32bit", "contents", "read_exec_only", "limit_in_pages",
                "seg_not_present", "useable",
            )
        )  # fmt: skip
        self.descs.append(
            f"    descs[{j}] = (struct user_desc){{ .entry_number = 0x{entry & 0xFFFFFFFF:x}u, "
            f".base_addr = 0x{int(desc.base_addr):x}u, .limit = 0x{int(desc.limit):x}u, "
            f"{fields} }};"
        )
        return f"&descs[{j}]"

    def user_action(self, event: Event, thr: str, rec: str) -> list[str]:
        """C statements for an action of the running thread *thr* (``T``, or ``t`` in the
        other task) recording into the ``struct ev`` *rec*; only the task's faults end the
        trace (the other task's results are not recorded, as in the model)."""
        faulted = "FAULTED(" + rec + ", r);" if thr == "T" else "(void)r;"
        match event:
            case MovSeg(seg=seg, selector=sel):
                return [f"r = mov_{seg.value}({thr}, 0x{int(sel):x});", faulted]
            case WrBase(seg=seg, value=value):
                return [f"r = wr_{seg.value}base({thr}, {_u64(int(value))});", faulted]
            case ArchPrctl(code=code, value=value):
                num = ARCH_CODES[code.value]
                if code.is_set:
                    arg = _u64(int(value))
                    return [f"{rec}.ret = rsys(NR_arch_prctl, 0x{num:x}, (long){arg}, 0, 0, 0, 0);"]
                return [f"arch_get(&{rec}, 0x{num:x});"]
            case ModifyLdt(entry=entry, desc=desc):
                d = self.desc(int(entry), desc)
                # sys_modify_ldt returns (unsigned int)ret: the ABI's int, not sign-extended
                size = "sizeof(struct user_desc)"
                call = f"rsys(NR_modify_ldt, 1, (long){d}, {size}, 0, 0, 0)"
                return [f"{rec}.ret = (int){call};"]
            case SetThreadArea(entry_number=entry, desc=desc, abi=abi):
                d = self.desc(int(entry), desc)
                if abi is Abi.IA32:
                    return [f"{rec}.ret = set_thread_area_ia32({d});"]
                return [f"{rec}.ret = rsys(NR_set_thread_area_64, (long){d}, 0, 0, 0, 0, 0);"]
            case Observe(via=via):
                kind = "rdbase" if via is None else via.value
                return [f"observe_{kind}({thr}, {rec}.obs);", f"{rec}.has_obs = 1;"]
        msg = f"{op_name(event)} is not a user-mode action"
        raise TypeError(msg)


def _task_event(gen: _Gen, i: int, event: Event, cpu: int, group_end: int) -> list[str]:
    """The task's C statements for event *i* (a tracer group: the stop, at its first event)."""
    out = f"S->ev[{i}]"
    match event:
        case MovSeg() | WrBase() | ArchPrctl() | ModifyLdt() | SetThreadArea() | Observe():
            body = gen.user_action(event, "T", out)
        case Yield():
            body = [f"handoff({cpu}, {i + 1});"]
        case Migrate(cpu=target):
            body = [f"migrate_to({int(target)}, {i + 1});"]
        case Interrupt():
            body = [f"touch_fresh({gen.fresh});"]
            gen.fresh += 1
        case Signal():
            body = [f"raise_signal({i});"]
        case Fork():
            body = [f"fork_observe({i});"]
        case Exec():
            body = [f"do_exec({i});"]
        case PtracePeek() | PtracePoke() | PtraceSetregs():
            return [f"stop_for_tracer({i});", f"AFTER({group_end});"]
        case _:  # pragma: no cover - closed union
            raise TypeError(type(event).__name__)
    return [f"{out}.state = 1;", *body, f"AFTER({i});"]


def _tracer_event(i: int, event: Event) -> list[str]:
    """The supervisor's C statements for tracer event *i* (the task is stopped)."""
    out = f"S->ev[{i}]"
    match event:
        case PtracePeek(field=fld):
            off = f"offsetof(struct user_regs_struct, {fld.value})"
            return [f"peek({i}, pid, {off});"]
        case PtracePoke(field=fld, value=value):
            off = f"offsetof(struct user_regs_struct, {fld.value})"
            return [f"poke({i}, pid, {off}, {_u64(int(value))});"]
        case PtraceSetregs(fields=fields):
            lines = [f"{out}.state = 1;", "if (getregs(pid, &regs, &" + out + ")) {"]
            lines += [f"    regs.{USER_REGS_C_FIELDS[s]} = {_u64(int(v))};" for s, v in fields]
            lines += [f"    setregs({i}, pid, &regs);", "}"]
            return lines
    raise TypeError(type(event).__name__)  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Expected:
    """The model's prediction that a reproducer program compares its run with, as text.

    Each value is written the way `fsgs_smt.native.render.value_text` writes it (``ok``,
    ``-EIO``, ``0x1000``, ``fs (0x0, 0x0) gs (0x7, 0x7000)``, ``-`` for no state); the
    program renders what it observed the same way and compares the strings.
    """

    heading: tuple[str, ...]  # printed first: what is reproduced (one line each)
    results: tuple[str, ...]  # per event: the predicted result
    states: tuple[str, ...]  # per event: the predicted state after it, or "-"
    verdict: str  # what a reproduced run shows, after "VIOLATION REPRODUCED: "


# The result of an event as the reproducer renders it (`fsgs_smt.native.run.native_result`).
_KIND_OK, _KIND_SIG, _KIND_ERRNO, _KIND_ERR_OR_HEX, _KIND_OBS, _KIND_SIGNAL = range(6)


def _result_kind(event: Event) -> int:
    match event:
        case MovSeg() | WrBase():
            return _KIND_SIG
        case ArchPrctl(code=code):
            return _KIND_ERRNO if code.is_set else _KIND_ERR_OR_HEX
        case ModifyLdt() | SetThreadArea() | PtracePoke() | PtraceSetregs():
            return _KIND_ERRNO
        case PtracePeek():
            return _KIND_ERR_OR_HEX
        case Observe() | Fork():
            return _KIND_OBS
        case Signal():
            return _KIND_SIGNAL
    return _KIND_OK


def c_string(text: str) -> str:
    """*text* as a C string literal (octal escapes for anything but printable ASCII)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode())
    return '"' + "".join(out) + '"'


def _c_strings(items: Sequence[str]) -> str:
    return ",\n    ".join(c_string(t) for t in items)


def _report_code(events: Sequence[Event], expect: Expected) -> str:
    """The reproducer's C: the prediction as tables, and `report()`, its verdict."""
    if (len(expect.results), len(expect.states)) != (len(events), len(events)):
        msg = f"expected {len(events)} predicted results and states, got " \
              f"{len(expect.results)} and {len(expect.states)}"  # fmt: skip
        raise ValueError(msg)
    ops = [op_name(e) for e in events]
    wop = max([len("op"), *map(len, ops)])
    wval = max([len("predicted"), *map(len, expect.results), *map(len, expect.states)])
    row = f"%3s  %-{wop}s  %-6s  %-{wval}s  %-{wval}s  %s"
    head = f"%3s  %-{wop}s  %-6s  %-{wval}s  %s"
    errnos = "\n".join(
        f"    case {num}: return {c_string(name)};" for num, name in sorted(ERRNO_NAMES.items())
    )
    sigs = "\n".join(
        f"    case {int(sig)}: return {c_string(sig.name)};"
        for sig in sorted(signal.Signals, key=int) if 0 < int(sig) < 32
    )  # fmt: skip
    params = {
        "@HEADING@": ",\n    ".join([*map(c_string, expect.heading), "0"]),
        "@OPS@": _c_strings(ops) or "0",
        "@KINDS@": ", ".join(str(_result_kind(e)) for e in events) or "0",
        "@RESULTS@": _c_strings(expect.results) or "0",
        "@STATES@": _c_strings(expect.states) or "0",
        "@ROW@": c_string(row),
        "@HEAD@": c_string(head),
        "@ERRNOS@": errnos,
        "@SIGNALS@": sigs,
        "@VERDICT@": c_string(expect.verdict),
    }
    text = _REPORT
    for key, value in params.items():
        text = text.replace(key, value)
    return text


def c_source(
    trace: Trace, *, name: str = "trace", ncpus: int = 2, timeout_s: int = DEFAULT_TIMEOUT_S,
    expect: Expected | None = None,
) -> str:  # fmt: skip
    """The C program that replays *trace* (see the module docstring for its output).

    Args:
        trace: a concrete trace (`unsupported` must be "" for it).
        name: shown in the program's header comment.
        ncpus: the CPUs the task may use (0..ncpus-1); each must be in its affinity mask.
        timeout_s: the program kills its task and reports a timeout after this long.
        expect: make it a reproducer: instead of JSON lines, the program prints *expect*'s
            heading, each result and state predicted and observed, and its verdict; exit
            code 0 when every value is the predicted one (VIOLATION REPRODUCED), 1 when one
            differs (NOT REPRODUCED), 2 when the run failed (timeout, infrastructure
            error), 3 when the machine cannot run it.

    Raises:
        ValueError: the trace cannot be replayed (the reason of `unsupported`), or *expect*
            does not have one result and one state per event.
    """
    why = unsupported(trace, ncpus=ncpus)
    if why:
        raise ValueError(why)
    report = _report_code(trace.events, expect) if expect is not None else ""
    events = trace.events
    gen = _Gen(descs=[])
    cpus = task_cpus(trace)
    groups = tracer_groups(events)
    group_of = {i: g for g in groups for i in range(g[0], g[1] + 1)}
    other_cpus: set[int] = set()
    task_cases: list[str] = []
    for i, event in enumerate(events):
        cpu_before = cpus[i - 1] if i else 0
        if isinstance(event, Yield) or (isinstance(event, Migrate) and event.cpu == cpu_before):
            other_cpus.add(cpu_before)
        if i in group_of and group_of[i][0] != i:
            task_cases.append(f"    case {i}:  /* {op_name(event)}: in the stop of event "
                              f"{group_of[i][0]} */")  # fmt: skip
            continue
        line = _comment(json.dumps(event_to_json(event), separators=(",", ":")))
        task_cases.append(f"    case {i}:  /* {line} */")
        end = group_of[i][1] if i in group_of else i
        task_cases += [f"        {s}" for s in _task_event(gen, i, event, cpu_before, end)]
        task_cases.append("        __attribute__((fallthrough));")
    other_cases: list[str] = []
    for i, event in enumerate(events):
        if isinstance(event, Yield) and event.other:
            other_cases.append(f"    case {i + 1}:")
            for action in event.other:
                other_cases += [f"        {s}" for s in gen.user_action(action, "t", "scratch")]
            other_cases.append("        break;")
    tracer_cases: list[str] = []
    for first, last in groups:
        tracer_cases.append(f"    case {first}:")
        for i in range(first, last + 1):
            tracer_cases += [f"        {s}" for s in _tracer_event(i, events[i])]
        tracer_cases.append("        break;")
    offsets = sorted(
        {f.value for e in events if isinstance(e, PtracePeek | PtracePoke) for f in [e.field]}
        | {s for e in events if isinstance(e, PtraceSetregs) for s, _ in e.fields}
    )
    asserts = [
        f"_Static_assert(offsetof(struct user_regs_struct, {USER_REGS_C_FIELDS[s]}) == "
        f'{slot_offset(s)}, "user_regs_struct slot {s}");'
        for s in offsets
    ]
    other_mask = sum(1 << c for c in other_cpus)
    listing = "\n".join(
        f" * {i:3}: " + _comment(json.dumps(event_to_json(e), separators=(",", ":")))
        for i, e in enumerate(events)
    )
    about = ""
    stem = "replay"
    if expect is not None:
        stem = name.removesuffix(".json").replace("/", "-") or "reproducer"
        about = "\n".join(
            [""] + [f" * {_comment(h)}" for h in expect.heading] + [
                " *",
                " * It compares what it observes with the model's prediction (printed beside",
                " * it) and exits 0 when every result and state is the predicted one (VIOLATION",
                " * REPRODUCED), 1 when one differs (NOT REPRODUCED), 2 when the run failed,",
                " * 3 when this machine cannot run it. Run it without arguments.",
                " *",
            ]
        )  # fmt: skip
    params = {
        "@TOOL@": "counterexample --format c" if expect is not None else "replay",
        "@ABOUT@": about,
        "@REPRODUCER@": "1" if expect is not None else "0",
        "@REPORT@": report,
        "@NAME@": _comment(name),
        "@BUILD@": " ".join(build_for(trace).gcc_args(f"{stem}.c", stem)),
        "@LISTING@": listing,
        "@NEV@": str(len(events)),
        "@NCPU@": str(ncpus),
        "@TIMEOUT@": str(int(timeout_s)),
        "@NEED_PTRACE@": "1" if needs_ptrace(trace) else "0",
        "@HAVE_EXEC@": "1" if build_for(trace).static_pie else "0",
        "@NFRESH@": str(max(1, sum(isinstance(e, Interrupt) for e in events))),
        "@NDESC@": str(max(1, _count_descs(events))),
        "@OTHER_MASK@": f"0x{other_mask:x}",
        "@OTHER_FS_BASE@": _u64(OTHER_FS_BASE),
        "@OTHER_FS_STRIDE@": _u64(OTHER_FS_STRIDE),
        "@ASSERTS@": "\n".join(asserts),
        "@DESCS@": "\n".join(gen.descs) or "    (void)descs;",
        "@TASK_CASES@": "\n".join(task_cases),
        "@OTHER_CASES@": "\n".join(other_cases),
        "@TRACER_CASES@": "\n".join(tracer_cases),
    }
    text = _RUNTIME
    for key, value in params.items():
        text = text.replace(key, value)
    return text


def _count_descs(events: Sequence[Event]) -> int:
    n = 0
    for e in events:
        if isinstance(e, ModifyLdt | SetThreadArea):
            n += 1
        if isinstance(e, Yield):
            n += sum(isinstance(a, ModifyLdt | SetThreadArea) for a in e.other)
    return n


_RUNTIME: Final = r"""/* Generated by fsgs-smt @TOOL@ (fsgs_smt.native.cgen) from @NAME@.
 * Do not edit.
 *
 * Replays this fsgs-trace/1 trace on the running kernel and prints what it observed:
@LISTING@
 *@ABOUT@
 * Build: gcc @BUILD@
 *
 * The task runs with a foreign FS (glibc's TLS pointer replaced by the trace's state), so
 * from the "go foreign" point of task_main() on it calls no libc function: raw system
 * calls only, no stack protector, records in shared memory; the supervisor (another
 * process) prints.
 */
#define _GNU_SOURCE
#include <asm/ldt.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define NEV @NEV@
#define NCPU @NCPU@
#define TIMEOUT_S @TIMEOUT@
#define NEED_PTRACE @NEED_PTRACE@
#define HAVE_EXEC @HAVE_EXEC@
#define NFRESH @NFRESH@
#define NDESC @NDESC@
#define OTHER_MASK @OTHER_MASK@
#define OTHER_FS_BASE @OTHER_FS_BASE@
#define OTHER_FS_STRIDE @OTHER_FS_STRIDE@
#define REPRODUCER @REPRODUCER@
#define UNUSED __attribute__((unused))

enum {
    NR_sched_yield = 24, NR_getpid = 39, NR_clone = 56, NR_fork = 57, NR_execve = 59,
    NR_exit = 60, NR_wait4 = 61, NR_modify_ldt = 154, NR_arch_prctl = 158, NR_gettid = 186,
    NR_futex = 202, NR_sched_setaffinity = 203, NR_set_thread_area_64 = 205,
    NR_exit_group = 231, NR_tgkill = 234, NR_getcpu = 309, NR_ptrace = 101,
    NR32_set_thread_area = 243
};

@ASSERTS@

/* ---- the shared record area (one per run; a memfd, so it survives execve) ---- */
struct ev {
    volatile int32_t state;            /* 0 not run, 1 started, 2 done */
    volatile int32_t sig;              /* the fault that ended the trace here */
    volatile int64_t ret;              /* raw return value */
    volatile int32_t err;              /* ret is an error of a value-returning call */
    volatile int32_t has_obs, has_sc, has_after;
    volatile uint64_t obs[4];          /* fs, fs_base, gs, gs_base */
    volatile uint64_t sc[2];           /* sigcontext fs, gs */
    volatile uint64_t after[4];        /* the task's live state after the event */
};
struct shared {
    volatile int32_t stop_at;          /* the tracer event the stopped task waits for */
    volatile int32_t finished;         /* the task reached the end of the trace */
    volatile int64_t error_args[2];
    volatile char error[160];          /* the first infrastructure error */
    struct ev ev[NEV > 0 ? NEV : 1];
};
static struct shared *S;

/* ---- raw system calls: the only way out of the task while its FS is foreign ---- */
static inline long rsys(long n, long a, long b, long c, long d, long e, long f) {
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void fail(const char *msg, long a, long b) {
    if (S->error[0]) return;
    int i = 0;
    for (; msg[i] && i < (int)sizeof S->error - 1; i++) S->error[i] = msg[i];
    S->error[i] = 0;
    S->error_args[0] = a;
    S->error_args[1] = b;
}

static UNUSED long getcpu_raw(void) {
    unsigned cpu = ~0u;
    long r = rsys(NR_getcpu, (long)&cpu, 0, 0, 0, 0, 0);
    return r ? r : (long)cpu;
}

static UNUSED long pin_raw(int cpu) {
    uint64_t mask = 1UL << cpu;
    return rsys(NR_sched_setaffinity, 0, sizeof mask, (long)&mask, 0, 0, 0);
}

static UNUSED void futex_wait(volatile int32_t *word, int32_t val) {
    rsys(NR_futex, (long)word, 0 /* FUTEX_WAIT */ | 128 /* PRIVATE */, val, 0, 0, 0);
}

static UNUSED void futex_wake(volatile int32_t *word) {
    rsys(NR_futex, (long)word, 1 /* FUTEX_WAKE */ | 128, 1, 0, 0, 0);
}

/* ---- threads of the task's process: [0] the task, [1 + c] the other task of CPU c ---- */
struct thr {
    volatile int32_t tid, ready, go, done, cpu_seen;
    volatile int32_t parked;           /* the other task is about to wait for this token */
    volatile int32_t fault, fault_code;
    volatile uint64_t recover, fault_addr;
};
static struct thr thrs[1 + NCPU];
#define T (&thrs[0])

static struct thr *self_thr(void) {
    long tid = rsys(NR_gettid, 0, 0, 0, 0, 0, 0);
    for (int i = 0; i < 1 + NCPU; i++)
        if (thrs[i].tid == tid) return &thrs[i];
    return 0;
}

/* Live state, read without disturbing it. */
static inline __attribute__((always_inline)) void live(volatile uint64_t *o) {
    uint16_t fs, gs;
    uint64_t fsb, gsb;
    __asm__ volatile("mov %%fs, %0" : "=r"(fs));
    __asm__ volatile("mov %%gs, %0" : "=r"(gs));
    __asm__ volatile("rdfsbase %0" : "=r"(fsb));
    __asm__ volatile("rdgsbase %0" : "=r"(gsb));
    o[0] = fs; o[1] = fsb; o[2] = gs; o[3] = gsb;
}

/* Instructions that may fault: the handler records the signal and resumes at label 1. */
#define FAULTABLE(t, insn, ...)                                                        \
    __asm__ volatile("lea 1f(%%rip), %%rax\n\tmov %%rax, %0\n\t" insn "\n1:\n\tmovq $0, %0" \
                     : "=m"((t)->recover) : __VA_ARGS__ : "rax", "memory")

static UNUSED int mov_fs(struct thr *t, uint16_t sel) {
    t->fault = 0; FAULTABLE(t, "mov %w1, %%fs", "r"(sel)); return t->fault;
}
static UNUSED int mov_gs(struct thr *t, uint16_t sel) {
    t->fault = 0; FAULTABLE(t, "mov %w1, %%gs", "r"(sel)); return t->fault;
}
static UNUSED int wr_fsbase(struct thr *t, uint64_t v) {
    t->fault = 0; FAULTABLE(t, "wrfsbase %1", "r"(v)); return t->fault;
}
static UNUSED int wr_gsbase(struct thr *t, uint64_t v) {
    t->fault = 0; FAULTABLE(t, "wrgsbase %1", "r"(v)); return t->fault;
}

static volatile char *guard_page;  /* PROT_NONE: the SIGSEGV of observe via fault, if needed */

static inline __attribute__((always_inline)) uint64_t rd_base(int gs) {
    uint64_t v;
    if (gs) __asm__ volatile("rdgsbase %0" : "=r"(v));
    else __asm__ volatile("rdfsbase %0" : "=r"(v));
    return v;
}

/* The kernel selftest's read_base(), made exact: a 1-byte load at offset 0 through the
   segment. Where the base is not mapped, the load's page fault reports the base in the
   SIGSEGV's si_addr (one byte, so it never crosses into the non-canonical range, whose #GP
   would report 0) and the handler returns through rt_sigreturn. Where the base is mapped
   memory the load does not fault: the base is RDxBASE's, read before any signal, and a
   load from the PROT_NONE guard page (no FS/GS involved) takes the SIGSEGV instead, so the
   signal round trip still follows the read. A #GP (si_code SI_KERNEL) carries no address:
   RDxBASE's value then too. */
static UNUSED uint64_t fault_base(struct thr *t, int gs) {
    uint64_t before = rd_base(gs);
    t->fault = 0;
    if (gs) FAULTABLE(t, "movb %%gs:(%%rcx), %%al", "c"(0UL));
    else FAULTABLE(t, "movb %%fs:(%%rcx), %%al", "c"(0UL));
    if (t->fault) return t->fault_code == SI_KERNEL ? before : t->fault_addr;
    FAULTABLE(t, "movb (%%rcx), %%al", "c"(guard_page));
    if (t->fault != SIGSEGV) fail("observe via fault: no fault on the guard page", gs, t->fault);
    return before;
}

static UNUSED void sels(volatile uint64_t *o) {
    uint16_t fs, gs;
    __asm__ volatile("mov %%fs, %0" : "=r"(fs));
    __asm__ volatile("mov %%gs, %0" : "=r"(gs));
    o[0] = fs; o[2] = gs;
}
static UNUSED void observe_rdbase(struct thr *t, volatile uint64_t *o) { (void)t; live(o); }
static UNUSED void observe_arch_prctl(struct thr *t, volatile uint64_t *o) {
    uint64_t fsb = 0, gsb = 0;
    (void)t;
    sels(o);
    rsys(NR_arch_prctl, 0x1003, (long)&fsb, 0, 0, 0, 0);
    rsys(NR_arch_prctl, 0x1004, (long)&gsb, 0, 0, 0, 0);
    o[1] = fsb; o[3] = gsb;
}
static UNUSED void observe_fault(struct thr *t, volatile uint64_t *o) {
    sels(o);
    o[1] = fault_base(t, 0);
    o[3] = fault_base(t, 1);
}

static UNUSED void arch_get(struct ev *e, long code) {
    uint64_t v = 0;
    long r = rsys(NR_arch_prctl, code, (long)&v, 0, 0, 0, 0);
    e->err = r != 0;
    e->ret = r ? r : (long)v;
}

static UNUSED long set_thread_area_ia32(struct user_desc *d) {
    long eax = NR32_set_thread_area;
    __asm__ volatile("int $0x80" : "+a"(eax) : "b"(d) : "r8", "r9", "r10", "r11", "memory");
    return (long)(int)eax;
}

static struct user_desc *descs;    /* below 4 GiB (MAP_32BIT) for int $0x80 */
static UNUSED struct ev scratch;          /* the other task's results (the model keeps none) */
static volatile char *fresh;       /* never-touched pages: each interrupt faults on one */
static char cow_page[4096] __attribute__((aligned(4096)));
static long task_pid, task_tid;

/* Page faults return through IRET, which nulls a selector 1..3: the task touches every page
   it will use before the trace (and again inside a fork event, whose copy-on-write leaves
   its private pages write-protected), so that no event takes a fault the model lacks. */
extern char __executable_start[], etext[], __data_start[], _end[];
#define STACK_WINDOW (64 * 1024)
static char *stack_lo, *stack_hi;

static void touch_range(char *lo, char *hi, int write) {
    uintptr_t p = ((uintptr_t)lo + 3) & ~3UL;
    while (p < (uintptr_t)hi) {
        if (write) __atomic_fetch_or((int *)p, 0, __ATOMIC_RELAXED);
        else (void)*(volatile char *)p;
        p = (p & ~4095UL) + 4096;
    }
}

static void prefault_private(void) {
    touch_range(__data_start, _end, 1);
    touch_range(stack_lo, stack_hi, 1);
}

static __attribute__((noinline)) void grow_stack(void) {
    volatile char window[STACK_WINDOW];
    for (int i = 0; i < STACK_WINDOW; i += 4096) window[i] = 0;
    uintptr_t lo;
    __asm__("" : "=r"(lo) : "0"((uintptr_t)window));  /* an address, not a pointer kept */
    stack_lo = (char *)lo;
}

/* ---- signal handlers (they run with the thread's foreign FS: raw code only) ---- */
static volatile int32_t signal_ev = -1;

static void on_fault(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    struct thr *t = self_thr();
    if (t && t->recover) {
        t->fault = sig;
        t->fault_code = si->si_code;
        t->fault_addr = (uint64_t)si->si_addr;
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)t->recover;
        t->recover = 0;
        return;
    }
    fail("unexpected fault in the task (signal, rip)", sig, uc->uc_mcontext.gregs[REG_RIP]);
    rsys(NR_exit_group, 70, 0, 0, 0, 0, 0);
}

static void on_usr1(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    int k = signal_ev;
    (void)sig; (void)si;
    if (k < 0) { fail("stray SIGUSR1", 0, 0); return; }
    live(S->ev[k].obs);
    S->ev[k].has_obs = 1;
    uint64_t w = (uint64_t)uc->uc_mcontext.gregs[REG_CSGSFS];  /* cs, gs, fs, ss: 16 bits each */
    S->ev[k].sc[0] = (w >> 32) & 0xffff;
    S->ev[k].sc[1] = (w >> 16) & 0xffff;
    S->ev[k].has_sc = 1;
}

/* ---- the other tasks ---- */
static void other_actions(struct thr *t, int token);

static void other_main(struct thr *t) {
    int c = (int)(t - thrs) - 1;
    t->tid = (int32_t)rsys(NR_gettid, 0, 0, 0, 0, 0, 0);
    if (pin_raw(c)) fail("cannot pin the other task (cpu)", c, 0);
    while (getcpu_raw() != c) rsys(NR_sched_yield, 0, 0, 0, 0, 0, 0);
    /* the model's other task O<c>: FS = (0, OTHER_FS_BASE + (c + 1) * stride), GS = (0, 0) */
    mov_fs(t, 0);
    wr_fsbase(t, OTHER_FS_BASE + (uint64_t)(c + 1) * OTHER_FS_STRIDE);
    mov_gs(t, 0);
    wr_gsbase(t, 0);
    t->ready = 1;
    futex_wake(&t->ready);
    int32_t last = 0;
    for (;;) {
        t->parked = last;
        while (t->go == last) futex_wait(&t->go, last);
        last = t->go;
        t->cpu_seen = (int32_t)getcpu_raw();
        other_actions(t, last);
        t->done = last;
        futex_wake(&t->done);
    }
}

static long spawn_other(struct thr *t, char *stack_top) {
    long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
    uint64_t *sp = (uint64_t *)stack_top;
    *--sp = (uint64_t)other_main;
    *--sp = (uint64_t)t;
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\tjnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\tpop %%rdi\n\tpop %%rax\n\tcall *%%rax\n\t"
                     "mov $60, %%eax\n\txor %%edi, %%edi\n\tsyscall\n\tud2\n1:"
                     : "=a"(ret)
                     : "a"((long)NR_clone), "D"(flags), "S"(sp), "d"(0L), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

/* The task yields its CPU to that CPU's other task and waits until the other task ran there. */
static UNUSED void handoff(int cpu, int32_t token) {
    struct thr *o = &thrs[1 + cpu];
    int32_t before = o->done;
    o->go = token;
    futex_wake(&o->go);
    while (o->done != token) futex_wait(&o->done, before);
    /* Woken by the other task, the task may run before that task blocks again; it would
       then preempt the task later, a context switch the model does not have: let it block
       now, inside this event. */
    while (o->parked != token) rsys(NR_sched_yield, 0, 0, 0, 0, 0, 0);
    if (o->cpu_seen != cpu)
        fail("the other task ran on another CPU (cpu, seen)", cpu, o->cpu_seen);
    if (getcpu_raw() != cpu)
        fail("the task came back on another CPU (cpu, now)", cpu, getcpu_raw());
}

static UNUSED void migrate_to(int cpu, int32_t token) {
    long now = getcpu_raw();
    if (now == cpu) { handoff(cpu, token); return; }
    long r = pin_raw(cpu);
    if (r) { fail("sched_setaffinity failed (cpu, ret)", cpu, r); return; }
    while (getcpu_raw() != cpu) rsys(NR_sched_yield, 0, 0, 0, 0, 0, 0);
}

static UNUSED void touch_fresh(int k) { fresh[(long)k * 4096] = 1; }

static UNUSED void raise_signal(int k) {
    signal_ev = k;
    rsys(NR_tgkill, task_pid, task_tid, SIGUSR1, 0, 0, 0);
    signal_ev = -1;
    if (!S->ev[k].has_obs) fail("the SIGUSR1 handler did not run (event)", k, 0);
}

static UNUSED void fork_observe(int k) {
    volatile uint64_t *o = S->ev[k].obs;
    long pid;
    __asm__ volatile("mov %[nr], %%eax\n\tsyscall\n\t"
                     "test %%rax, %%rax\n\tjnz 1f\n\t"
                     /* the child: observe (after its IRET from ret_from_fork) and exit */
                     "xor %%ecx, %%ecx\n\tmov %%fs, %%cx\n\tmov %%rcx, 0(%[o])\n\t"
                     "rdfsbase %%rcx\n\tmov %%rcx, 8(%[o])\n\t"
                     "xor %%ecx, %%ecx\n\tmov %%gs, %%cx\n\tmov %%rcx, 16(%[o])\n\t"
                     "rdgsbase %%rcx\n\tmov %%rcx, 24(%[o])\n\t"
                     "mov $60, %%eax\n\txor %%edi, %%edi\n\tsyscall\n\tud2\n"
                     /* the parent: its first write after fork is a copy-on-write fault */
                     "1:\n\tmovb $1, (%[cow])"
                     : "=&a"(pid)
                     : [nr] "i"(NR_fork), [o] "r"(o), [cow] "r"(cow_page)
                     : "rcx", "r11", "rdi", "memory");
    if (pid < 0) { S->ev[k].ret = pid; fail("fork failed (event, ret)", k, pid); return; }
    int status = -1;
    long r = rsys(NR_wait4, pid, (long)&status, 0, 0, 0, 0);
    if (r != pid || status != 0) {
        fail("the fork child failed (event, status)", k, status);
        return;
    }
    S->ev[k].has_obs = 1;
    prefault_private();  /* still inside the fork event, which ends with an IRET anyway */
}

/* A ptrace stop: the task becomes a tracee only now (PTRACE_TRACEME), stops itself inside
   tgkill, and the tracer detaches after its events. Traced all along, every signal of the
   trace (SIGUSR1, a fault's SIGSEGV, SIGCHLD after a fork) would stop the task too: a
   context switch that reloads FS and GS from the descriptor tables. */
static UNUSED void stop_for_tracer(int k) {
    long r = rsys(NR_ptrace, PTRACE_TRACEME, 0, 0, 0, 0, 0);
    if (r) { fail("PTRACE_TRACEME failed (event, ret)", k, r); return; }
    S->stop_at = k;
    long nr = NR_tgkill, pid = task_pid, tid = task_tid, sig = SIGSTOP;
    /* The tracer may rewrite any general register but rip, rsp, rcx, r11 and flags: keep
       the callee-saved ones on the stack (below the red zone) across the stop. */
    __asm__ volatile("sub $128, %%rsp\n\t"
                     "push %%rbx\n\tpush %%rbp\n\tpush %%r12\n\tpush %%r13\n\tpush %%r14\n\t"
                     "push %%r15\n\tsyscall\n\tpop %%r15\n\tpop %%r14\n\tpop %%r13\n\t"
                     "pop %%r12\n\tpop %%rbp\n\tpop %%rbx\n\tadd $128, %%rsp"
                     : "+a"(nr), "+D"(pid), "+S"(tid), "+d"(sig)
                     :
                     : "rcx", "r8", "r9", "r10", "r11", "memory", "cc");
    if (S->stop_at != -1) fail("the tracer did not act on the stop (event)", k, 0);
}

#if HAVE_EXEC
/* The entry point (gcc -static-pie -Wl,-e,fsgs_entry): FS and GS as execve left them,
   before libc sets up its TLS; then glibc's own _start. */
uint64_t fsgs_entry_state[4];
__asm__(".text\n.globl fsgs_entry\n.type fsgs_entry, @function\nfsgs_entry:\n\t"
        "xor %eax, %eax\n\tmov %fs, %ax\n\tmov %rax, fsgs_entry_state(%rip)\n\t"
        "rdfsbase %rax\n\tmov %rax, fsgs_entry_state+8(%rip)\n\t"
        "xor %eax, %eax\n\tmov %gs, %ax\n\tmov %rax, fsgs_entry_state+16(%rip)\n\t"
        "rdgsbase %rax\n\tmov %rax, fsgs_entry_state+24(%rip)\n\t"
        "jmp _start\n");

static char exec_fd[16], exec_from[NEV + 1][12];
static UNUSED void do_exec(int k) {
    static char path[] = "/proc/self/exe", arg0[] = "fsgs-replay", flag[] = "--task";
    char *argv[] = {arg0, flag, exec_from[k + 1], exec_fd, 0};
    char *envp[] = {0};
    long r = rsys(NR_execve, (long)path, (long)argv, (long)envp, 0, 0, 0);
    fail("execve failed (event, ret)", k, r);
}
#endif

#define AFTER(k) do { live(S->ev[k].after); S->ev[k].has_after = 1; S->ev[k].state = 2; } while (0)
#define FAULTED(e, r) do { if (r) { (e).sig = (r); (e).state = 2; return; } } while (0)

/* The trace, from event `from` on (0, or the event after an exec). */
static void task_events(int from) {
    UNUSED long r = 0;
    switch (from) {
@TASK_CASES@
    default:
        break;
    }
}

static void other_actions(struct thr *t, int token) {
    UNUSED long r = 0;
    (void)t;
    switch (token) {
@OTHER_CASES@
    default:
        break;
    }
}

static void set_seg(int gs, uint16_t sel, uint64_t base) {
    if (gs) { mov_gs(T, sel); wr_gsbase(T, base); }
    else { mov_fs(T, sel); wr_fsbase(T, base); }
}

static int setup_task(int from) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, 0) || sigaction(SIGBUS, &sa, 0) || sigaction(SIGILL, &sa, 0))
        return fail("sigaction failed", errno, 0), -1;
    sa.sa_sigaction = on_usr1;
    if (sigaction(SIGUSR1, &sa, 0)) return fail("sigaction failed", errno, 0), -1;
    descs = mmap(0, 4096 * ((NDESC * sizeof(struct user_desc) + 4095) / 4096),
                 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (descs == MAP_FAILED) return fail("mmap MAP_32BIT failed", errno, 0), -1;
@DESCS@
    fresh = mmap(0, 4096L * NFRESH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return fail("mmap failed", errno, 0), -1;
    madvise((void *)fresh, 4096L * NFRESH, MADV_NOHUGEPAGE);
    guard_page = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_page == MAP_FAILED) return fail("mmap failed", errno, 0), -1;
    cow_page[0] = 1;
    grow_stack();
    prefault_private();
    touch_range(__executable_start, etext, 0);
    touch_range((char *)S, (char *)(S + 1), 1);
    task_pid = getpid();
    task_tid = rsys(NR_gettid, 0, 0, 0, 0, 0, 0);
    T->tid = (int32_t)task_tid;
    for (int c = 0; c < NCPU; c++) {
        if (!(OTHER_MASK & (1 << c))) continue;
        char *stack = mmap(0, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stack == MAP_FAILED) return fail("mmap failed", errno, 0), -1;
        thrs[1 + c].parked = -1;
        long r = spawn_other(&thrs[1 + c], stack + (1 << 16));
        if (r < 0) return fail("clone failed (cpu, ret)", c, r), -1;
        while (!thrs[1 + c].ready) futex_wait(&thrs[1 + c].ready, 0);
        while (thrs[1 + c].parked != 0) sched_yield();  /* it blocks before the trace starts */
    }
    (void)from;
    return 0;
}

static int task_main(int from, int fd) {
    stack_hi = (char *)__builtin_frame_address(0);
    if (from > 0) {
        S = mmap(0, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (S == MAP_FAILED) return 71;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (from == 0) {
        setpgid(0, 0);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        if (sched_setaffinity(0, sizeof set, &set))
            return fail("cannot pin to CPU 0", errno, 0), 73;
        while (sched_getcpu() != 0) sched_yield();
    }
    if (setup_task(from)) return 74;
#if HAVE_EXEC
    snprintf(exec_fd, sizeof exec_fd, "%d", fd);
    for (int k = 0; k <= NEV; k++) snprintf(exec_from[k], sizeof exec_from[k], "%d", k);
#else
    (void)fd;
#endif
    /* go foreign: from here on no libc */
    if (from == 0) {
        set_seg(0, 0, 0);  /* as after exec: FS = GS = (0, 0) */
        set_seg(1, 0, 0);
    } else {
#if HAVE_EXEC
        int k = from - 1;  /* the exec event: its result is the state at the entry point */
        for (int j = 0; j < 4; j++) S->ev[k].after[j] = fsgs_entry_state[j];
        S->ev[k].has_after = 1;
        S->ev[k].state = 2;
        set_seg(0, (uint16_t)fsgs_entry_state[0], fsgs_entry_state[1]);
        set_seg(1, (uint16_t)fsgs_entry_state[2], fsgs_entry_state[3]);
#endif
    }
    task_events(from);
    S->finished = 1;
    rsys(NR_exit_group, 0, 0, 0, 0, 0, 0);
    return 0;
}

/* ---- the supervisor: tracer, reaper, printer (ordinary libc code) ---- */
static UNUSED void peek(int k, pid_t pid, long off) {
    S->ev[k].state = 1;
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, pid, (void *)off, 0);
    S->ev[k].err = errno != 0;
    S->ev[k].ret = errno ? -errno : v;
    S->ev[k].state = 2;
}

static UNUSED void poke(int k, pid_t pid, long off, uint64_t value) {
    S->ev[k].state = 1;
    long r = ptrace(PTRACE_POKEUSER, pid, (void *)off, (void *)value);
    S->ev[k].ret = r ? -errno : 0;
    S->ev[k].state = 2;
}

static UNUSED int getregs(pid_t pid, struct user_regs_struct *regs, struct ev *e) {
    if (ptrace(PTRACE_GETREGS, pid, 0, regs) == 0) return 1;
    e->ret = -errno;
    e->state = 2;
    return 0;
}

static UNUSED void setregs(int k, pid_t pid, struct user_regs_struct *regs) {
    long r = ptrace(PTRACE_SETREGS, pid, 0, regs);
    S->ev[k].ret = r ? -errno : 0;
    S->ev[k].state = 2;
}

static void tracer_events(pid_t pid, int first) {
    UNUSED struct user_regs_struct regs;
    switch (first) {
@TRACER_CASES@
    default:
        fail("the task stopped at an unknown event", first, 0);
        break;
    }
}

static volatile sig_atomic_t timed_out;
static volatile pid_t child_pid;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child_pid > 0) kill(child_pid, SIGKILL);
}

static UNUSED void print_vec(const char *key, volatile uint64_t *v, int n) {
    printf(", \"%s\": [", key);
    for (int j = 0; j < n; j++) printf("%s\"0x%lx\"", j ? ", " : "", (unsigned long)v[j]);
    printf("]");
}

static int cannot_run(const char *why) {
#if REPRODUCER
    printf("CANNOT RUN on this machine: %s\n", why);
#else
    printf("{\"cannot_run\": \"%s\"}\n", why);
#endif
    return 3;
}
@REPORT@

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--task") == 0) return task_main(atoi(argv[2]), atoi(argv[3]));
    if (!(getauxval(AT_HWCAP2) & 2)) return cannot_run("the kernel does not enable FSGSBASE");
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed))
        return cannot_run("sched_getaffinity failed");
    for (int c = 0; c < NCPU; c++)
        if (!CPU_ISSET(c, &allowed))
            return cannot_run("a CPU the replay needs is not in its affinity mask");
    int fd = memfd_create("fsgs-replay", 0);
    if (fd < 0 || ftruncate(fd, sizeof *S)) return cannot_run("memfd_create failed");
    S = mmap(0, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (S == MAP_FAILED) return cannot_run("mmap of the shared records failed");
    S->stop_at = -1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return cannot_run("fork failed");
    if (pid == 0) _exit(task_main(0, fd));
    child_pid = pid;
    alarm(TIMEOUT_S);
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, __WALL);
        if (w < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) break;
        if (!WIFSTOPPED(status)) continue;
        int sig = WSTOPSIG(status);
        if (sig == SIGSTOP && S->stop_at >= 0) {
            tracer_events(pid, S->stop_at);
            S->stop_at = -1;
            ptrace(PTRACE_DETACH, pid, 0, 0);  /* resume it untraced, SIGSTOP discarded */
            continue;
        }
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);  /* not a stop of ours */
    }
    child_pid = 0;
    kill(-pid, SIGKILL);  /* anything left in the task's process group */
    while (waitpid(-1, 0, __WALL) > 0 || errno == EINTR) continue;
    alarm(0);
#if REPRODUCER
    return report(status);
#else
    printf("{\"replay\": 1, \"events\": %d, \"ncpus\": %d}\n", NEV, NCPU);
    for (int k = 0; k < NEV; k++) {
        struct ev *e = &S->ev[k];
        printf("{\"i\": %d, \"state\": %d, \"sig\": %d, \"ret\": \"0x%lx\", \"err\": %d", k,
               e->state, e->sig, (unsigned long)e->ret, e->err);
        if (e->has_obs) print_vec("obs", e->obs, 4);
        if (e->has_sc) print_vec("sc", e->sc, 2);
        if (e->has_after) print_vec("after", e->after, 4);
        printf("}\n");
    }
    char how[32];
    if (WIFEXITED(status)) snprintf(how, sizeof how, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
    else snprintf(how, sizeof how, "unknown");
    printf("{\"end\": 1, \"task\": \"%s\", \"finished\": %d, \"timeout\": %d, \"error\": \"%s\", "
           "\"error_args\": [%ld, %ld]}\n", how, S->finished, (int)timed_out,
           (const char *)S->error, (long)S->error_args[0], (long)S->error_args[1]);
    return 0;
#endif
}
"""

# The reproducer's verdict (`c_source` with ``expect``): the model's prediction as tables,
# the observed values rendered as `fsgs_smt.native.render.value_text` writes them.
_REPORT: Final = r"""
/* ---- the reproducer: this run against the model's prediction ---- */
#define ROW_FMT @ROW@
#define HEAD_FMT @HEAD@
enum { K_OK, K_SIG, K_ERRNO, K_ERR_OR_HEX, K_OBS, K_SIGNAL };
static const char *const heading[] = {
    @HEADING@
};
static const char *const op_names[] = {
    @OPS@
};
static const int result_kind[] = { @KINDS@ };
static const char *const predicted[2][NEV > 0 ? NEV : 1] = {{
    @RESULTS@
}, {
    @STATES@
}};

static const char *errno_name(long num) {
    switch (num) {
@ERRNOS@
    default: return 0;
    }
}

static const char *signal_name(long num) {
    switch (num) {
@SIGNALS@
    default: return 0;
    }
}

static void state_text(char *b, size_t n, volatile uint64_t *v) {
    snprintf(b, n, "fs (0x%lx, 0x%lx) gs (0x%lx, 0x%lx)", (unsigned long)v[0],
             (unsigned long)v[1], (unsigned long)v[2], (unsigned long)v[3]);
}

static void errno_text(char *b, size_t n, uint64_t v) {
    if (v == 0) snprintf(b, n, "0");
    else if (v >> 63 && errno_name((long)-v)) snprintf(b, n, "-%s", errno_name((long)-v));
    else if (v >> 63) snprintf(b, n, "-E%ld", (long)-v);
    else snprintf(b, n, "0x%lx", (unsigned long)v);
}

/* The result of event k as fsgs-trace/1 writes it (fsgs_smt.native.run.native_result). */
static void result_text(int k, char *b, size_t n) {
    struct ev *e = &S->ev[k];
    char h[128];
    if (e->state == 0) { snprintf(b, n, "not-run"); return; }
    if (e->state != 2) { snprintf(b, n, "unfinished"); return; }
    switch (result_kind[k]) {
    case K_SIG:
        if (!e->sig) snprintf(b, n, "ok");
        else if (signal_name(e->sig)) snprintf(b, n, "%s", signal_name(e->sig));
        else snprintf(b, n, "signal %d", e->sig);
        return;
    case K_ERRNO:
        errno_text(b, n, (uint64_t)e->ret);
        return;
    case K_ERR_OR_HEX:
        if (e->err) errno_text(b, n, (uint64_t)e->ret);
        else snprintf(b, n, "0x%lx", (unsigned long)e->ret);
        return;
    case K_OBS:
        if (e->has_obs) state_text(b, n, e->obs);
        else snprintf(b, n, "missing");
        return;
    case K_SIGNAL:
        if (!e->has_obs || !e->has_sc) { snprintf(b, n, "missing"); return; }
        state_text(h, sizeof h, e->obs);
        snprintf(b, n, "handler %s; sigcontext fs 0x%lx gs 0x%lx", h, (unsigned long)e->sc[0],
                 (unsigned long)e->sc[1]);
        return;
    default:
        snprintf(b, n, "ok");
    }
}

/* Print this run beside the prediction and the verdict; the exit code (0 reproduced,
   1 not reproduced, 2 the run failed). */
static int report(int status) {
    static const char *const checks[2] = {"result", "state"};
    char seen[2][NEV > 0 ? NEV : 1][256];
    int differ = 0;
    for (int j = 0; heading[j]; j++) printf("%s\n", heading[j]);
    printf(HEAD_FMT "\n", "i", "op", "check", "predicted", "observed");
    for (int k = 0; k < NEV; k++) {
        result_text(k, seen[0][k], sizeof seen[0][k]);
        if (S->ev[k].has_after) state_text(seen[1][k], sizeof seen[1][k], S->ev[k].after);
        else snprintf(seen[1][k], sizeof seen[1][k], "-");
        for (int c = 0; c < 2; c++) {
            int same = strcmp(predicted[c][k], seen[c][k]) == 0;
            char i[16];
            snprintf(i, sizeof i, "%d", k);
            differ += !same;
            printf(ROW_FMT "\n", c ? "" : i, c ? "" : op_names[k], checks[c], predicted[c][k],
                   seen[c][k], same ? "MATCH" : "DIFFERS");
        }
    }
    char how[32];
    if (WIFEXITED(status)) snprintf(how, sizeof how, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(how, sizeof how, "signal %d", WTERMSIG(status));
    else snprintf(how, sizeof how, "unknown");
    if (timed_out || S->error[0] || strcmp(how, "exit 0") != 0 || !S->finished) {
        printf("RUN FAILED: ");
        if (timed_out) printf("timeout: the program killed its task");
        else if (S->error[0]) printf("%s: %ld, %ld", (const char *)S->error,
                                     (long)S->error_args[0], (long)S->error_args[1]);
        else if (strcmp(how, "exit 0") != 0) printf("the task ended with %s", how);
        else printf("the task exited before the end of the trace");
        printf("\n");
        return 2;
    }
    if (differ) {
        printf("NOT REPRODUCED: %d value%s differ%s from the model's prediction:\n", differ,
               differ == 1 ? "" : "s", differ == 1 ? "s" : "");
        for (int k = 0; k < NEV; k++)
            for (int c = 0; c < 2; c++)
                if (strcmp(predicted[c][k], seen[c][k]) != 0)
                    printf("  event %d %s %s: predicted %s, observed %s\n", k, op_names[k],
                           checks[c], predicted[c][k], seen[c][k]);
        return 1;
    }
    printf("VIOLATION REPRODUCED: %s\n", @VERDICT@);
    return 0;
}
"""
