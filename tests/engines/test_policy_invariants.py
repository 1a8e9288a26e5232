# SPDX-License-Identifier: MIT
"""A policy's own ``invariants:`` section: parsed like specs/invariants, checked by prove."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from fsgs_smt.cli import app
from fsgs_smt.policy.catalog import POLICIES_DIR

OWN = """
invariants:
  - id: my-wrgsbase-sticks
    statement: "WRGSBASE of a user address is what the task then has."
    source: "a test"
    params: {v: 64}
    events:
      - {op: wrbase, seg: gs, value: p.v}
    assume: "!before.stopped && p.v < 0x7ffffffff000"
    expect: "after.gs_base == p.v"
"""


def _policy(tmp_path: Path, extra: str) -> Path:
    (tmp_path / "lib").mkdir()
    shutil.copy(POLICIES_DIR / "lib" / "linux-common.yaml", tmp_path / "lib")
    path = tmp_path / "mine.yaml"
    path.write_text((POLICIES_DIR / "linux-5.9.yaml").read_text() + extra)
    return path


def test_a_policys_own_invariant_is_proved(tmp_path: Path) -> None:
    path = _policy(tmp_path, OWN)
    result = CliRunner().invoke(
        app, ["prove", str(path), "-i", "my-wrgsbase-sticks", "--cpu", "intel"]
    )
    assert result.exit_code == 0, result.output
    assert "my-wrgsbase-sticks" in result.output and "PROVED" in result.output


def test_a_policys_own_invariant_can_be_violated(tmp_path: Path) -> None:
    path = _policy(tmp_path, OWN.replace("p.v < 0x7ffffffff000", "true"))
    result = CliRunner().invoke(
        app, ["counterexample", str(path), "my-wrgsbase-sticks", "--cpu", "intel",
              "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert '"wrbase"' in result.output


def test_an_id_that_clashes_with_a_shipped_invariant_is_located(tmp_path: Path) -> None:
    path = _policy(tmp_path, OWN.replace("my-wrgsbase-sticks", "Q1a"))
    result = CliRunner().invoke(app, ["prove", str(path), "--cpu", "intel"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.startswith(f"{path}:") and "invariant id 'Q1a' is already used" in line, line


def test_an_error_in_a_policys_invariant_is_located(tmp_path: Path) -> None:
    path = _policy(tmp_path, OWN.replace("after.gs_base == p.v", "after.gs_bass == p.v"))
    result = CliRunner().invoke(app, ["prove", str(path), "--cpu", "intel"])
    assert result.exit_code == 2
    assert result.output.startswith(f"{path}:"), result.output
    assert "gs_bass" in result.output


NARROW = """
invariants:
  - id: narrow-v
    statement: "A migration to CPU p.v keeps the GS base (an 8-bit p.v)."
    source: "a test"
    params: {v: 8}
    events:
      - {op: migrate, cpu: p.v}
    assume: "!before.stopped"
    expect: "after.gs_base == before.gs_base"
"""


def test_a_parameter_name_may_have_other_widths_in_other_invariants(tmp_path: Path) -> None:
    """``p.v`` is 64 bits wide in the shipped selftest-ptrace-write-gsbase and 8 here; both
    are checked in one process, whose solvers share one translation (this was an internal
    error: a sort mismatch inside bitwuzla)."""
    path = _policy(tmp_path, NARROW)
    result = CliRunner().invoke(
        app, ["prove", str(path), "-i", "selftest-ptrace-write-gsbase", "-i", "narrow-v",
              "--cpu", "intel"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 2 == result.output.count("PROVED"), result.output
