# SPDX-License-Identifier: MIT
"""``fsgs-smt doctor``: every fact as an aligned line or JSON, exit 5 where replay cannot run."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner, Result

from fsgs_smt.cli import app
from fsgs_smt.native import machine
from fsgs_smt.native.machine import MachineInfo, probe

runner = CliRunner()

KEYS = (
    "kernel", "kernel_version", "arch", "vendor", "family", "model", "model_name",
    "hypervisor", "ncpus", "fsgsbase", "ia32_emulation", "modify_ldt", "ptrace", "gcc",
    "nscb_cpuid", "null_probe_clears", "null_seg_bug_flag", "cpu_model", "cpu_model_reason",
    "policy", "policy_reason", "native_replay",
)  # fmt: skip


def invoke(*args: str) -> Result:
    """Run the CLI in-process."""
    return runner.invoke(app, list(args))


def expected_code() -> int:
    """0 where native replay can run, else 5."""
    return 5 if probe().native_unavailable() else 0


def test_doctor_text_has_every_key_aligned() -> None:
    """One ``key: value`` line per fact, values starting in one column."""
    result = invoke("doctor")

    assert (expected_code(), "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert list(KEYS) == [line.split(":", 1)[0] for line in lines]
    columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert 1 == len(columns)


def test_doctor_text_shows_what_probe_found() -> None:
    """The text names the CPU model, the policy and whether replay can run."""
    info = probe()

    out = invoke("doctor").stdout

    assert f"cpu_model:         {info.cpu_model}\n" in out
    assert f"policy:            {info.policy}\n" in out
    replay = "yes" if not info.native_unavailable() else f"no: {info.native_unavailable()}"
    assert f"native_replay:     {replay}\n" in out


def test_doctor_json_parses() -> None:
    """--format json is one JSON object with every field of MachineInfo."""
    result = invoke("doctor", "--format", "json")

    assert expected_code() == result.exit_code
    report = json.loads(result.stdout)
    assert {f.name for f in dataclasses.fields(MachineInfo)} <= set(report)
    assert set(KEYS) <= set(report)
    assert isinstance(report["native_replay"], bool)
    assert report["native_replay"] == (report["native_unavailable"] == "")
    assert report["cpu_model"] in ("intel", "amd-legacy", "amd-zen3")


def test_doctor_exits_5_where_replay_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """No gcc: everything is still printed, the reason is given, and the exit code is 5."""
    crippled = dataclasses.replace(probe(run_probes=False), gcc=None)
    monkeypatch.setattr(machine, "probe", lambda **_: crippled)

    result = invoke("doctor")

    assert 5 == result.exit_code
    lines = result.stdout.splitlines()
    assert len(KEYS) == len(lines)
    assert "gcc:               not found" in lines
    assert "ia32_emulation:    unknown (not tested: the C probe did not run)" in lines
    assert lines[-1].startswith("native_replay:     no: ")
    assert "gcc" in lines[-1]


def test_doctor_rejects_an_unknown_format() -> None:
    """A bad --format is bad input: exit 2, one line on stderr."""
    result = invoke("doctor", "--format", "yaml")

    assert 2 == result.exit_code
    assert 1 == len(result.stderr.splitlines())
