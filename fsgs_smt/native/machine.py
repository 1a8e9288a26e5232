# SPDX-License-Identifier: MIT
"""What this machine offers for native replay, and which CPU model and policy it maps to.

Layer: native. Imports only the standard library (ctypes, subprocess); never a solver or
the terminal; prints nothing.

`probe()` reads `uname`, `/proc/cpuinfo` and the auxiliary vector, and (unless told not to)
compiles and runs one tiny C program with gcc in a temporary directory. That program reads
CPUID (vendor, family, model, the hypervisor bit, leaf 0x80000021 EAX[6]
NullSelectorClearsBase), loads a null selector into GS with a nonzero base and looks at
what the base became, calls `modify_ldt(0, ...)`, `int $0x80` (IA32 emulation) in a forked
child, and PTRACE_TRACEME / PTRACE_PEEKUSER on a forked child. It touches GS only: glibc
keeps its TLS in FS. Every failure becomes ``None`` or ``False``; no exception escapes, every
subprocess has a timeout, and the temporary directory is removed.

The CPU model (see `semantics/cpu.py` and the domain reference §1.5): Intel clears the base
on a null load; AMD with the CPUID NSCB bit clears it; AMD without the bit is decided by the
probe, because a hypervisor may hide the bit from a Zen 2+ guest (this is what the kernel's
``check_null_seg_clears_base()`` cannot know, hence the ``null_seg`` bug flag in such guests).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

AT_HWCAP2 = 26
HWCAP2_FSGSBASE = 1 << 1
NR_MODIFY_LDT = 154  # x86-64 syscall number
NULL_PROBE_TRIALS = 32
COMPILE_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 20.0
CPUINFO = Path("/proc/cpuinfo")

AMD_VENDORS = ("AuthenticAMD", "HygonGenuine")  # the kernel runs the same NSCB check on Hygon
INTEL_LIKE_VENDORS = ("GenuineIntel", "CentaurHauls", "Shanghai")  # never NULL_SEG-flagged


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """The facts `probe()` found and what fsgs-smt infers from them."""

    arch: str  # platform.machine(), e.g. "x86_64"
    kernel: str  # os.uname().release
    kernel_version: tuple[int, int]  # (major, minor); (0, 0) if unparsable
    vendor: str  # CPUID vendor string; "" if unknown
    family: int | None  # display family (25 = 0x19)
    model: int | None  # display model
    model_name: str  # /proc/cpuinfo "model name"
    fsgsbase: bool  # getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE: the kernel enabled FSGSBASE
    nscb_cpuid: bool | None  # CPUID 0x80000021 EAX[6]; None if it could not be read
    null_seg_bug_flag: bool | None  # "null_seg" in the cpuinfo bugs line; None if no bugs line
    null_probe_clears: bool | None  # loading selector 0 into GS cleared its base; None: not run
    modify_ldt: bool  # modify_ldt(0, buf, size) succeeds
    ptrace: bool  # a forked child can PTRACE_TRACEME, stop, and be PTRACE_PEEKUSER'd
    ia32_emulation: bool  # int $0x80 getpid (eax=20) returns the pid from a 64-bit process
    gcc: str | None  # shutil.which("gcc")
    ncpus: int  # len(os.sched_getaffinity(0))
    cpu_model: str  # "intel" | "amd-legacy" | "amd-zen3"
    cpu_model_reason: str  # one line: why
    policy: str  # the shipped policy assumed for this kernel
    # Additions beyond the first interface (defaults keep constructors compatible).
    policy_reason: str = ""  # one line: why that policy
    hypervisor: bool | None = None  # CPUID.1:ECX[31] / the "hypervisor" cpuinfo flag
    c_probe_ran: bool = False  # the C probe ran to its end (else ia32_emulation is untested)

    def native_unavailable(self) -> str:
        """Empty when native traces can run here; else one line saying why not."""
        reasons = []
        if not sys.platform.startswith("linux"):
            reasons.append(f"not Linux (platform {sys.platform})")
        if self.arch != "x86_64":
            reasons.append(f"not x86_64 (machine is {self.arch or 'unknown'})")
        if self.gcc is None:
            reasons.append("no C compiler (gcc not found on PATH)")
        if not self.fsgsbase:
            reasons.append("the kernel does not enable FSGSBASE (HWCAP2 bit 1 clear)")
        return "; ".join(reasons)


def map_cpu_model(
    vendor: str,
    nscb_cpuid: bool | None,
    null_probe_clears: bool | None,
    *,
    null_seg_bug_flag: bool | None = None,
) -> tuple[str, str]:
    """The fsgs-smt CPU model for these facts, and one line saying why."""
    probe_text = {
        True: "the null-selector probe cleared the base",
        False: "the null-selector probe kept the base",
        None: "the null-selector probe did not run",
    }[null_probe_clears]
    flag_note = ""
    if null_seg_bug_flag:
        flag_note = (
            "; the kernel still sets X86_BUG_NULL_SEG (null_seg in bugs), which amd-zen3 "
            "does not model"
        )
    if vendor in AMD_VENDORS:
        if nscb_cpuid:
            note = "" if null_probe_clears is not False else f", but {probe_text} (unexpected)"
            return "amd-zen3", (
                f"{vendor}, CPUID 0x80000021 EAX[6] NullSelectorClearsBase set{note}{flag_note}: "
                "amd-zen3"
            )
        bit = "CPUID NSCB bit clear" if nscb_cpuid is False else "CPUID NSCB bit unreadable"
        if null_probe_clears:
            return "amd-zen3", (
                f"{vendor}, {bit} but {probe_text} (a hypervisor may hide the bit){flag_note}: "
                "amd-zen3"
            )
        if null_probe_clears is False:
            return "amd-legacy", f"{vendor}, {bit} and {probe_text}: amd-legacy"
        return "amd-legacy", (
            f"{vendor}, {bit} and {probe_text}: amd-legacy (what the kernel assumes without "
            "the bit)"
        )
    if vendor.strip() in INTEL_LIKE_VENDORS:
        note = "" if null_probe_clears is not False else f", but {probe_text} (unexpected)"
        return "intel", f"{vendor}: a null selector load clears the base{note}: intel"
    who = f"vendor {vendor!r}" if vendor else "unknown vendor"
    if null_probe_clears is False:
        return "amd-legacy", f"{who} and {probe_text}: amd-legacy"
    if null_probe_clears:
        return "intel", f"{who} and {probe_text}: intel"
    return "intel", f"{who} and {probe_text}: intel (the default)"


def assumed_policy(kernel_version: tuple[int, int], fsgsbase: bool) -> tuple[str, str]:
    """The shipped policy closest to this kernel, and one line saying why."""
    shown = f"Linux {kernel_version[0]}.{kernel_version[1]}"
    if kernel_version == (0, 0):
        shown = "an unknown kernel version"
    if fsgsbase:
        backport = " (a backport)" if (0, 0) < kernel_version < (5, 9) else ""
        return "linux-5.9", f"{shown} with FSGSBASE enabled (HWCAP2){backport}: linux-5.9"
    if kernel_version >= (5, 9) or kernel_version == (0, 0):
        return "linux-4.13", (
            f"{shown} without FSGSBASE in HWCAP2 (nofsgsbase, or no CPU support): the legacy "
            "paths of linux-4.13 (today's kernel: --set ptrace_reads_descriptor_base=true "
            "--set ptrace_base_write_keeps_selector=true --set exec_drops_ldt=true)"
        )
    if kernel_version >= (4, 13):
        return "linux-4.13", f"{shown} is in 4.13-5.8: linux-4.13"
    if kernel_version >= (4, 7):
        return "linux-4.7", f"{shown} is in 4.7-4.12: linux-4.7"
    return "linux-4.6", f"{shown} is 4.6 or older: linux-4.6"


def kernel_version_of(release: str) -> tuple[int, int]:
    """(major, minor) of a kernel release string such as ``6.18.44-fc``; (0, 0) if none."""
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The fields of the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _hwcap2_fsgsbase() -> bool:
    libc = _libc()
    if libc is None or not hasattr(libc, "getauxval"):
        return False
    try:
        getauxval = libc.getauxval
        getauxval.restype = ctypes.c_ulong
        getauxval.argtypes = [ctypes.c_ulong]
        return bool(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE)
    except (OSError, AttributeError, ctypes.ArgumentError):
        return False


def _modify_ldt_ctypes() -> bool:
    """modify_ldt(0, buf, size) (read the LDT) succeeds: the call exists and is allowed."""
    libc = _libc()
    if libc is None or platform.machine() != "x86_64":
        return False
    try:
        syscall = libc.syscall
        syscall.restype = ctypes.c_long
        buf = ctypes.create_string_buffer(16 * 8)
        return bool(syscall(NR_MODIFY_LDT, 0, buf, ctypes.c_ulong(len(buf))) >= 0)
    except (OSError, AttributeError, ctypes.ArgumentError):
        return False


# Without gcc: PTRACE_TRACEME through ctypes in a separate Python process (never fork this one).
_PTRACE_SCRIPT = """\
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid = os.fork()
if pid == 0:
    if libc.ptrace(0, 0, None, None) != 0:
        os._exit(2)
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
_, status = os.waitpid(pid, 0)
ok = False
if os.WIFSTOPPED(status):
    ctypes.set_errno(0)
    libc.ptrace(3, pid, None, None)
    ok = ctypes.get_errno() == 0
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
sys.exit(0 if ok else 1)
"""


def _ptrace_python() -> bool:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-c", _PTRACE_SCRIPT],
            capture_output=True, timeout=RUN_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


PROBE_C = r"""
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#define ARCH_SET_GS_ 0x1001
#define TRIALS @TRIALS@

