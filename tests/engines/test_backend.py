"""The solver layer: a transition asserted as a template instance (bitwuzla substitutes
in its own terms) is the same constraint as the substituted z3 term, in both backends."""

from __future__ import annotations

from functools import cache

import pytest
import z3

from fsgs_smt.encode.system import System, substitute_many
from fsgs_smt.engines.backend import Solver, bitwuzla_available, resolve
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.state import Bounds

SOLVERS = ["z3", "bitwuzla", "bitwuzla/rewrite-1"] if bitwuzla_available() else ["z3"]


@cache
def _system() -> System:
    return System(load_checked("linux-4.13"), CPU_MODELS["intel"], Bounds(ncpus=2, ldt_slots=2))


def test_substitute_many_is_substitute_per_term() -> None:
    x, y, z = z3.BitVecs("x y z", 8)
    terms = {"a": x + y, "b": z3.If(x == 0, y, z), "c": z}
    pairs = [(x, z + 1), (y, z3.BitVecVal(3, 8))]

    out = substitute_many(terms, pairs)

    assert {k: z3.substitute(t, *pairs).eq(out[k]) for k, t in terms.items()} == dict.fromkeys(
        terms, True
    )
    assert {} == substitute_many({}, pairs)


def test_a_step_instance_is_the_substituted_transition() -> None:
    """The template with the step's substitution is, term for term, `trans` of that step."""
    system = _system()
    template, pairs = system.trans_instance(1)

    assert z3.substitute(template, *pairs).eq(system.trans(1))


@pytest.mark.parametrize("backend", SOLVERS)
def test_an_instance_implies_the_transition_from_the_initial_world(backend: str) -> None:
    """From the initial world, no choice of event and parameters satisfies the instance
    asserted through the backend and not the transition itself."""
    system = _system()
    solver = Solver(backend)
    solver.add(system.init_constraint(system.state(1)))
    solver.add_instance(*system.trans_instance(1))

    assert "unsat" == solver.check(z3.Not(system.trans(1))).result


@pytest.mark.parametrize("backend", SOLVERS)
def test_an_instance_constrains_the_step_variables(backend: str) -> None:
    """From the initial world, step 0 taken as an instance: op mov_seg gs with selector 0
    gives GS 0 in world 1, and the model reads it back through the step's names."""
    system = _system()
    solver = Solver(backend)
    solver.add(system.init_constraint(system.state(0)))
    solver.add_instance(*system.trans_instance(0))
    mov_gs = next(i for i, v in enumerate(system.variants) if v.name == "mov_seg gs")
    op, sel = system.op(0), system.params(0)["sel"]

    answer = solver.check(op == mov_gs, sel == 0)

    assert "sat" == answer.result
    assert 0 == solver.model().as_long(system.state(1)["cpu0.gs"])
    assert (mov_gs, 0) == (solver.model().as_long(op), solver.model().as_long(sel))


@pytest.mark.parametrize("backend", SOLVERS)
def test_the_folded_first_step_is_the_instance_from_the_initial_world(backend: str) -> None:
    """`trans_from_initial` (the initial world's constants substituted in) and the
    template's instance over worlds 0 and 1 with world 0 initial say the same: in one
    solver, no choice of event, parameters or world 1 satisfies one and not the other."""
    system = _system()
    s1, p, op = system.state(1), system.params(0), system.op(0)
    folded = system.trans_from_initial(s1, p, op)
    template, pairs = system.trans_instance(0)
    instance = z3.substitute(template, *pairs)
    solver = Solver(backend)
    solver.add(system.init_constraint(system.state(0)))

    assert "unsat" == solver.check(folded != instance).result
    # and it is not vacuous: the folded step does constrain world 1
    mov_gs = next(i for i, v in enumerate(system.variants) if v.name == "mov_seg gs")
    solver.add(folded)
    assert "sat" == solver.check(op == mov_gs, p["sel"] == 0).result
    assert 0 == solver.model().as_long(s1["cpu0.gs"])
    assert "unsat" == solver.check(op == mov_gs, p["sel"] == 0, s1["cpu0.gs"] != 0).result


def test_an_unknown_solver_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown solver 'cvc9'"):
        resolve("cvc9")


