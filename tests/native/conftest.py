# SPDX-License-Identifier: MIT
"""Shared skip conditions of the native tests: who may compile and run C on this machine.

`native_skip_reason()` says why native replay cannot run here ("" when it can); it reads
the machine directly (platform, gcc on PATH, ``getauxval(AT_HWCAP2)`` through ctypes) so
that it does not depend on the code under test (only `wrong_model` asks the prober).
`requires_gcc` and `requires_native` are the markers; a skipped test says why.
"""

from __future__ import annotations

import ctypes
import functools
import platform
import shutil
import sys

import pytest

from fsgs_smt.native.machine import probe

AT_HWCAP2 = 26
HWCAP2_FSGSBASE = 1 << 1


def _hwcap2() -> int:
    try:
        libc = ctypes.CDLL(None)
        getauxval = libc.getauxval
    except (OSError, AttributeError):
        return 0
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return int(getauxval(AT_HWCAP2))


def gcc_skip_reason() -> str:
    """Why generated C cannot be compiled here ("" when gcc is on PATH)."""
    return "" if shutil.which("gcc") else "gcc is not on PATH"


@functools.cache
def native_skip_reason() -> str:
    """Why traces cannot be replayed natively here ("" when they can)."""
    if not sys.platform.startswith("linux"):
        return f"native replay needs Linux, this is {sys.platform}"
    if platform.machine() != "x86_64":
        return f"native replay needs x86_64, this is {platform.machine() or 'unknown'}"
    if gcc_skip_reason():
        return gcc_skip_reason()
    if not _hwcap2() & HWCAP2_FSGSBASE:
        return "the kernel does not enable FSGSBASE (AT_HWCAP2 bit 1 clear)"
    return ""


requires_gcc = pytest.mark.skipif(bool(gcc_skip_reason()), reason=gcc_skip_reason() or "-")
requires_native = pytest.mark.skipif(bool(native_skip_reason()), reason=native_skip_reason() or "-")


@functools.cache
def wrong_model() -> tuple[str, str, str]:
    """A CPU model this machine is not, for the tests that must see a mismatch, with the GS
    base it predicts and the one the machine shows after L07's ``wrgsbase 0xaaa000; mov $1,
    %gs``: amd-legacy keeps the base on a null load, the others clear it. The machine may be
    either (an amd-zen3 guest once, an amd-legacy one since 2026-12)."""
    if probe().cpu_model == "amd-legacy":
        return "intel", "0x0", "0xaaa000"
    return "amd-legacy", "0xaaa000", "0x0"
