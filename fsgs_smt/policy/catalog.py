# SPDX-License-Identifier: MIT
"""The shipped policies, and how a command-line POLICY argument is resolved.

Layer: policy (front end). Imports `policy.load`, `policy.check`, `errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsgs_smt.errors import InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.policy.check import check_policy
from fsgs_smt.policy.load import POLICIES_DIR, load_policy
from fsgs_smt.source import Span

DEFAULT_POLICY = "linux-5.9"


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One shipped policy: its name, file and one-line title."""

    name: str
    path: Path
    title: str


def shipped_policies() -> list[PolicyInfo]:
    """The policies under specs/policies, sorted by name."""
    out = []
    for path in sorted(POLICIES_DIR.glob("*.yaml")):
        policy = load_policy(path)
        out.append(PolicyInfo(policy.name, path, policy.title))
    return out


def resolve_policy_path(ref: str) -> Path:
    """A path to an existing file, or the file of the shipped policy named *ref*.

    Raises:
        InputError: neither a file nor a shipped policy name.
    """
    path = Path(ref)
    if _is_file(path):
        return path
    shipped = POLICIES_DIR / f"{ref}.yaml"
    if "/" not in ref and _is_file(shipped):
        return shipped
    names = ", ".join(p.stem for p in sorted(POLICIES_DIR.glob("*.yaml")))
    raise InputError(
        Span("<command line>", 1, 1),
        f"unknown policy {describe(ref)}: expected a policy file or one of {names}",
    )


def _is_file(path: Path) -> bool:
    """Whether *path* names a file; False where the system refuses the name (too long)."""
    try:
        return path.is_file()
    except OSError:
        return False


def load_checked(ref: str) -> ast.Policy:
    """Resolve, load and check a policy.

    Raises:
        InputError: the reference does not resolve, or the policy is malformed.
    """
    return check_policy(load_policy(resolve_policy_path(ref)))