static void probe_cpuid(void) {
    unsigned a, b, c, d;
    char vendor[13];
    if (!__get_cpuid(0, &a, &b, &c, &d)) { puts("cpuid=0"); return; }
    memcpy(vendor, &b, 4); memcpy(vendor + 4, &d, 4); memcpy(vendor + 8, &c, 4);
    vendor[12] = 0;
    printf("cpuid=1\nvendor=%s\n", vendor);
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        unsigned fam = (a >> 8) & 0xf, mod = (a >> 4) & 0xf;
        if (fam == 0xf) fam += (a >> 20) & 0xff;
        if (fam == 0x6 || fam >= 0xf) mod |= ((a >> 16) & 0xf) << 4;
        printf("family=%u\nmodel=%u\nhypervisor=%u\n", fam, mod, (c >> 31) & 1);
    }
    unsigned ext = __get_cpuid_max(0x80000000, 0);
    printf("ext_max=0x%x\n", ext);
    if (ext >= 0x80000021 && __get_cpuid_count(0x80000021, 0, &a, &b, &c, &d))
        printf("nscb=%u\n", (a >> 6) & 1);
    else
        puts("nscb=0");
}

static void probe_modify_ldt(void) {
    unsigned char buf[16 * 8];
    long r = syscall(SYS_modify_ldt, 0, buf, sizeof buf);
    printf("modify_ldt=%d\nmodify_ldt_errno=%d\n", r >= 0, r < 0 ? errno : 0);
}

