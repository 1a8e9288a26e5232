# SPDX-License-Identifier: MIT
"""The fsgs-trace/1 event vocabulary as a closed union of frozen dataclasses.

Layer: semantics. Imports nothing but the standard library.

Numeric fields hold Python integers for concrete traces. The symbolic encoder
builds the same objects with solver terms in the numeric fields: the
semantics only ever passes them through `Domain.lift`, so both work.

Extensions to fsgs-trace/1 (added fields and ops; the published ones are
unchanged): ``yield.other`` (what the other task does while it runs),
``observe.via`` (how the task reads its bases) and the ``exec`` op.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

# A numeric event parameter: an int in a concrete trace, a term in a symbolic one.
Num: TypeAlias = Any


class Seg(enum.Enum):
    """A segment register the model covers."""

    FS = "fs"
    GS = "gs"


class PtraceField(enum.Enum):
    """The FS/GS slots of ``struct user_regs_struct`` that PEEKUSER/POKEUSER address."""

    FS = "fs"
    GS = "gs"
    FS_BASE = "fs_base"
    GS_BASE = "gs_base"


# struct user_regs_struct (arch/x86/include/asm/user_64.h): 27 u64 slots in offset order.
USER_REGS_SLOTS: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
    "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp",
    "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)  # fmt: skip


def slot_offset(name: str) -> int:
    """Byte offset of a ``user_regs_struct`` slot (``fs_base`` is 168)."""
    return 8 * USER_REGS_SLOTS.index(name)


class ArchCode(enum.Enum):
    """arch_prctl codes (arch/x86/include/uapi/asm/prctl.h)."""

    SET_GS = "SET_GS"  # 0x1001
    SET_FS = "SET_FS"  # 0x1002
    GET_FS = "GET_FS"  # 0x1003
    GET_GS = "GET_GS"  # 0x1004

    @property
    def seg(self) -> Seg:
        """The segment the code addresses."""
        return Seg.FS if self in (ArchCode.SET_FS, ArchCode.GET_FS) else Seg.GS

    @property
    def is_set(self) -> bool:
        """True for the SET codes."""
        return self in (ArchCode.SET_FS, ArchCode.SET_GS)


class Abi(enum.Enum):
    """Which system-call ABI set_thread_area is reached through."""

    X64 = "64"
    IA32 = "ia32"


class ObserveVia(enum.Enum):
    """How an ``observe`` reads the bases (extension of fsgs-trace/1)."""

    RDBASE = "rdbase"  # RDFSBASE/RDGSBASE (needs CR4.FSGSBASE)
    ARCH_PRCTL = "arch_prctl"  # arch_prctl(ARCH_GET_FS/GS): the kernel's report
    FAULT = "fault"  # infer from a faulting address, as fsgsbase.c read_base(); returns via IRET


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDesc:
    """The fields of ``struct user_desc`` (arch/x86/include/uapi/asm/ldt.h)."""

    base_addr: Num = 0
    limit: Num = 0
    seg_32bit: Num = 0
    contents: Num = 0
    read_exec_only: Num = 0
    limit_in_pages: Num = 0
    seg_not_present: Num = 0
    useable: Num = 0


USER_DESC_FIELDS: tuple[str, ...] = (
    "base_addr", "limit", "seg_32bit", "contents", "read_exec_only",
    "limit_in_pages", "seg_not_present", "useable",
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class MovSeg:
    """User code executes ``mov selector, %seg``."""

    seg: Seg
    selector: Num


@dataclass(frozen=True, slots=True, kw_only=True)
class WrBase:
    """User code executes WRFSBASE/WRGSBASE."""

    seg: Seg
    value: Num


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchPrctl:
    """The arch_prctl system call; *value* only for the SET codes."""

    code: ArchCode
    value: Num = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyLdt:
    """``modify_ldt(1, &user_desc, sizeof user_desc)``."""

    entry: Num
    desc: UserDesc


@dataclass(frozen=True, slots=True, kw_only=True)
class SetThreadArea:
    """set_thread_area; *entry_number* -1 asks the kernel for a free TLS slot."""

    entry_number: Num
    desc: UserDesc
    abi: Abi = Abi.X64


@dataclass(frozen=True, slots=True, kw_only=True)
class Yield:
    """The task is switched out, the other task of its CPU runs *other*, the task returns."""

    other: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupt:
    """An interrupt or exception taken in user mode, returning through IRET."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Migrate:
    """The task is switched out and resumes on CPU *cpu*."""

    cpu: Num


@dataclass(frozen=True, slots=True, kw_only=True)
class Observe:
    """The task reads its selectors and bases; *via* None means the format's default."""

    via: ObserveVia | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PtracePeek:
    """Tracer: PTRACE_PEEKUSER of one FS/GS slot."""

    field: PtraceField


@dataclass(frozen=True, slots=True, kw_only=True)
class PtracePoke:
    """Tracer: PTRACE_POKEUSER of one FS/GS slot."""

    field: PtraceField
    value: Num


@dataclass(frozen=True, slots=True, kw_only=True)
class PtraceSetregs:
    """Tracer: PTRACE_GETREGS, replace *fields* (slot name -> value), PTRACE_SETREGS."""

    fields: tuple[tuple[str, Num], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Signal:
    """A signal is delivered; the handler observes; rt_sigreturn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """The task forks; the child observes its state and exits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec:
    """The task calls execve (extension of fsgs-trace/1); the trace goes on in the new image."""


Event: TypeAlias = (
    MovSeg | WrBase | ArchPrctl | ModifyLdt | SetThreadArea | Yield | Interrupt | Migrate
    | Observe | PtracePeek | PtracePoke | PtraceSetregs | Signal | Fork | Exec
)  # fmt: skip

# op name in fsgs-trace/1 -> event class
OPS: dict[str, type] = {
    "mov_seg": MovSeg,
    "wrbase": WrBase,
    "arch_prctl": ArchPrctl,
    "modify_ldt": ModifyLdt,
    "set_thread_area": SetThreadArea,
    "yield": Yield,
    "interrupt": Interrupt,
    "migrate": Migrate,
    "observe": Observe,
    "ptrace_peek": PtracePeek,
    "ptrace_poke": PtracePoke,
    "ptrace_setregs": PtraceSetregs,
    "signal": Signal,
    "fork": Fork,
    "exec": Exec,
}

# Ops the other task may perform inside ``yield.other`` (user-mode actions of a running thread).
OTHER_TASK_OPS: frozenset[str] = frozenset(
    {"mov_seg", "wrbase", "arch_prctl", "modify_ldt", "set_thread_area", "observe"}
)


def op_name(event: Event) -> str:
    """The fsgs-trace/1 op name of *event*."""
    for name, cls in OPS.items():
        if type(event) is cls:
            return name
    raise TypeError(type(event).__name__)  # pragma: no cover - closed union


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """One fsgs-trace/1 document: an optional CPU model name and the events."""

    events: tuple[Event, ...]
    cpu: str | None = None
