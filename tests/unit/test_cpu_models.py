"""CPU models: the semantics read a model's parameters, never its name, so two models
with the same parameters are one transition system and are decided once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fsgs_smt.encode.system import System
from fsgs_smt.policy.catalog import load_checked, shipped_policies
from fsgs_smt.semantics.cpu import (
    AMD_LEGACY,
    AMD_ZEN3,
    CPU_MODEL_NAMES,
    INTEL,
    same_architecture,
)
from fsgs_smt.semantics.state import Bounds

BOUNDS = Bounds(ncpus=2, ldt_slots=2)


def test_the_architecture_is_every_parameter_but_the_labels() -> None:
    assert INTEL.architecture == AMD_ZEN3.architecture
    assert INTEL.architecture != AMD_LEGACY.architecture
    assert replace(INTEL, va_bits=57).architecture != INTEL.architecture
    assert replace(INTEL, name="x", summary="y").architecture == INTEL.architecture


def test_models_are_grouped_by_architecture_in_the_order_given() -> None:
    assert same_architecture(CPU_MODEL_NAMES) == {
        "intel": ("intel", "amd-zen3"), "amd-legacy": ("amd-legacy",),
    }  # fmt: skip
    assert same_architecture(["amd-zen3", "amd-legacy", "intel"]) == {
        "amd-zen3": ("amd-zen3", "intel"), "amd-legacy": ("amd-legacy",),
    }  # fmt: skip
    assert same_architecture(["amd-legacy"]) == {"amd-legacy": ("amd-legacy",)}


def _terms(policy: str, model: object) -> tuple[object, object]:
    system = System(load_checked(policy), model, BOUNDS)  # type: ignore[arg-type]
    formula, _ = system.trans_instance(0)
    return formula, system.init_constraint(system.state(0))


@pytest.mark.parametrize("policy", [p.name for p in shipped_policies()])
def test_a_renamed_model_builds_the_same_terms(policy: str) -> None:
    """What makes deciding one model per architecture sound: the transition and initial
    terms of a model are those of a copy with another name and summary (z3 hash-conses
    terms, so equal terms are the same AST), and differ for another architecture."""
    renamed = replace(INTEL, name="renamed", summary="another label")
    same = _terms(policy, INTEL), _terms(policy, renamed), _terms(policy, AMD_ZEN3)
    assert all(a.eq(b) for a, b in zip(same[0], same[1], strict=True))  # type: ignore[attr-defined]
    assert all(a.eq(b) for a, b in zip(same[0], same[2], strict=True))  # type: ignore[attr-defined]
    legacy = _terms(policy, AMD_LEGACY)
    assert not legacy[0].eq(same[0][0])  # type: ignore[attr-defined]
