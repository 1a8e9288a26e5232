# SPDX-License-Identifier: MIT
"""The vocabulary of the policy language: hooks, state fields, builtins.

Layer: policy (front end). Imports nothing from fsgs_smt but `semantics.events`
constants. The checker validates policies against these tables and the
interpreter in `semantics.interp` gives them meaning, so they are defined once.

Roots (the first part of a dotted name):

* thread objects ``task``, ``prev``, ``next``, ``child``: ``struct thread_struct``
  fields ``fsindex gsindex fsbase gsbase`` and ``tls[0..2]``; inside a segment
  context also ``index`` and ``base`` (the fields of the bound segment).
* ``cpu``: the registers of the CPU the hook runs on (read-only; changed only by
  the architectural builtins): ``fs fs_base gs gs_base kernel_gs_base id gdt_tls[0..2]``.
  In the kernel ``cpu.gs_base`` is the kernel's per-CPU base and the user's GS base
  sits in ``cpu.kernel_gs_base`` (SWAPGS, SDM Vol. 2).
* ``live``: in a segment context, ``live.sel`` and ``live.base``: the user-visible
  selector and base of the bound segment wherever they currently are.
* ``mm``: ``ldt_n`` (nr_entries, 0 = no LDT) and ``ldt[i]`` (descriptor words).
* ``frame``: the signal frame's ``fs`` and ``gs`` (``struct sigcontext``).
* ``arg``: the hook's arguments; ``setting``: policy settings; ``feature``:
  what the kernel knows of the CPU (``null_seg_bug``, ``fsgsbase``, ``ia32_emulation``).
* ``current`` (bool): the hook's task is the one running on ``cpu``; ``seg``: the
  bound segment, compared with ``fs`` or ``gs``.
"""

from __future__ import annotations

from dataclasses import dataclass

BOOL = "bool"
U64 = "u64"
SEG = "seg"
TASK = "task"

THREAD_ROOTS = ("task", "prev", "next", "child")
THREAD_FIELDS: dict[str, int] = {"fsindex": 16, "gsindex": 16, "fsbase": 64, "gsbase": 64}
THREAD_ARRAYS: dict[str, tuple[int, int]] = {"tls": (3, 64)}  # name -> (length, width)
THREAD_SEG_ALIASES: dict[str, tuple[str, str]] = {  # generic -> (fs field, gs field)
    "index": ("fsindex", "gsindex"),
    "base": ("fsbase", "gsbase"),
}

CPU_FIELDS: dict[str, int] = {
    "fs": 16, "fs_base": 64, "gs": 16, "gs_base": 64, "kernel_gs_base": 64, "id": 64,
}  # fmt: skip
CPU_ARRAYS: dict[str, tuple[int, int]] = {"gdt_tls": (3, 64)}
LIVE_FIELDS = ("sel", "base")

MM_FIELDS: dict[str, int] = {"ldt_n": 16}
MM_ARRAYS = ("ldt",)  # length: the world's LDT bound

FRAME_FIELDS: dict[str, int] = {"fs": 16, "gs": 16}
FEATURES = ("null_seg_bug", "fsgsbase", "ia32_emulation")

