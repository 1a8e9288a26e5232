# SPDX-License-Identifier: MIT
"""The machine probe: the pure mapping everywhere, the real probes where they can run.

The mapping tests (vendor, CPUID bit, probe result -> CPU model; kernel -> policy) run on
any machine. The native tests compile and run the C probe, so they skip, saying why, unless
the machine is x86-64 Linux with gcc and a kernel that enables FSGSBASE. One test pins the
facts recorded for the project's own machine (../shared/notes/solvers.md) and skips
elsewhere.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from fsgs_smt.native import machine
from fsgs_smt.native.machine import (
    MachineInfo,
    assumed_policy,
    doctor_report,
    kernel_version_of,
    map_cpu_model,
    null_probe_verdict,
    parse_cpuinfo,
    probe,
    run_c_probe,
)
from fsgs_smt.policy.catalog import shipped_policies
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES

FAKE = MachineInfo(
    arch="x86_64", kernel="6.18.44-fc", kernel_version=(6, 18), vendor="AuthenticAMD",
    family=25, model=17, model_name="AMD EPYC", fsgsbase=True, nscb_cpuid=False,
    null_seg_bug_flag=True, null_probe_clears=True, modify_ldt=True, ptrace=True,
    ia32_emulation=True, gcc="/usr/bin/gcc", ncpus=2, cpu_model="amd-zen3",
    cpu_model_reason="", policy="linux-5.9",
)  # fmt: skip


# -- the pure mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "nscb", "clears", "expected"),
    [
        ("GenuineIntel", False, True, "intel"),
        ("GenuineIntel", None, None, "intel"),
        ("GenuineIntel", False, False, "intel"),  # the vendor decides; the reason says so
        ("AuthenticAMD", True, True, "amd-zen3"),
        ("AuthenticAMD", True, None, "amd-zen3"),
        ("AuthenticAMD", False, True, "amd-zen3"),  # a hypervisor hides the bit
        ("AuthenticAMD", None, True, "amd-zen3"),
        ("AuthenticAMD", False, False, "amd-legacy"),
        ("AuthenticAMD", False, None, "amd-legacy"),  # what the kernel assumes without the bit
        ("HygonGenuine", False, False, "amd-legacy"),
        ("HygonGenuine", True, True, "amd-zen3"),
        ("", None, False, "amd-legacy"),
        ("", None, True, "intel"),
        ("", None, None, "intel"),
    ],
)
def test_cpu_model_mapping(vendor: str, nscb: bool | None, clears: bool | None,
                           expected: str) -> None:  # fmt: skip
    """Each combination of vendor, CPUID NSCB bit and probe result maps to one model."""
    model, reason = map_cpu_model(vendor, nscb, clears)

    assert expected == model
    assert model in CPU_MODEL_NAMES
    assert reason.endswith(f": {model}") or f": {model} (" in reason
    assert "\n" not in reason
    if vendor:
        assert reason.startswith(vendor)


def test_hidden_bit_reason_names_the_hypervisor_and_the_kernel_flag() -> None:
    """This machine's case: the reason says why the bit is ignored and that the flag remains."""
    model, reason = map_cpu_model("AuthenticAMD", False, True, null_seg_bug_flag=True)

    assert "amd-zen3" == model
    assert "CPUID NSCB bit clear" in reason
    assert "probe cleared the base" in reason
    assert "hypervisor" in reason
    assert "X86_BUG_NULL_SEG" in reason


def test_contradicting_probe_is_reported_as_unexpected() -> None:
    """Intel, or AMD with the bit, whose probe kept the base: the reason flags it."""
    assert "unexpected" in map_cpu_model("GenuineIntel", False, False)[1]
    assert "unexpected" in map_cpu_model("AuthenticAMD", True, False)[1]
    assert "unexpected" not in map_cpu_model("AuthenticAMD", True, True)[1]


