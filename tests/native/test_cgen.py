# SPDX-License-Identifier: MIT
"""The C generator: the program text for each op (pure), and that gcc -Wall -Werror takes it.

The text tests run everywhere; the compile tests need gcc (not FSGSBASE: they do not run
the program).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from fsgs_smt.native import cgen
from fsgs_smt.semantics.events import (
    Abi,
    ArchCode,
    ArchPrctl,
    Event,
    Exec,
    Fork,
    Interrupt,
    Migrate,
    ModifyLdt,
    MovSeg,
    Observe,
    ObserveVia,
    PtraceField,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    Seg,
    SetThreadArea,
    Signal,
    Trace,
    UserDesc,
    WrBase,
    Yield,
)
from fsgs_smt.traces.fsgs_json import load_trace
from tests.native.conftest import requires_gcc

ROOT = Path(__file__).resolve().parents[2]
LDT = UserDesc(base_addr=0x7000, limit=0xFFFFF, seg_32bit=1, limit_in_pages=1)


def source(*events: Event) -> str:
    """The program of a trace of *events*."""
    return cgen.c_source(Trace(events=events))


def task_code(text: str) -> str:
    """The body of the task's event switch."""
    return text.split("static void task_events(int from) {", 1)[1].split("\n}\n", 1)[0]


def test_mov_seg_and_wrbase_use_the_instructions_with_fault_recovery() -> None:
    """mov to %gs / %fs and WRGSBASE/WRFSBASE, each resumable after its fault."""
    text = source(
        MovSeg(seg=Seg.GS, selector=7), WrBase(seg=Seg.FS, value=0x9999000),
    )  # fmt: skip
    body = task_code(text)

    assert "r = mov_gs(T, 0x7);" in body
    assert "r = wr_fsbase(T, 0x9999000UL);" in body
    assert body.count("FAULTED(S->ev[") == 2
    assert '"mov %w1, %%gs"' in text
    assert '"wrfsbase %1"' in text
    assert "uc->uc_mcontext.gregs[REG_RIP] = (greg_t)t->recover;" in text


@pytest.mark.parametrize(
    ("code", "number"),
    [(ArchCode.SET_GS, 0x1001), (ArchCode.SET_FS, 0x1002), (ArchCode.GET_FS, 0x1003),
     (ArchCode.GET_GS, 0x1004)],
)  # fmt: skip
def test_arch_prctl_is_raw_syscall_158(code: ArchCode, number: int) -> None:
    """arch_prctl(code, value) through the raw system call 158."""
    text = source(ArchPrctl(code=code, value=0x200000000 if code.is_set else 0))
    body = task_code(text)

    assert "NR_arch_prctl = 158" in text
    if code.is_set:
        assert f"rsys(NR_arch_prctl, 0x{number:x}, (long)0x200000000UL, 0, 0, 0, 0)" in body
    else:
        assert f"arch_get(&S->ev[0], 0x{number:x});" in body


def test_modify_ldt_is_syscall_154_func_1_with_the_user_desc() -> None:
    """modify_ldt(1, &desc, sizeof desc) with every struct user_desc field set."""
    text = source(ModifyLdt(entry=3, desc=LDT))

    assert "NR_modify_ldt = 154" in text
    assert "= (int)rsys(NR_modify_ldt, 1, (long)&descs[0], sizeof(struct user_desc), 0, 0, 0)" in (
        text
    )  # an int: the kernel returns (unsigned int)ret
    assert (
        "descs[0] = (struct user_desc){ .entry_number = 0x3u, .base_addr = 0x7000u, "
        ".limit = 0xfffffu, .seg_32bit = 1, .contents = 0, .read_exec_only = 0, "
        ".limit_in_pages = 1, .seg_not_present = 0, .useable = 0 };"
    ) in text


def test_set_thread_area_64_is_syscall_205_and_ia32_is_int80_243_below_4g() -> None:
    """abi 64: syscall 205 (-ENOSYS); abi ia32: int $0x80 nr 243, the desc in MAP_32BIT."""
    text = source(
        SetThreadArea(entry_number=-1, desc=LDT),
        SetThreadArea(entry_number=-1, desc=LDT, abi=Abi.IA32),
    )
    body = task_code(text)

    assert "NR_set_thread_area_64 = 205" in text
    assert "rsys(NR_set_thread_area_64, (long)&descs[0], 0, 0, 0, 0, 0)" in body
    assert "NR32_set_thread_area = 243" in text
    assert "set_thread_area_ia32(&descs[1])" in body
    assert '"int $0x80"' in text
    assert "MAP_32BIT" in text
    assert ".entry_number = 0xffffffffu" in text


