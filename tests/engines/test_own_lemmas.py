# SPDX-License-Identifier: MIT
"""An invariant's own ``lemmas`` are claims proved along with it, never assumed.

``prove --engine auto`` proves an invariant from the lemmas Houdini generates (inductive,
re-checked); it used to leave the invariant's own lemmas out entirely, so an invariant with
the lemma ``false`` was PROVED (``--engine kind`` said UNKNOWN). The proof of the invariant
itself was sound (``false`` was never assumed: the certificate names only generated lemmas);
the verdict was not, as it vouched for a false lemma. Now every engine proves the lemmas
too, or does not say PROVED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fsgs_smt.engines import pdr
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import Options, check, lemmas_for, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS

POLICY = load_checked("linux-5.9")
MODEL = CPU_MODELS["intel"]
KINDS = {
    "state": '    always: "running || !running"\n',
    "transition": "    events: [{op: yield}]\n    expect: r0.ran || !r0.ran\n",
    "noninterference": "    noninterference: [fs]\n",
}


def _invariant(tmp_path: Path, kind: str, lemma: str) -> Any:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "fsgs-invariants: 1\ninvariants:\n  - id: mine\n    statement: s\n    source: t\n"
        f"{KINDS[kind]}    lemmas: [{lemma!r}]\n",
        encoding="utf-8",
    )
    (inv,) = select_invariants(path, [])
    return inv


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_false_lemma_is_never_proved(tmp_path: Path, kind: str) -> None:
    inv = _invariant(tmp_path, kind, "false")
    verdict = check(POLICY, inv, MODEL, Options(depth=1, timeout=600.0))
    assert verdict.status is not Status.PROVED, verdict
    if kind == "noninterference":  # its BMC compares runs, and says why it is not PROVED
        assert "lemma 0 of mine" in verdict.reason
        assert "is not implied by the inductive invariant" in verdict.reason
    else:  # BMC finds the lemma false in the initial world
        assert (Status.UNKNOWN, "a lemma of mine fails at depth 0") == (
            verdict.status, verdict.reason,
        )  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_lemma_that_holds_is_proved_with_the_invariant(tmp_path: Path, kind: str) -> None:
    """The generated inductive lemmas imply it (every base is canonical)."""
    inv = _invariant(tmp_path, kind, "canonical(fs_base) && canonical(gs_base)")
    verdict = check(POLICY, inv, MODEL, Options(depth=1, timeout=600.0))
    assert Status.PROVED == verdict.status, verdict.reason
    assert "false" not in verdict.certificate


def test_a_lemma_the_inductive_lemmas_do_not_imply_is_not_proved(tmp_path: Path) -> None:
    """``fs_base != 1`` holds initially (and BMC to depth 0 sees no more), but the generated
    lemmas do not imply it (a task may set its FS base to 1): BOUNDED, saying which lemma."""
    inv = _invariant(tmp_path, "state", "fs_base != 1")
    verdict = check(POLICY, inv, MODEL, Options(depth=0, timeout=600.0))
    assert Status.BOUNDED == verdict.status
    assert verdict.reason.startswith("lemma 0 of mine (at ")


def test_spacers_proof_must_imply_the_lemmas_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--engine pdr``: Spacer proves the invariant alone; its (re-checked) inductive
    invariant must imply the lemmas as well. Spacer is replaced by the Houdini lemmas,
    which re-check as its certificate (test_pdr), to keep this test fast."""
    inv = _invariant(tmp_path, "state", "false")
    options = Options(depth=1, timeout=600.0, engine="pdr")
    system = system_for(POLICY, MODEL, options)
    lemmas, why = lemmas_for(system, Deadline(600), options)
    assert "" == why
    found = pdr.PdrResult("proved", invariant=lemmas.conj(system.state(0)))
    monkeypatch.setattr(pdr, "run", lambda *args, **kwargs: found)
    verdict = check(POLICY, inv, MODEL, options)
    assert verdict.status is not Status.PROVED, verdict
    inv = _invariant(tmp_path, "state", "canonical(fs_base)")
    assert Status.PROVED == check(POLICY, inv, MODEL, options).status
