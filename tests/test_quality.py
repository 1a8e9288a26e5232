"""ruff and mypy run clean under the configuration in pyproject.toml (part of the test command)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument lists
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    """`ruff check` finds nothing in the package, the tests and the benchmarks."""
    if shutil.which("ruff") is None and _run("ruff", "--version").returncode != 0:
        pytest.fail("ruff is not installed: install the test extras (pip install '.[test]')")
    result = _run("ruff", "check", "fsgs_smt", "tests", "bench")

    assert 0 == result.returncode, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """`mypy` (strict, per pyproject.toml) finds nothing in the package."""
    result = _run("mypy")

    assert 0 == result.returncode, result.stdout + result.stderr


def test_semantics_and_front_end_never_import_a_solver_or_the_terminal() -> None:
    """Layering: policy/, semantics/ and native/ import no z3, pysmt, typer or rich."""
    forbidden = ("import z3", "from z3", "import pysmt", "from pysmt", "import typer",
                 "from typer", "import rich", "from rich")  # fmt: skip
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for layer in ("policy", "semantics", "native")
        for path in sorted((ROOT / "fsgs_smt" / layer).glob("*.py"))
        for line in path.read_text().splitlines()
        if line.strip().startswith(forbidden)
    ]

    assert [] == offenders