def test_yield_hands_off_to_the_other_task_which_runs_the_other_events() -> None:
    """The task waits on a futex until its CPU's other task ran the yield's events."""
    other = (MovSeg(seg=Seg.GS, selector=0x2B), ModifyLdt(entry=0, desc=LDT))
    text = source(Yield(other=other))

    assert "handoff(0, 1);" in task_code(text)
    assert "#define OTHER_MASK 0x1" in text
    cases = text.split("static void other_actions(struct thr *t, int token) {", 1)[1]
    assert "case 1:" in cases
    assert "r = mov_gs(t, 0x2b);" in cases
    assert "scratch.ret = (int)rsys(NR_modify_ldt, 1, (long)&descs[0]" in cases
    assert "CLONE_VM" in text and "CLONE_THREAD" in text
    assert "while (o->done != token) futex_wait(&o->done, before);" in text


def test_migrate_interrupt_signal_fork() -> None:
    """sched_setaffinity + getcpu; a fresh page; SIGUSR1 with REG_CSGSFS; raw fork."""
    text = source(Migrate(cpu=1), Interrupt(), Interrupt(), Signal(), Fork())
    body = task_code(text)

    assert "migrate_to(1, 1);" in body
    assert "NR_sched_setaffinity = 203" in text and "NR_getcpu = 309" in text
    assert "touch_fresh(0);" in body and "touch_fresh(1);" in body
    assert "#define NFRESH 2" in text
    assert "raise_signal(3);" in body
    assert "REG_CSGSFS" in text and "SIGUSR1" in text
    assert "fork_observe(4);" in body
    assert "NR_fork = 57" in text
    assert "movb $1, (%[cow])" in text  # the parent's copy-on-write fault


def test_migrate_to_the_same_cpu_still_switches() -> None:
    """A migrate to the CPU the task is on hands off to that CPU's other task."""
    text = source(Migrate(cpu=0))

    assert "#define OTHER_MASK 0x1" in text


@pytest.mark.parametrize(
    ("via", "call"),
    [(None, "observe_rdbase"), (ObserveVia.RDBASE, "observe_rdbase"),
     (ObserveVia.ARCH_PRCTL, "observe_arch_prctl"), (ObserveVia.FAULT, "observe_fault")],
)  # fmt: skip
def test_observe_reads_the_way_the_event_says(via: ObserveVia | None, call: str) -> None:
    """rdbase, arch_prctl(GET_*) or the selftest's faulting read."""
    body = task_code(source(Observe(via=via)))

    assert f"{call}(T, S->ev[0].obs);" in body


def test_ptrace_events_run_in_the_tracer_at_user_regs_offsets() -> None:
    """PEEKUSER/POKEUSER at offsetof(user_regs_struct), GETREGS + fields + SETREGS."""
    events = (
        PtracePeek(field=PtraceField.GS_BASE),
        PtracePoke(field=PtraceField.GS, value=4),
        PtraceSetregs(fields=(("r15", 1), ("fs_base", 0x5000))),
        Observe(),
        PtracePeek(field=PtraceField.FS),
    )
    text = source(*events)
    body = task_code(text)

    assert "#define NEED_PTRACE 1" in text
    assert "PTRACE_TRACEME" in text
    assert body.count("stop_for_tracer(") == 2
    assert "stop_for_tracer(0);" in body and "AFTER(2);" in body
    assert "stop_for_tracer(4);" in body and "AFTER(4);" in body
    assert "peek(0, pid, offsetof(struct user_regs_struct, gs_base));" in text
    assert "poke(1, pid, offsetof(struct user_regs_struct, gs), 0x4UL);" in text
    assert "regs.r15 = 0x1UL;" in text and "regs.fs_base = 0x5000UL;" in text
    assert "PTRACE_SETREGS" in text and "PTRACE_GETREGS" in text
    assert "offsetof(struct user_regs_struct, gs_base) == 176" in text
    assert "offsetof(struct user_regs_struct, r15) == 0" in text
    assert "offsetof(struct user_regs_struct, fs) == 200" in text
    assert "NR_tgkill = 234" in text and "SIGSTOP" in text


def test_no_ptrace_no_tracer() -> None:
    """Without tracer events the task is not traced."""
    assert "#define NEED_PTRACE 0" in source(Observe())


def test_exec_builds_static_pie_with_its_own_entry_point() -> None:
    """exec re-runs the program; the entry point records FS/GS before libc."""
    trace = Trace(events=(Exec(), Observe()))
    text = cgen.c_source(trace)
    build = cgen.build_for(trace)

    assert "#define HAVE_EXEC 1" in text
    assert "do_exec(0);" in task_code(text)
    assert "fsgs_entry:" in text and "jmp _start" in text
    assert build.static_pie
    assert "-static-pie" in build.gcc_args("x.c", "x")
    assert "-Wl,-e,fsgs_entry" in build.gcc_args("x.c", "x")
    assert not cgen.build_for(Trace(events=(Observe(),))).static_pie


def test_build_flags_keep_glibc_away_from_the_foreign_fs() -> None:
    """No stack protector (it reads %fs:0x28), no fortified wrappers."""
    args = cgen.Build(static_pie=False).gcc_args("a.c", "a")

    assert "-fno-stack-protector" in args
    assert "-U_FORTIFY_SOURCE" in args
    assert args[-3:] == ["-o", "a", "a.c"]