static void probe_ptrace(void) {
    int st, ok = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { puts("ptrace=0"); return; }
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(2);
        raise(SIGSTOP);
        _exit(0);
    }
    if (waitpid(pid, &st, 0) == pid && WIFSTOPPED(st)) {
        errno = 0;
        ptrace(PTRACE_PEEKUSER, pid, (void *)offsetof(struct user_regs_struct, gs_base), 0);
        ok = errno == 0;
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    printf("ptrace=%d\n", ok);
}

static void probe_ia32(void) {
    int st, ok = 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { puts("ia32=0"); return; }
    if (pid == 0) {
        long ret = 20; /* __NR_getpid of the i386 ABI */
        __asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory");
        _exit(ret == (long)getpid() ? 0 : 1);
    }
    if (waitpid(pid, &st, 0) == pid) ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("ia32=%d\n", ok);
}

/* GS only: glibc keeps its TLS in FS. */
static volatile unsigned long slots[2] = {0x1111, 0x2222};

static void probe_null(int fsgsbase) {
    int cleared = 0, kept = 0, other = 0;
    for (int i = 0; i < TRIALS; i++) {
        if (fsgsbase) {
            /* One asm block: write, null load, read back, with no system call between. */
            unsigned long after, base = 0x12345000UL;
            __asm__ volatile("wrgsbase %1\n\tmov %w2, %%gs\n\trdgsbase %0"
                             : "=&r"(after) : "r"(base), "r"(0) : "memory");
            if (after == 0) cleared++; else if (after == base) kept++; else other++;
        } else {
            /* Base 8 via arch_prctl; %gs:&slots[0] reads slots[1] if the base was kept and
               slots[0] if it was cleared (no kernel read-back, which may be stale). */
            unsigned long v;
            if (syscall(SYS_arch_prctl, ARCH_SET_GS_, 8UL) != 0) { other++; continue; }
            __asm__ volatile("mov %w1, %%gs\n\tmovq %%gs:(%2), %0"
                             : "=r"(v) : "r"(0), "r"(&slots[0]) : "memory");
            if (v == 0x1111) cleared++; else if (v == 0x2222) kept++; else other++;
        }
    }
    if (fsgsbase) {
        unsigned long zero = 0;
        __asm__ volatile("wrgsbase %0" : : "r"(zero) : "memory");
    } else {
        syscall(SYS_arch_prctl, ARCH_SET_GS_, 0UL);
    }
    printf("null_method=%s\nnull_trials=%d\nnull_cleared=%d\nnull_kept=%d\nnull_other=%d\n",
           fsgsbase ? "wrgsbase" : "arch_prctl", TRIALS, cleared, kept, other);
}