@pytest.mark.parametrize(
    ("version", "fsgsbase", "expected"),
    [
        ((6, 18), True, "linux-5.9"),
        ((5, 9), True, "linux-5.9"),
        ((4, 18), True, "linux-5.9"),  # a distribution backport of FSGSBASE
        ((6, 18), False, "linux-4.13"),  # nofsgsbase
        ((5, 8), False, "linux-4.13"),
        ((4, 13), False, "linux-4.13"),
        ((4, 12), False, "linux-4.7"),
        ((4, 7), False, "linux-4.7"),
        ((4, 6), False, "linux-4.6"),
        ((3, 10), False, "linux-4.6"),
        ((0, 0), False, "linux-4.13"),
        ((0, 0), True, "linux-5.9"),
    ],
)
def test_assumed_policy(version: tuple[int, int], fsgsbase: bool, expected: str) -> None:
    """Each kernel era maps to its shipped policy, and FSGSBASE means linux-5.9."""
    policy, reason = assumed_policy(version, fsgsbase)

    assert expected == policy
    assert policy in {info.name for info in shipped_policies()}
    assert "\n" not in reason
    if version < (5, 9) and fsgsbase and version != (0, 0):
        assert "backport" in reason


@pytest.mark.parametrize(
    ("release", "expected"),
    [("6.18.44-fc-v595", (6, 18)), ("5.9.0", (5, 9)), ("4.4", (4, 4)), ("weird", (0, 0))],
)
def test_kernel_version_of(release: str, expected: tuple[int, int]) -> None:
    """(major, minor) from a release string; (0, 0) when there is none."""
    assert expected == kernel_version_of(release)


def test_parse_cpuinfo_reads_the_first_processor_only() -> None:
    """Fields of processor 0; later processors do not overwrite them."""
    text = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
        "bugs\t\t: sysret_ss_attrs null_seg\n\nprocessor\t: 1\nvendor_id\t: Other\n"
    )

    fields = parse_cpuinfo(text)

    assert "AuthenticAMD" == fields["vendor_id"]
    assert "25" == fields["cpu family"]
    assert "sysret_ss_attrs null_seg" == fields["bugs"]
    assert "0" == fields["processor"]


@pytest.mark.parametrize(
    ("cleared", "kept", "expected"),
    [("32", "0", True), ("0", "32", False), ("1", "31", True), ("0", "0", None)],
)
def test_null_probe_verdict(cleared: str, kept: str, expected: bool | None) -> None:
    """Any cleared trial means the hardware clears (the kernel can only fake a kept base)."""
    assert expected is null_probe_verdict({"null_cleared": cleared, "null_kept": kept})


def test_null_probe_verdict_without_output_is_none() -> None:
    """No probe output: no verdict."""
    assert null_probe_verdict({}) is None


def test_native_unavailable_names_each_missing_piece() -> None:
    """Empty on a capable machine; otherwise one line naming every missing piece."""
    missing = dataclasses.replace(FAKE, arch="aarch64", gcc=None, fsgsbase=False)

    why = missing.native_unavailable()

    if sys.platform.startswith("linux"):
        assert "" == FAKE.native_unavailable()
    assert "x86_64" in why
    assert "gcc" in why
    assert "FSGSBASE" in why
    assert "\n" not in why


def test_doctor_report_is_json_ready() -> None:
    """Every field, the version as a list, and whether native replay can run."""
    report = doctor_report(dataclasses.replace(FAKE, gcc=None))

    assert {f.name for f in dataclasses.fields(MachineInfo)} <= set(report)
    assert [6, 18] == report["kernel_version"]
    assert report["native_replay"] is False
    assert "gcc" in str(report["native_unavailable"])


def test_probe_without_running_anything_never_fails() -> None:
    """run_probes=False runs nothing: no null probe, no ptrace, no IA32 check."""
    info = probe(run_probes=False)

    assert info.null_probe_clears is None
    assert info.c_probe_ran is False
    assert info.ptrace is False
    assert info.ia32_emulation is False
    assert info.cpu_model in CPU_MODEL_NAMES
    assert info.ncpus >= 1


# -- the real probes -------------------------------------------------------------------------


def native_machine() -> MachineInfo:
    """The probed machine, or skip saying why the native probes cannot run here."""
    info = probe(run_probes=False)
    why = info.native_unavailable()
    if why:
        pytest.skip(f"native probes cannot run here: {why}")
    return probe()


def cpuinfo() -> dict[str, str]:
    """The first processor's /proc/cpuinfo fields."""
    return parse_cpuinfo(Path("/proc/cpuinfo").read_text())


