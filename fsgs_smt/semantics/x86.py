# SPDX-License-Identifier: MIT
"""The x86-64 architectural model of FS and GS, generic over a value domain.

Layer: semantics. Imports `semantics.domain`, `semantics.state`, `semantics.cpu`.

Everything here is hardware (Intel SDM / AMD APM) or the fixed layout of
Linux's per-CPU GDT; nothing here is a kernel policy. Vendor differences come
only from `CpuModel` fields.
"""

from __future__ import annotations

from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.domain import Domain, V
from fsgs_smt.semantics.events import Seg
from fsgs_smt.semantics.state import Bounds, Choice, Store, read_array, select

FAULT_NONE = 0
FAULT_GP = 1  # #GP -> SIGSEGV (arch/x86/kernel/traps.c)
FAULT_NP = 2  # #NP -> SIGBUS ("segment not present")

GDT_ENTRIES = 16  # GDTR.limit = 16*8-1 (arch/x86/include/asm/segment.h, 64-bit)
GDT_ENTRY_TLS_MIN = 12
GDT_ENTRY_CPUNODE = 15
USER_DS = 0x2B  # __USER_DS

# Fixed words of the 64-bit Linux GDT (arch/x86/kernel/cpu/common.c: gdt_page, GDT_ENTRY_INIT).
# Index 8-9 (TSS) and 10-11 (LDT descriptor) are system descriptors (S=0): their exact base
# does not matter to a MOV, which faults on S=0 before using it.
_GDT_FIXED: dict[int, int] = {
    0: 0,
    1: 0x00CF9B000000FFFF,  # __KERNEL32_CS
    2: 0x00AF9B000000FFFF,  # __KERNEL_CS (L=1)
    3: 0x00CF93000000FFFF,  # __KERNEL_DS
    4: 0x00CFFB000000FFFF,  # __USER32_CS
    5: 0x00CFF3000000FFFF,  # __USER_DS
    6: 0x00AFFB000000FFFF,  # __USER_CS (L=1)
    7: 0,
    8: 0x00008B0000000067,  # TSS, low half (type 0xb busy, S=0)
    9: 0x00000000FFFFFE00,  # TSS, high half: base[63:32]
    10: 0x0000820000000FFF,  # LDT descriptor, low half (type 2, S=0)
    11: 0x0000000000000000,  # LDT descriptor, high half
}


def cpunode_word(cpu: int, node: int = 0) -> int:
    """GDT_ENTRY_CPUNODE: DPL-3 read-only expand-down data, base 0, limit (node << 12) | cpu.

    arch/x86/kernel/cpu/common.c: setup_getcpu() (type 5, S, DPL 3, P, D).
    """
    limit = (node << 12) | cpu
    return (limit & 0xFFFF) | (0xF5 << 40) | (((limit >> 16) & 0xF) << 48) | (1 << 54)


def seg_keys(seg: Seg) -> tuple[str, str]:
    """The (selector, base) register field names of a segment on a CPU in user mode."""
    return ("fs", "fs_base") if seg is Seg.FS else ("gs", "gs_base")


# -- descriptor decoding (SDM Vol. 3A 3.4.5) --------------------------------------------------


def desc_base(d: Domain, desc: V) -> V:
    """zext64(base[31:24] ++ base[23:0]): what a MOV loads into the hidden base (SDM 3.4.4)."""
    high = d.zext(d.extract(desc, 63, 56), 8, 64)
    low = d.zext(d.extract(desc, 39, 16), 24, 64)
    return d.bvor(d.shl(high, d.bv(24, 64), 64), low)


def desc_limit(d: Domain, desc: V) -> V:
    """The 20-bit limit field."""
    low = d.zext(d.extract(desc, 15, 0), 16, 64)
    high = d.zext(d.extract(desc, 51, 48), 4, 64)
    return d.bvor(d.shl(high, d.bv(16, 64), 64), low)


def desc_type(d: Domain, desc: V) -> V:
    """The 4-bit type field (bit 3: code; bit 1: W/R; bit 2: E/C; bit 0: accessed)."""
    return d.zext(d.extract(desc, 43, 40), 4, 64)


