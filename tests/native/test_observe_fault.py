# SPDX-License-Identifier: MIT
"""``observe`` with ``via: "fault"`` is exact natively, in the two cases where the kernel
selftest's read_base() is not: a base within 7 bytes below 0x800000000000 (an 8-byte read
crosses into the non-canonical range, whose #GP reports si_addr 0) and a base that is
mapped memory (no fault at all). The model reads the base, then takes a full signal round
trip (`Semantics._observe`); the program must report the base and still take the round
trip, which shows in the selector 3 that the round trip's IRET nulls.

The mapped-base case needs an address that is mapped in every run: the top page of the
stack, with address-space randomisation off (``setarch -R``), is 0x7fffffffe000.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from fsgs_smt.native import cgen
from fsgs_smt.native.machine import probe
from fsgs_smt.native.run import (
    ReplayReport,
    compare,
    compile_program,
    parse_output,
    predict,
    replay,
)
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import MovSeg, Observe, ObserveVia, Seg, Trace, WrBase
from tests.native.conftest import native_skip_reason, requires_native
from tests.native.test_replay import explain

STACK_TOP = 0x7FFFFFFFF000  # the end of [stack] without randomisation (TASK_SIZE_MAX)


def _trace(fs_base: int, gs_base: int) -> Trace:
    """GS selector 3 (cleared by an IRET), both bases set, two fault-observes, an observe."""
    return Trace(events=(
        MovSeg(seg=Seg.GS, selector=3), WrBase(seg=Seg.GS, value=gs_base),
        WrBase(seg=Seg.FS, value=fs_base), Observe(via=ObserveVia.FAULT),
        Observe(via=ObserveVia.FAULT), Observe(),
    ))  # fmt: skip


def _check_round_trip(report: ReplayReport, fs_base: int, gs_base: int) -> None:
    """The model's view: the bases as set, GS 3 seen by the first observe, 0 after it."""
    first = report.events[3]
    assert {"fs": "0x0", "fs_base": hex(fs_base), "gs": "0x3", "gs_base": hex(gs_base)} == (
        first.result.predicted
    )
    assert "0x0" == first.state.predicted["gs"]


def test_the_fault_read_is_one_byte_with_a_guard_page_for_mapped_bases() -> None:
    """The generated read: a 1-byte load through the segment; RDxBASE and a guard-page
    SIGSEGV when it does not fault; si_code tells a #GP (no address) apart."""
    text = cgen.c_source(_trace(0x1000, 0x2000))

    assert "movb %%gs:(%%rcx), %%al" in text
    assert "movb %%fs:(%%rcx), %%al" in text
    assert "mov %%gs:(%%rcx), %%rax" not in text  # the selftest's 8-byte read
    assert "PROT_NONE" in text
    assert "t->fault_code == SI_KERNEL ? before : t->fault_addr" in text


@requires_native
@pytest.mark.parametrize(
    ("fs_base", "gs_base"),
    [(0x7FFFFFFFFFF9, 0x7FFFFFFFFFFD), (0x7FFFFFFFFFFF, 0x7FFFFFFFFFF8)],
)
def test_a_base_just_below_the_non_canonical_range_is_exact(fs_base: int, gs_base: int) -> None:
    """Bases 1 to 7 bytes below 0x800000000000: the read reports them, as the model does."""
    info = probe()
    trace = _trace(fs_base, gs_base)
    report = replay(trace, load_checked("linux-5.9"), CPU_MODELS[info.cpu_model], runs=3,
                    info=info)  # fmt: skip

    _check_round_trip(report, fs_base, gs_base)
    assert report.agrees, explain(report)


def _setarch_skip_reason() -> str:
    if native_skip_reason():
        return native_skip_reason()
    if shutil.which("setarch") is None:
        return "setarch (util-linux) is not on PATH: no way to turn off randomisation"
    maps = subprocess.run(  # noqa: S603 - fixed arguments
        ["setarch", platform.machine(), "-R", "cat", "/proc/self/maps"],  # noqa: S607
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    stack = [ln for ln in maps.stdout.splitlines() if ln.endswith("[stack]")]
    if maps.returncode != 0 or not stack:
        return f"setarch -R does not run here: {maps.stderr.strip()[:100]}"
    end = int(stack[0].split()[0].split("-")[1], 16)
    if end != STACK_TOP:
        return f"without randomisation the stack ends at {end:#x} here, not {STACK_TOP:#x}"
    return ""


@pytest.mark.skipif(bool(_setarch_skip_reason()), reason=_setarch_skip_reason() or "-")
def test_a_mapped_base_is_exact_and_still_takes_the_signal_round_trip(tmp_path: Path) -> None:
    """Bases in the stack's top page (mapped, so the load does not fault): the program
    reports them (the selftest's retry said 2^63) and still takes the SIGSEGV round trip."""
    fs_base, gs_base = STACK_TOP - 8, STACK_TOP - 0x1000
    trace = _trace(fs_base, gs_base)
    info = probe()
    model = CPU_MODELS[info.cpu_model]
    prediction = predict(load_checked("linux-5.9"), trace, model)
    exe = compile_program(trace, tmp_path, gcc=info.gcc or "gcc", name="mapped")
    runs = []
    for _ in range(2):
        done = subprocess.run(  # noqa: S603 - the program just built
            ["setarch", platform.machine(), "-R", str(exe)],  # noqa: S607
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        runs.append(parse_output(trace, done.stdout))
    report = compare("mapped", trace, "linux-5.9", model.name, prediction, runs)

    _check_round_trip(report, fs_base, gs_base)
    assert report.agrees, explain(report)