def test_probe_runs_every_probe() -> None:
    """On a capable machine the C probe runs to its end and the null probe gives an answer."""
    info = native_machine()
    assert info.gcc is not None

    facts = run_c_probe(info.gcc)

    assert facts is not None
    assert "1" == facts["done"]
    assert info.c_probe_ran is True
    assert "wrgsbase" == facts["null_method"]
    assert "0" == facts["null_other"]
    assert info.null_probe_clears is not None
    assert "1" == facts["hwcap2_fsgsbase"]  # C's getauxval agrees with ctypes'


def test_cpuid_agrees_with_the_kernel() -> None:
    """CPUID read by the probe is what the kernel shows in /proc/cpuinfo."""
    info = native_machine()
    assert info.gcc is not None
    facts = run_c_probe(info.gcc)
    assert facts is not None
    fields = cpuinfo()

    assert fields["vendor_id"] == facts["vendor"]
    assert fields["cpu family"] == facts["family"]
    assert fields["model"] == facts["model"]
    flags = fields["flags"].split()
    assert ("hypervisor" in flags) == ("1" == facts["hypervisor"])
    # The kernel reads the NSCB bit since 5.16 but never shows it in the flags line (its
    # cpufeatures.h name is ""); what shows is the bug it spares: an AMD CPU that advertises
    # NSCB never gets X86_BUG_NULL_SEG (check_null_seg_clears_base() returns first).
    if info.kernel_version >= (5, 16) and facts["vendor"] == "AuthenticAMD" and "bugs" in fields:
        assert "null_sel_clr_base" not in flags
        if "1" == facts["nscb"]:
            assert "null_seg" not in fields["bugs"].split()


def test_both_ways_of_setting_the_base_see_the_same_hardware() -> None:
    """WRGSBASE and arch_prctl(ARCH_SET_GS) then a null load: the same outcome every trial."""
    info = native_machine()
    assert info.gcc is not None
    by_wrgsbase = run_c_probe(info.gcc)
    by_prctl = run_c_probe(info.gcc, "arch_prctl")
    assert by_wrgsbase is not None
    assert by_prctl is not None

    assert "arch_prctl" == by_prctl["null_method"]
    assert null_probe_verdict(by_wrgsbase) is null_probe_verdict(by_prctl)
    trials = int(by_wrgsbase["null_trials"])
    assert trials in (int(by_wrgsbase["null_cleared"]), int(by_wrgsbase["null_kept"]))


def test_architecture_and_kernel_rules_hold_here() -> None:
    """The hardware and the kernel behave as the domain reference says (§1.5)."""
    info = native_machine()

    if info.vendor == "GenuineIntel" or info.nscb_cpuid:
        assert info.null_probe_clears is True  # Intel and NSCB AMD clear the base
    if info.vendor == "GenuineIntel":
        assert info.null_seg_bug_flag is not True  # the kernel never flags Intel
    amd_guest = info.vendor == "AuthenticAMD" and info.hypervisor
    if amd_guest and info.nscb_cpuid is False and info.kernel_version >= (5, 16):
        # check_null_seg_clears_base(): a guest without the bit always assumes the bug.
        assert info.null_seg_bug_flag is True


def test_c_probes_agree_with_the_python_ones() -> None:
    """modify_ldt and ptrace give the same answer from C and from ctypes."""
    info = native_machine()

    assert machine._modify_ldt_ctypes() is info.modify_ldt
    assert machine._ptrace_python() is info.ptrace


def test_the_project_machine() -> None:
    """The facts recorded for the project's machine (AMD EPYC Zen 4 guest, Linux 6.18)."""
    info = native_machine()
    if (info.vendor, info.family, info.model, info.hypervisor, info.kernel_version[0]) != (
        "AuthenticAMD", 25, 17, True, 6
    ):  # fmt: skip
        pytest.skip("not the project's machine (AuthenticAMD family 25 model 17 guest, 6.x)")

    assert info.nscb_cpuid is False  # the hypervisor hides CPUID 0x80000021 EAX[6]
    assert info.null_seg_bug_flag is True  # so the kernel sets X86_BUG_NULL_SEG
    assert info.null_probe_clears is True  # but Zen 4 clears the base on a null load
    assert "amd-zen3" == info.cpu_model
    assert "linux-5.9" == info.policy
    assert info.ia32_emulation is True
    assert info.modify_ldt is True
    assert info.ptrace is True
    assert "" == info.native_unavailable()