def desc_dpl(d: Domain, desc: V) -> V:
    """The descriptor privilege level."""
    return d.zext(d.extract(desc, 46, 45), 2, 64)


def _bit(d: Domain, value: V, n: int) -> V:
    return d.eq(d.extract(value, n, n), d.bv(1, 1))


def desc_s(d: Domain, desc: V) -> V:
    """S: true for a code or data segment, false for a system descriptor."""
    return _bit(d, desc, 44)


def desc_present(d: Domain, desc: V) -> V:
    """P: the segment is present."""
    return _bit(d, desc, 47)


def null_sel(d: Domain, sel: V) -> V:
    """A null selector: sel[15:2] == 0, i.e. 0, 1, 2 or 3 (RPL kept in the register)."""
    return d.eq(d.extract(sel, 15, 2), d.bv(0, 14))


def canonical(d: Domain, value: V, va_bits: int) -> V:
    """Bits 63..va_bits-1 all equal (SDM Vol. 1 3.3.7.1)."""
    return d.eq(d.sext(d.extract(value, va_bits - 1, 0), va_bits, 64), value)


# -- descriptor tables ------------------------------------------------------------------------


def gdt_word(d: Domain, store: Store, cpu: Choice, index: V) -> V:
    """GDT entry *index* (13-bit, zero-extended to 64) of the chosen CPU; 0 beyond the table."""
    words: list[V] = []
    for i in range(GDT_ENTRIES):
        if GDT_ENTRY_TLS_MIN <= i < GDT_ENTRY_TLS_MIN + 3:
            words.append(cpu.read(store, f"gdt_tls{i - GDT_ENTRY_TLS_MIN}"))
        elif i == GDT_ENTRY_CPUNODE:
            words.append(cpu.map_int(d, {p: cpunode_word(int(p[3:])) for _, p in cpu}, 64))
        else:
            words.append(d.bv(_GDT_FIXED[i], 64))
    return select(d, index, words)


def lookup(d: Domain, store: Store, bounds: Bounds, cpu: Choice, sel: V) -> tuple[V, V]:
    """(index within the table limit, descriptor word) for a non-null 16-bit selector."""
    index = d.zext(d.extract(sel, 15, 3), 13, 64)
    is_ldt = _bit(d, sel, 2)
    ldt_n = d.zext(store.get("mm.ldt_n"), 16, 64)
    ldt_ok = d.ult(index, ldt_n)  # LDTR null (nr_entries 0) or index*8+7 > limit: #GP
    gdt_ok = d.ult(index, d.bv(GDT_ENTRIES, 64))
    in_limit = d.ite(is_ldt, ldt_ok, gdt_ok)
    ldt_desc = read_array(d, store, "mm.ldt", bounds.ldt_slots, index)
    desc = d.ite(is_ldt, ldt_desc, gdt_word(d, store, cpu, index))
    return in_limit, desc


def load_fault(d: Domain, sel: V, in_limit: V, desc: V, cpl: int) -> V:
    """The fault a MOV to DS/ES/FS/GS of a non-null selector raises (SDM MOV, 64-bit mode).

    #GP: beyond the table limit; a system descriptor; execute-only code; data or
    non-conforming code with max(CPL, RPL) > DPL. Then #NP if not present.
    """
    typ = desc_type(d, desc)
    is_code = _bit(d, typ, 3)
    readable = _bit(d, typ, 1)
    conforming = _bit(d, typ, 2)
    rpl = d.zext(d.extract(sel, 1, 0), 2, 64)
    eff = d.ite(d.ult(rpl, d.bv(cpl, 64)), d.bv(cpl, 64), rpl)
    priv_bad = d.and_(d.or_(d.not_(is_code), d.not_(conforming)), d.ult(desc_dpl(d, desc), eff))
    gp = d.or_(
        d.not_(in_limit),
        d.or_(d.not_(desc_s(d, desc)), d.or_(d.and_(is_code, d.not_(readable)), priv_bad)),
    )
    return d.ite(
        gp, d.bv(FAULT_GP, 2), d.ite(desc_present(d, desc), d.bv(FAULT_NONE, 2), d.bv(FAULT_NP, 2))
    )


