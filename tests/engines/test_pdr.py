# SPDX-License-Identifier: MIT
"""The Spacer engine: its invariant is read back correctly and never trusted unchecked."""

from __future__ import annotations

import z3

from fsgs_smt.encode.property import Property
from fsgs_smt.engines import pdr
from fsgs_smt.engines.kind import Deadline
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import Options, check, lemmas_for, system_for
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS

POLICY = load_checked("linux-5.9")
MODEL = CPU_MODELS["intel"]


def test_spacer_interpretations_map_variables_in_argument_order() -> None:
    """Inv(a, b) with a = 1, b = 0 forever: the read-back invariant must say so, not b = 1."""
    a, b = z3.BitVecs("a b", 4)
    inv = z3.Function("Inv", a.sort(), b.sort(), z3.BoolSort())
    horn = z3.SolverFor("HORN")
    horn.add(z3.ForAll([a, b], z3.Implies(z3.And(a == 1, b == 0), inv(a, b))))
    horn.add(z3.ForAll([a, b], z3.Implies(z3.And(inv(a, b), a == 0), z3.BoolVal(False))))
    assert horn.check() == z3.sat
    interp = horn.model()[inv]
    body = interp.else_value() if isinstance(interp, z3.FuncInterp) else interp
    got = z3.substitute_vars(body, a, b)
    solver = z3.Solver()
    solver.add(got, a == 0)  # the invariant must exclude the bad state
    assert solver.check() == z3.unsat


def test_a_candidate_that_is_not_inductive_does_not_recheck() -> None:
    system = system_for(POLICY, MODEL, Options())
    (inv,) = select_invariants(None, ["kernel-never-loads-noncanonical"])
    prop = Property(system, inv)
    s = system.state(0)
    weak = z3.Not(s["kernel_gp"])  # true initially and implies P, but not inductive alone
    assert pdr.recheck(system, prop, weak, 60, solver="auto").startswith("after ")


def test_the_houdini_lemmas_recheck_as_a_spacer_certificate() -> None:
    options = Options()
    system = system_for(POLICY, MODEL, options)
    lemmas, why = lemmas_for(system, Deadline(600), options)
    assert not why
    (inv,) = select_invariants(None, ["kernel-never-loads-noncanonical"])
    prop = Property(system, inv)
    assert pdr.recheck(system, prop, lemmas.conj(system.state(0)), 120, solver="auto") == ""
    assert pdr.recheck(system, prop, z3.BoolVal(False), 60, solver="auto") == ("initially: sat")


def test_the_pdr_engine_never_proves_a_violated_invariant() -> None:
    (inv,) = select_invariants(None, ["ptrace-roundtrip-accepted"])
    verdict = check(POLICY, inv, MODEL, Options(engine="pdr", depth=2, timeout=60))
    assert verdict.status is Status.VIOLATED, verdict
