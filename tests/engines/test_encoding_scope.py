"""The transition system covers every reachable world; invariant templates reject bad numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fsgs_smt.encode.system import System, variants
from fsgs_smt.errors import InputError
from fsgs_smt.policy.catalog import POLICIES_DIR, load_checked
from fsgs_smt.policy.invariants import load_invariants
from fsgs_smt.semantics.cpu import INTEL
from fsgs_smt.semantics.state import Bounds


def _policy_copy(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copytree(POLICIES_DIR / "lib", tmp_path / "lib")
    text = (POLICIES_DIR / "linux-5.9.yaml").read_text()
    assert old in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("name", ["linux-5.9", "linux-4.13", "linux-4.7", "linux-4.6",
                                  "lutomirski-2016"])  # fmt: skip
def test_shipped_policies_have_read_only_report_hooks(name: str) -> None:
    """ARCH_GET and ptrace peeks write nothing in the shipped policies: 28 variants suffice."""
    assert 28 == len(variants(load_checked(name)))


def test_a_policy_whose_get_hook_writes_state_gets_those_events_in_the_system(
    tmp_path: Path,
) -> None:
    """If ARCH_GET writes state, GET, observe and the peeks become events of the system."""
    path = _policy_copy(
        tmp_path,
        """  arch_prctl_get:
    # x86_fsbase_read_task() / x86_gsbase_read_task()
""",
        """  arch_prctl_get:
    - "task.index := 0"
""",
    )
    system = System(load_checked(str(path)), INTEL, Bounds(ldt_slots=2))
    names = {v.name for v in system.variants}

    assert {"arch_prctl GET_FS", "observe", "ptrace_peek fs"} <= names


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("selector: 0x10000", "selector out of range: expected an integer in 0..0xffff"),
        ("selector: p.v", "selector: expected a parameter of width 16, got p.v of width 64"),
        ("selector: p.nope", "unknown parameter 'p.nope'"),
    ],
)
def test_invariant_template_numbers_are_checked(tmp_path: Path, field: str, message: str) -> None:
    """A template number out of range, or a parameter of the wrong width, is located bad input."""
    path = tmp_path / "inv.yaml"
    path.write_text(
        "fsgs-invariants: 1\ninvariants:\n  - id: x\n    statement: s\n    source: t\n"
        f"    params: {{v: 64}}\n    events:\n      - {{op: mov_seg, seg: gs, {field}}}\n"
        '    expect: "after.gs == 0"\n'
    )
    with pytest.raises(InputError) as err:
        load_invariants(path)

    assert err.value.one_line().startswith(f"{path}:8:")
    assert message in err.value.one_line()