def mov_seg(
    d: Domain,
    model: CpuModel,
    store: Store,
    bounds: Bounds,
    cpu: Choice,
    seg: Seg,
    sel16: V,
    cpl: int,
    guard: V,
) -> V:
    """MOV *sel16* to *seg* on the chosen CPU at *cpl*; returns the fault (2 bits).

    A faulting load changes nothing. A null selector (0..3) is stored as given and
    the base is zeroed or kept according to `CpuModel.null_clears_base`. Writes the
    register fields ``fs``/``fs_base`` or ``gs``/``gs_base`` (for the kernel's
    load_gs_index the caller brackets this with SWAPGS).
    """
    sel_key, base_key = seg_keys(seg)
    is_null = null_sel(d, sel16)
    in_limit, desc = lookup(d, store, bounds, cpu, sel16)
    fault = d.ite(is_null, d.bv(FAULT_NONE, 2), load_fault(d, sel16, in_limit, desc, cpl))
    ok = d.and_(guard, d.eq(fault, d.bv(FAULT_NONE, 2)))
    old_base = cpu.read(store, base_key)
    null_base = d.bv(0, 64) if model.null_clears_base else old_base
    new_base = d.ite(is_null, null_base, desc_base(d, desc))
    cpu.write(store, sel_key, sel16, ok)
    cpu.write(store, base_key, new_base, ok)
    cpu.write(store, f"{sel_key}_desc", d.ite(is_null, d.bv(0, 64), desc), ok)
    return fault


def would_load(d: Domain, store: Store, bounds: Bounds, cpu: Choice, sel16: V, cpl: int) -> V:
    """True if a MOV of *sel16* at *cpl* would not fault (null selectors load)."""
    in_limit, desc = lookup(d, store, bounds, cpu, sel16)
    fault = load_fault(d, sel16, in_limit, desc, cpl)
    return d.or_(null_sel(d, sel16), d.eq(fault, d.bv(FAULT_NONE, 2)))


def swapgs(d: Domain, store: Store, cpu: Choice, guard: V) -> None:
    """SWAPGS: exchange GS.base with IA32_KERNEL_GS_BASE (MSR C000_0102H). SDM Vol. 2."""
    gs_base = cpu.read(store, "gs_base")
    kgs = cpu.read(store, "kernel_gs_base")
    cpu.write(store, "gs_base", kgs, guard)
    cpu.write(store, "kernel_gs_base", gs_base, guard)


def iret_to_user(d: Domain, model: CpuModel, store: Store, cpu: Choice, guard: V) -> None:
    """IRET to CPL 3: a data segment register holding a null selector 1..3 becomes 0.

    SDM IRET (RETURN-TO-OUTER-PRIVILEGE-LEVEL); arch/x86/kernel/signal_32.c above fixup_rpl().
    """
    if not model.iret_nulls_null_selectors:
        return
    for seg in (Seg.FS, Seg.GS):
        sel_key, base_key = seg_keys(seg)
        sel = cpu.read(store, sel_key)
        hit = d.and_(guard, d.and_(null_sel(d, sel), d.not_(d.eq(sel, d.bv(0, 16)))))
        cpu.write(store, sel_key, d.bv(0, 16), hit)
        if not model.iret_null_keeps_base:
            cpu.write(store, base_key, d.bv(0, 64), hit)


def wrbase_user(
    d: Domain, model: CpuModel, store: Store, cpu: Choice, seg: Seg, value: V,
    cr4_fsgsbase: bool, guard: V,
) -> V:  # fmt: skip
    """WRFSBASE/WRGSBASE at CPL 3: #UD if CR4.FSGSBASE is clear, #GP(0) if not canonical.

    Returns 0 (ok), 1 (#GP -> SIGSEGV) or 3 (#UD -> SIGILL) as a 2-bit value.
    """
    if not (cr4_fsgsbase and model.has_fsgsbase):
        return d.bv(3, 2)
    ok = canonical(d, value, model.va_bits)
    _, base_key = seg_keys(seg)
    cpu.write(store, base_key, value, d.and_(guard, ok))
    return d.ite(ok, d.bv(0, 2), d.bv(1, 2))