DESC_ARGS = (
    "base_addr", "limit", "seg_32bit", "contents", "read_exec_only",
    "limit_in_pages", "seg_not_present", "useable",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HookSpec:
    """What a hook may name, and what it returns."""

    threads: tuple[str, ...]
    seg_bound: bool = False
    args: tuple[tuple[str, str], ...] = ()  # (name, type)
    frame: bool = False
    returns: bool = False
    doc: str = ""


_COMMON = ("task",)
HOOKS: dict[str, HookSpec] = {
    "exec": HookSpec(_COMMON, doc="execve: start_thread_common(), flush_thread(), the new mm"),
    "switch_out": HookSpec(("prev",), doc="__switch_to(): what is saved of prev (save_fsgs)"),
    "switch_in": HookSpec(("prev", "next"), doc="__switch_to(): what is loaded for next"),
    "arch_prctl_set": HookSpec(
        _COMMON, seg_bound=True, args=(("value", U64),), returns=True,
        doc="do_arch_prctl_64(ARCH_SET_FS/GS); also called for non-current tasks",
    ),
    "arch_prctl_get": HookSpec(
        _COMMON, seg_bound=True, returns=True, doc="do_arch_prctl_64(ARCH_GET_FS/GS)"
    ),
    "ptrace_peek_sel": HookSpec(_COMMON, seg_bound=True, returns=True, doc="getreg(fs|gs)"),
    "ptrace_peek_base": HookSpec(
        _COMMON, seg_bound=True, returns=True, doc="getreg(fs_base|gs_base)"
    ),
    "ptrace_peek_other": HookSpec(
        _COMMON, args=(("slot", U64),), returns=True,
        doc="getreg() of any other user_regs_struct slot (arg.slot is its byte offset)",
    ),
    "ptrace_poke_sel": HookSpec(
        _COMMON, seg_bound=True, args=(("value", U64),), returns=True, doc="putreg(fs|gs)"
    ),
    "ptrace_poke_base": HookSpec(
        _COMMON, seg_bound=True, args=(("value", U64),), returns=True,
        doc="putreg(fs_base|gs_base)",
    ),
    "ptrace_poke_other": HookSpec(
        _COMMON, args=(("slot", U64), ("value", U64)), returns=True,
        doc="putreg() of any other slot (arg.slot is its byte offset)",
    ),
    "signal_deliver": HookSpec(_COMMON, frame=True, doc="setup_rt_frame(): fills frame.fs/gs"),
    "sigreturn": HookSpec(_COMMON, frame=True, doc="rt_sigreturn: restore_sigcontext()"),
    "fork": HookSpec(("task", "child"), doc="copy_thread(): the child's thread state"),
    "modify_ldt": HookSpec(
        _COMMON, args=(("entry", U64), *((f, U64) for f in DESC_ARGS)), returns=True,
        doc="modify_ldt(1, ...): write_ldt() and its effect on live segments",
    ),
    "set_thread_area": HookSpec(
        _COMMON,
        args=(("entry_number", U64), *((f, U64) for f in DESC_ARGS), ("abi_ia32", BOOL)),
        returns=True,
        doc="set_thread_area (64-bit nr 205 or ia32 nr 243): do_set_thread_area()",
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Builtin:
    """An architectural primitive callable from policy expressions or statements."""

    params: tuple[str, ...]  # types
    returns: str | None  # None: a statement only
    effectful: bool = False
    seg_bound: bool = False
    doc: str = ""


BUILTINS: dict[str, Builtin] = {
    # pure: descriptor decoding (SDM Vol. 3A 3.4.5) and address checks
    "desc_base": Builtin((U64,), U64, doc="zero-extended 32-bit base of a descriptor word"),
    "desc_limit": Builtin((U64,), U64, doc="20-bit limit field of a descriptor word"),
    "desc_type": Builtin((U64,), U64, doc="4-bit type field"),
    "desc_dpl": Builtin((U64,), U64, doc="DPL field"),
    "desc_s": Builtin((U64,), BOOL, doc="S bit: code/data (true) or system (false)"),
    "desc_present": Builtin((U64,), BOOL, doc="P bit"),
    "null_sel": Builtin((U64,), BOOL, doc="selector is null (0..3): sel[15:2] == 0"),
    "canonical": Builtin((U64,), BOOL, doc="canonical for the CPU model's address width"),
    "loadable": Builtin(
        (U64,), BOOL, doc="a CPL-3 MOV of this selector on cpu would not fault (null counts)"
    ),
    "bits": Builtin((U64, U64, U64), U64, doc="bits(x, hi, lo): x[hi:lo], hi and lo literal"),
    "min": Builtin((U64, U64), U64, doc="unsigned minimum"),
    "max": Builtin((U64, U64), U64, doc="unsigned maximum"),
    # effectful: the architectural operations the kernel performs
    "load_seg": Builtin(
        (U64,), BOOL, effectful=True, seg_bound=True,
        doc="kernel-mode MOV to the bound segment (load_gs_index for GS); "
        "returns false and changes nothing if it faults",
    ),
    "wrbase": Builtin(
        (U64,), None, effectful=True, seg_bound=True,
        doc="WRMSR MSR_FS_BASE / MSR_KERNEL_GS_BASE (or WR*BASE): a non-canonical value "
        "is a kernel #GP (recorded) and changes nothing",
    ),
    "load_tls": Builtin((TASK,), None, effectful=True, doc="load_TLS(t): t.tls -> cpu.gdt_tls"),
    "ldt_reset": Builtin((), None, effectful=True, doc="the mm gets an empty LDT"),
}  # fmt: skip

REQUIRED_SETTINGS: dict[str, str] = {"fsgsbase": BOOL, "ia32_emulation": BOOL}


# -- invariants ----------------------------------------------------------------------------
# What an invariant may read about the task under study (computed by semantics.props.view).
VIEW_FIELDS: dict[str, str] = {
    "fs": "u64", "fs_base": "u64", "gs": "u64", "gs_base": "u64",
    "fs_desc": "u64", "gs_desc": "u64", "fs_table": "u64", "gs_table": "u64",
    "fs_loadable": "bool", "gs_loadable": "bool",
    "fsindex": "u64", "gsindex": "u64", "fsbase": "u64", "gsbase": "u64",
    "tls0": "u64", "tls1": "u64", "tls2": "u64",
    "cpu": "u64", "running": "bool", "stopped": "bool", "kernel_gp": "bool", "ldt_n": "u64",
    "kgs_ok": "bool",
}  # fmt: skip

INVARIANT_BUILTINS: dict[str, int] = {
    "desc_base": 1, "desc_present": 1, "desc_dpl": 1, "desc_type": 1, "desc_s": 1,
    "desc_limit": 1, "null_sel": 1, "canonical": 1, "bits": 3, "min": 2, "max": 2,
}  # fmt: skip
# Result values of events, by op (see semantics.step): the names a transition invariant
# reads as r<i>.<name>.
RESULT_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "mov_seg": (("fault", U64),), "wrbase": (("fault", U64),),
    "arch_prctl": (("ret", U64),), "modify_ldt": (("ret", U64),),
    "set_thread_area": (("ret", U64),),
    "observe": (("fs", U64), ("fs_base", U64), ("gs", U64), ("gs_base", U64), ("fault", U64)),
    "fork": (("fs", U64), ("fs_base", U64), ("gs", U64), ("gs_base", U64), ("fault", U64)),
    "signal": (
        ("handler_fs", U64), ("handler_fs_base", U64), ("handler_gs", U64),
        ("handler_gs_base", U64), ("sigcontext_fs", U64), ("sigcontext_gs", U64),
    ),
    "ptrace_peek": (("ret", U64),), "ptrace_poke": (("ret", U64),),
    "ptrace_setregs": (("ret", U64),),
    "yield": (), "interrupt": (), "migrate": (), "exec": (),
}  # fmt: skip