@pytest.mark.parametrize("name", SOLVERS)
def test_a_model_evaluates_terms_as_z3_would(name: str) -> None:
    """A model evaluates compound terms (bitwuzla in its own model) and completes a
    constant the query never contained with zero, in every backend."""
    x, y, fresh = z3.BitVecs("mx my mfresh", 16)
    b = z3.Bool("mb")
    solver = Solver(name)
    solver.add(x == 7, y == x * 3, b == z3.ULT(x, y))
    assert solver.check().result == "sat"
    model = solver.model()
    assert 7 + 21 == model.as_long(x + y)
    assert model.is_true(z3.And(b, y == 21))
    assert not model.is_true(z3.Not(b))
    assert 0 == model.as_long(fresh)
    assert 7 == model.as_long(fresh + x)


@pytest.mark.skipif(not bitwuzla_available(), reason="bitwuzla is not installed")
def test_two_constants_of_one_name_and_two_widths_are_unknown_not_a_crash() -> None:
    """The translation to bitwuzla is shared by the process and models are read back by
    name, so a name given two widths cannot be told apart: the query says so (it used to
    fail inside bitwuzla with a sort mismatch, an internal error)."""
    narrow, wide = z3.BitVec("clash@0", 8), z3.BitVec("clash@0", 64)
    first = Solver("bitwuzla")
    first.add(narrow == 1)
    assert "sat" == first.check().result
    second = Solver("bitwuzla")
    second.add(wide == 1)
    answer = second.check()
    assert "unknown" == answer.result
    assert "two constants named clash@0 of different sorts" in answer.reason


@pytest.mark.skipif(not bitwuzla_available(), reason="bitwuzla is not installed")
def test_a_configuration_is_its_backend_with_other_options() -> None:
    solver = Solver("bitwuzla/rewrite-1")
    assert ("bitwuzla", "bitwuzla/rewrite-1") == (solver.backend, solver.config)
    assert "bitwuzla" == Solver("auto").backend


def test_the_first_instance_built_is_of_the_worlds_it_was_asked_for() -> None:
    """`trans_between` on a fresh system (the call that builds the template) maps every
    template variable to the given worlds, not to itself."""
    system = System(load_checked("linux-5.9"), CPU_MODELS["intel"], Bounds(ncpus=2, ldt_slots=1))
    s = {k: z3.BitVec(f"{k}@x", w) if w else z3.Bool(f"{k}@x") for k, w in system.layout.items()}
    s1 = {k: z3.BitVec(f"{k}@y", w) if w else z3.Bool(f"{k}@y") for k, w in system.layout.items()}
    p = {n: z3.BitVec(f"{n}@z", v.size()) for n, v in system.params(0).items()}
    op = z3.BitVec("op@z", system.op_width)

    _, pairs = system.trans_between(s, s1, p, op)

    targets = {str(new) for _, new in pairs}
    assert targets == {str(v) for v in (*s.values(), *s1.values(), *p.values(), op)}


def test_a_group_successor_is_the_semantics_run_on_those_worlds() -> None:
    """`System.group_successor` instantiates a template built once per group: for every
    group, on two different pairs of worlds, it is term for term what running the
    semantics on those worlds builds."""
    system = _system()
    for t in (0, 3):
        s, p, op = system.state(t), system.params(t), system.op(t)
        for group in system.groups():
            got = system.group_successor(group, s, p, op)
            if len(group) == 1:
                want = system.sem.step(s, system.variants[group[0]].build(p)).world
            else:
                alternatives = [(op == i, system.variants[i].build(p)) for i in group]
                want = system.sem.step_any(s, alternatives).world
            assert all(z3.eq(got[k], want[k]) for k in system.layout), group


def test_the_folded_first_step_is_built_once_per_worlds() -> None:
    """Every BMC engine asks for the same first step: the same term comes back, and other
    worlds get their own."""
    system = _system()
    first = system.trans_from_initial(system.state(1), system.params(0), system.op(0))
    again = system.trans_from_initial(system.state(1), system.params(0), system.op(0))
    other = system.trans_from_initial(system.state(7), system.params(6), system.op(6))

    assert first.eq(again)
    assert not first.eq(other)
    assert z3.substitute(
        first, *[(system.state(1)[k], system.state(7)[k]) for k in system.layout]
    ).eq(
        z3.substitute(
            other,
            *[(system.params(6)[n], system.params(0)[n]) for n in system.params(0)],
            (system.op(6), system.op(0)),
        )
    )


def test_a_group_successor_needs_every_parameter() -> None:
    """A parameter left out would leave the template's own variable in the instance,
    shared with every other instance: that is refused."""
    system = _system()
    p = dict(system.params(0))
    del p["val"]

    with pytest.raises(KeyError):
        system.group_successor(system.groups()[0], system.state(0), p, system.op(0))
