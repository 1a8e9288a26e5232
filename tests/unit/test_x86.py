"""The architectural model (reference §1): MOV to FS/GS, descriptors, canonicality, IRET."""

from __future__ import annotations

import pytest

from fsgs_smt.semantics import x86
from fsgs_smt.semantics.cpu import AMD_LEGACY, INTEL, CpuModel
from fsgs_smt.semantics.domain import CONCRETE as D
from fsgs_smt.semantics.events import Seg
from fsgs_smt.semantics.state import Bounds, Choice, Store, layout

BOUNDS = Bounds(ncpus=2, ldt_slots=8)
CPU0 = Choice.one(D, "cpu0")


def _fill_ldt(base: int, *, contents: int = 0, rx_only: int = 0, present: int = 1) -> int:
    """fill_ldt() of a 32-bit, page-granular, DPL-3 segment (arch/x86/include/asm/desc.h)."""
    typ = ((rx_only ^ 1) << 1) | (contents << 2) | 1
    return (
        0xFFFF | ((base & 0xFFFFFF) << 16) | (typ << 40) | (1 << 44) | (3 << 45)
        | (present << 47) | (0xF << 48) | (1 << 54) | (1 << 55) | (((base >> 24) & 0xFF) << 56)
    )  # fmt: skip


def _store(ldt: list[int], gs_base: int = 0xABC000) -> Store:
    values: dict[str, int | bool] = {k: (False if w == 0 else 0) for k, w in layout(BOUNDS).items()}
    for i, word in enumerate(ldt):
        values[f"mm.ldt{i}"] = word
    values["mm.ldt_n"] = len(ldt)
    values["cpu0.gs_base"] = gs_base
    return Store(D, values)


LDT = [
    _fill_ldt(0x7000),  # 0x7: data
    _fill_ldt(0x9000, contents=2, rx_only=1),  # 0xf: execute-only code
    _fill_ldt(0x9000, contents=2),  # 0x17: exec/read code
    _fill_ldt(0x5000, present=0),  # 0x1f: not present
    _fill_ldt(0xA000, rx_only=1),  # 0x27: read-only data
]


def _mov(sel: int, model: CpuModel = INTEL, cpl: int = 3) -> tuple[int, int, int]:
    store = _store(LDT)
    fault = x86.mov_seg(D, model, store, BOUNDS, CPU0, Seg.GS, sel, cpl, True)
    return fault, store.get("cpu0.gs"), store.get("cpu0.gs_base")


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        (0x7, (x86.FAULT_NONE, 0x7, 0x7000)),  # LDT data, RPL 3
        (0x4, (x86.FAULT_NONE, 0x4, 0x7000)),  # RPL 0 is kept and does not matter at CPL 3
        (0xF, (x86.FAULT_GP, 0, 0xABC000)),  # execute-only code
        (0x17, (x86.FAULT_NONE, 0x17, 0x9000)),  # readable code
        (0x1F, (x86.FAULT_NP, 0, 0xABC000)),  # not present: #NP (SIGBUS)
        (0x27, (x86.FAULT_NONE, 0x27, 0xA000)),  # read-only data
        (0x2F, (x86.FAULT_GP, 0, 0xABC000)),  # index 5 beyond a 5-entry LDT
        (0x2B, (x86.FAULT_NONE, 0x2B, 0)),  # __USER_DS
        (0x18, (x86.FAULT_GP, 0, 0xABC000)),  # __KERNEL_DS: DPL 0 < CPL 3
        (0x10, (x86.FAULT_GP, 0, 0xABC000)),  # __KERNEL_CS
        (0x3B, (x86.FAULT_GP, 0, 0xABC000)),  # unused GDT entry 7 (S = 0)
        (0x43, (x86.FAULT_GP, 0, 0xABC000)),  # TSS: a system descriptor
        (0x63, (x86.FAULT_GP, 0, 0xABC000)),  # empty TLS slot
        (0x7B, (x86.FAULT_NONE, 0x7B, 0)),  # CPUNODE: DPL-3 data, base 0
        (0x83, (x86.FAULT_GP, 0, 0xABC000)),  # beyond GDTR.limit
    ],
)
def test_mov_to_gs_at_cpl3(sel: int, expected: tuple[int, int, int]) -> None:
    """MOV to GS: the fault (in architectural order) or the loaded selector and base (§1.5)."""
    assert expected == _mov(sel)