int main(int argc, char **argv) {
    alarm(15);
    int fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
    int legacy = argc > 1 && strcmp(argv[1], "arch_prctl") == 0;
    printf("hwcap2_fsgsbase=%d\n", fsgsbase);
    probe_cpuid();
    probe_modify_ldt();
    probe_ptrace();
    probe_ia32();
    probe_null(fsgsbase && !legacy);
    puts("done=1");
    return 0;
}
""".replace("@TRIALS@", str(NULL_PROBE_TRIALS))


@functools.cache
def run_c_probe(gcc: str, null_method: str = "auto") -> dict[str, str] | None:
    """Compile and run the probe program with ``gcc``: its ``key=value`` lines, or None.

    ``null_method="arch_prctl"`` makes the null-selector probe set the base with
    arch_prctl(ARCH_SET_GS) even where WRGSBASE is enabled ("auto" uses WRGSBASE there).
    """
    try:
        with tempfile.TemporaryDirectory(prefix="fsgs-smt-probe-") as tmp:
            source, exe = Path(tmp) / "probe.c", Path(tmp) / "probe"
            source.write_text(PROBE_C)
            built = subprocess.run(  # noqa: S603 - the compiler found on PATH, fixed arguments
                [gcc, "-O1", "-o", str(exe), str(source)],
                capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False,
            )  # fmt: skip
            if built.returncode != 0:
                return None
            ran = subprocess.run(  # noqa: S603 - the program just built
                [str(exe), null_method], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                check=False,
            )  # fmt: skip
    except (OSError, subprocess.SubprocessError, UnicodeError):
        return None
    facts: dict[str, str] = {}
    for line in ran.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts or None


def null_probe_verdict(facts: dict[str, str]) -> bool | None:
    """Did the null-selector probe clear the base? None if it gave no clear answer.

    Any cleared trial counts: the kernel can make a cleared base look kept (a context switch
    of a legacy kernel re-installs the base it recorded) but never the reverse.
    """
    cleared = _int_or_none(facts.get("null_cleared"))
    kept = _int_or_none(facts.get("null_kept"))
    if cleared is None or kept is None:
        return None
    if cleared > 0:
        return True
    return False if kept > 0 else None


def _flag_bool(value: str | None) -> bool | None:
    return None if value is None else value == "1"


@functools.cache
def _probe(run_probes: bool) -> MachineInfo:
    arch = platform.machine()
    try:
        kernel = os.uname().release
    except OSError:
        kernel = ""
    try:
        cpuinfo = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:
        cpuinfo = {}
    flags = set(cpuinfo.get("flags", "").split())
    bugs = cpuinfo.get("bugs")
    gcc = shutil.which("gcc")
    try:
        ncpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        ncpus = os.cpu_count() or 1
    fsgsbase = _hwcap2_fsgsbase()
    kernel_version = kernel_version_of(kernel)

    facts: dict[str, str] = {}
    if run_probes and gcc is not None and arch == "x86_64" and sys.platform.startswith("linux"):
        facts = run_c_probe(gcc) or {}

    vendor = facts.get("vendor") or cpuinfo.get("vendor_id", "")
    family = _int_or_none(cpuinfo.get("cpu family")) if "cpu family" in cpuinfo else None
    model = _int_or_none(cpuinfo.get("model")) if "model" in cpuinfo else None
    if family is None:
        family = _int_or_none(facts.get("family"))
    if model is None:
        model = _int_or_none(facts.get("model"))

    # Only CPUID tells NSCB: the kernel reads the bit since 5.16 but its flags line never
    # shows it (the cpufeatures.h name of X86_FEATURE_NULL_SEL_CLR_BASE is "").
    nscb: bool | None = _flag_bool(facts.get("nscb"))
    hypervisor = _flag_bool(facts.get("hypervisor"))
    if hypervisor is None and flags:
        hypervisor = "hypervisor" in flags

    modify_ldt = facts["modify_ldt"] == "1" if "modify_ldt" in facts else _modify_ldt_ctypes()
    ptrace = facts.get("ptrace") == "1"
    if "ptrace" not in facts and run_probes and sys.platform.startswith("linux"):
        ptrace = _ptrace_python()
    ia32 = facts.get("ia32") == "1"
    null_clears = null_probe_verdict(facts)
    null_seg_bug = None if bugs is None else "null_seg" in bugs.split()

    cpu_model, reason = map_cpu_model(vendor, nscb, null_clears, null_seg_bug_flag=null_seg_bug)
    policy, policy_reason = assumed_policy(kernel_version, fsgsbase)
    return MachineInfo(
        arch=arch,
        kernel=kernel,
        kernel_version=kernel_version,
        vendor=vendor,
        family=family,
        model=model,
        model_name=cpuinfo.get("model name", ""),
        fsgsbase=fsgsbase,
        nscb_cpuid=nscb,
        null_seg_bug_flag=null_seg_bug,
        null_probe_clears=null_clears,
        modify_ldt=modify_ldt,
        ptrace=ptrace,
        ia32_emulation=ia32,
        gcc=gcc,
        ncpus=ncpus,
        cpu_model=cpu_model,
        cpu_model_reason=reason,
        policy=policy,
        policy_reason=policy_reason,
        hypervisor=hypervisor,
        c_probe_ran=facts.get("done") == "1",
    )


def doctor_report(info: MachineInfo) -> dict[str, object]:
    """Every fact and inference as JSON-ready values, plus whether native replay can run."""
    report: dict[str, object] = {f.name: getattr(info, f.name) for f in fields(info)}
    report["kernel_version"] = list(info.kernel_version)
    why = info.native_unavailable()
    report["native_replay"] = not why
    report["native_unavailable"] = why
    return report


def probe(*, run_probes: bool = True) -> MachineInfo:
    """What this machine offers (cached per process).

    ``run_probes=False`` compiles and runs nothing and forks nothing: CPUID facts come from
    /proc/cpuinfo, the null-selector probe is None, ptrace and IA32 emulation are False.
    """
    try:
        return _probe(run_probes)
    except Exception:  # a probe must never raise: retry with nothing run
        if run_probes:
            return _probe(False)
        raise
