# SPDX-License-Identifier: MIT
"""CPU models: each a named set of architectural parameters, never scattered conditions.

Layer: semantics. Imports only the standard library.

Every vendor difference the model knows about is one field here; the rest of
the semantics reads the field and never tests a model's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuModel:
    """Parameters of one CPU model (see the domain reference §1.5, §1.7, §1.9)."""

    name: str
    summary: str
    # Loading a null selector (0..3) into FS/GS zeroes the hidden base. Intel; AMD Zen 2 and
    # later (Zen 3+ advertise CPUID 0x80000021:EAX[6] NullSelectorClearsBase). XTF xsa-191.
    null_clears_base: bool
    # The kernel sets X86_BUG_NULL_SEG ("nulling a selector preserves the base") and takes its
    # workarounds (load __USER_DS before a null selector). arch/x86/kernel/cpu/common.c
    # check_null_seg_clears_base(). Kept apart from the hardware fact on purpose (§6.2 item 14).
    kernel_null_seg_bug: bool
    # CPUID.07H:EBX[0] FSGSBASE: the instructions exist (CR4.FSGSBASE is the kernel's choice).
    has_fsgsbase: bool
    # An IRET to CPL 3 zeroes a nonzero null selector (1..3) in DS/ES/FS/GS (SDM IRET,
    # RETURN-TO-OUTER-PRIVILEGE-LEVEL). FRED's ERETU does not.
    iret_nulls_null_selectors: bool
    # The base is kept when IRET nulls the selector ([E] on AMD Zen 4; assumed for Intel).
    iret_null_keeps_base: bool
    # Linear-address width checked for canonicality: 48 (4-level paging) or 57 (LA57).
    va_bits: int

    @property
    def architecture(self) -> tuple[object, ...]:
        """Every parameter the semantics read (all but the name and the summary). Two models
        with the same architecture give the same transition system, so the same verdicts."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in _LABELS)


_LABELS = ("name", "summary")


def same_architecture(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """*names* grouped by `CpuModel.architecture`: the first name of each group (in the
    order given) maps to all of the group's names, itself first."""
    groups: dict[tuple[object, ...], list[str]] = {}
    for name in names:
        groups.setdefault(CPU_MODELS[name].architecture, []).append(name)
    return {group[0]: tuple(group) for group in groups.values()}


INTEL = CpuModel(
    name="intel",
    summary="Intel: a null selector load clears the base",
    null_clears_base=True,
    kernel_null_seg_bug=False,
    has_fsgsbase=True,
    iret_nulls_null_selectors=True,
    iret_null_keeps_base=True,
    va_bits=48,
)

AMD_LEGACY = CpuModel(
    name="amd-legacy",
    summary="AMD up to Zen 1: a null load keeps the base; the kernel sets X86_BUG_NULL_SEG",
    null_clears_base=False,
    kernel_null_seg_bug=True,
    has_fsgsbase=True,
    iret_nulls_null_selectors=True,
    iret_null_keeps_base=True,
    va_bits=48,
)

AMD_ZEN3 = CpuModel(
    name="amd-zen3",
    summary="AMD Zen 3 and later with NullSelectorClearsBase: a null load clears the base",
    null_clears_base=True,
    kernel_null_seg_bug=False,
    has_fsgsbase=True,
    iret_nulls_null_selectors=True,
    iret_null_keeps_base=True,
    va_bits=48,
)

CPU_MODELS: dict[str, CpuModel] = {m.name: m for m in (INTEL, AMD_LEGACY, AMD_ZEN3)}
CPU_MODEL_NAMES: tuple[str, ...] = tuple(CPU_MODELS)
DEFAULT_CPU = "intel"