def test_the_task_starts_as_after_exec_and_prints_json_lines() -> None:
    """FS = GS = (0, 0) before the first event; one JSON object per output line."""
    text = source(Observe())

    assert "set_seg(0, 0, 0);" in text and "set_seg(1, 0, 0);" in text
    assert '"{\\"replay\\": 1, \\"events\\": %d, \\"ncpus\\": %d}\\n"' in text
    assert "alarm(TIMEOUT_S);" in text
    assert "rsys(NR_exit_group, 0, 0, 0, 0, 0, 0);" in text


@pytest.mark.parametrize("slot", cgen.UNSAFE_SETREGS_SLOTS)
def test_setregs_of_code_or_stack_registers_is_unsupported(slot: str) -> None:
    """ip, sp, cs, ss, flags, cx and r11 cannot be replayed; the reason says so."""
    trace = Trace(events=(PtraceSetregs(fields=((slot, 0),)),))

    assert slot in cgen.unsupported(trace)
    with pytest.raises(ValueError, match=slot):
        cgen.c_source(trace)


def test_migrate_beyond_the_cpus_is_unsupported() -> None:
    """A CPU the replay does not use."""
    assert "CPU 3" in cgen.unsupported(Trace(events=(Migrate(cpu=3),)))
    assert "" == cgen.unsupported(Trace(events=(Migrate(cpu=1),)))


def test_tracer_groups_and_task_cpus() -> None:
    """Consecutive tracer events share one stop; migrate moves the task's CPU."""
    peek = PtracePeek(field=PtraceField.GS)
    events = (peek, peek, Observe(), Migrate(cpu=1), peek, Migrate(cpu=0))

    assert [(0, 1), (4, 4)] == cgen.tracer_groups(events)
    assert [0, 0, 0, 1, 1, 0] == cgen.task_cpus(Trace(events=events))


def test_the_header_lists_the_events() -> None:
    """The program names its trace and lists every event as fsgs-trace/1 JSON."""
    text = cgen.c_source(Trace(events=(MovSeg(seg=Seg.GS, selector=7),)), name="t.json")

    assert text.startswith("/* Generated by fsgs-smt replay")
    assert "from t.json." in text
    assert re.search(r'\*\s+0: \{"op":"mov_seg","seg":"gs","selector":"0x7"\}', text)


# -- gcc -Wall -Werror ------------------------------------------------------------------------

ALL_OPS = Trace(
    events=(
        ModifyLdt(entry=0, desc=LDT),
        SetThreadArea(entry_number=-1, desc=LDT, abi=Abi.IA32),
        SetThreadArea(entry_number=12, desc=LDT),
        MovSeg(seg=Seg.GS, selector=7),
        WrBase(seg=Seg.GS, value=0x9999000),
        ArchPrctl(code=ArchCode.SET_FS, value=0x7F0000001000),
        ArchPrctl(code=ArchCode.GET_GS),
        Yield(other=(MovSeg(seg=Seg.FS, selector=0x2B), ArchPrctl(code=ArchCode.GET_FS),
                     SetThreadArea(entry_number=-1, desc=LDT, abi=Abi.IA32),
                     Observe(via=ObserveVia.FAULT))),
        Migrate(cpu=1),
        Interrupt(),
        Observe(via=ObserveVia.ARCH_PRCTL),
        PtracePeek(field=PtraceField.GS_BASE),
        PtracePoke(field=PtraceField.GS, value=4),
        PtraceSetregs(fields=(("r15", 1), ("ds", 0))),
        Signal(),
        Fork(),
        Migrate(cpu=1),
        Exec(),
        Observe(via=ObserveVia.FAULT),
        MovSeg(seg=Seg.FS, selector=7),
    )
)  # fmt: skip


def _compile(trace: Trace, tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    src = tmp_path / f"{name}.c"
    src.write_text(cgen.c_source(trace, name=name))
    args = ["gcc", "-Werror", *cgen.build_for(trace).gcc_args(str(src), str(tmp_path / name))]
    return subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603


@requires_gcc
@pytest.mark.parametrize(
    "path",
    ["examples/every-event.json", "examples/wrgsbase-ldt.json",
     "tests/golden/traces/L32b.json", "tests/golden/traces/Q2b-1.json"],
)  # fmt: skip
def test_generated_programs_compile_with_wall_werror(path: str, tmp_path: Path) -> None:
    """Real traces compile without a warning."""
    done = _compile(load_trace(ROOT / path).trace, tmp_path, Path(path).stem)

    assert 0 == done.returncode, done.stderr


@requires_gcc
def test_every_op_compiles_with_wall_werror(tmp_path: Path) -> None:
    """A trace with every op (and every observe and yield.other kind) compiles cleanly."""
    done = _compile(ALL_OPS, tmp_path, "all-ops")

    assert 0 == done.returncode, done.stderr


@requires_gcc
def test_an_empty_trace_compiles(tmp_path: Path) -> None:
    """No events: the program still builds (and would print only its header and end)."""
    done = _compile(Trace(events=()), tmp_path, "empty")

    assert 0 == done.returncode, done.stderr