def test_gp_is_checked_before_np() -> None:
    """A not-present DPL-0 descriptor raises #GP (privilege), not #NP: #GP comes first."""
    store = _store([_fill_ldt(0x5000, present=0) & ~(3 << 45)])
    fault = x86.mov_seg(D, INTEL, store, BOUNDS, CPU0, Seg.GS, 0x7, 3, True)

    assert x86.FAULT_GP == fault


def test_ldt_selector_without_an_ldt_faults() -> None:
    """A TI=1 selector with no LDT (LDTR null) raises #GP."""
    store = _store([])
    fault = x86.mov_seg(D, INTEL, store, BOUNDS, CPU0, Seg.GS, 0x7, 3, True)

    assert x86.FAULT_GP == fault


@pytest.mark.parametrize(("model", "base"), [(INTEL, 0), (AMD_LEGACY, 0xABC000)])
@pytest.mark.parametrize("sel", [0, 1, 2, 3])
def test_null_selector_load(model: CpuModel, base: int, sel: int) -> None:
    """A null selector loads with its RPL; the base is cleared or kept per CPU model."""
    assert (x86.FAULT_NONE, sel, base) == _mov(sel, model)


def test_kernel_mode_load_of_rpl3_kernel_cs_faults() -> None:
    """At CPL 0 the RPL still counts: 0x13 (__KERNEL_CS | 3) faults (L30)."""
    assert x86.FAULT_GP == _mov(0x13, cpl=0)[0]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0x7FFFFFFFFFFF, True), (0xFFFF800000000000, True), (0xFFFFFFFFFFFFFFFF, True),
        (0x0000800000000000, False), (0x00FF000000000000, False), (0xFF00000000000000, False),
    ],
)  # fmt: skip
def test_canonical_48(value: int, ok: bool) -> None:
    """Canonical means bits 63..47 are equal (4-level paging; §1.6 [E])."""
    assert ok == x86.canonical(D, value, 48)


def test_descriptor_base_is_zero_extended_32_bits() -> None:
    """desc_base() reassembles base[31:24] ++ base[23:0] (§1.3)."""
    assert 0xBAADF00D == x86.desc_base(D, _fill_ldt(0xBAADF00D))


@pytest.mark.parametrize(("sel", "after"), [(1, 0), (2, 0), (3, 0), (0, 0), (0x2B, 0x2B)])
def test_iret_nulls_only_nonzero_null_selectors(sel: int, after: int) -> None:
    """IRET to CPL 3 turns GS 1..3 into 0 and keeps the base (§1.9)."""
    store = _store(LDT, gs_base=0x9999000)
    store.set("cpu0.gs", sel, True)
    x86.iret_to_user(D, INTEL, store, CPU0, True)

    assert (after, 0x9999000) == (store.get("cpu0.gs"), store.get("cpu0.gs_base"))


def test_wrbase_user_faults() -> None:
    """WRGSBASE: #UD (SIGILL, code 3) without CR4.FSGSBASE; #GP (1) on a non-canonical value."""
    store = _store(LDT)
    ud = x86.wrbase_user(D, INTEL, store, CPU0, Seg.GS, 0x1000, False, True)
    gp = x86.wrbase_user(D, INTEL, store, CPU0, Seg.GS, 0x800000000000, True, True)
    ok = x86.wrbase_user(D, INTEL, store, CPU0, Seg.GS, 0xFFFF800000001000, True, True)

    assert (3, 1, 0, 0xFFFF800000001000) == (ud, gp, ok, store.get("cpu0.gs_base"))
