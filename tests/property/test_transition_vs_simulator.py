"""The SMT transition merges every event variant of a step into one term: it must still be
the simulator's step of whichever variant the step's ``op`` names.

* `System.successor` (all variants at once, as BMC unrolls it), evaluated at a concrete
  world, concrete parameters and ``op = i``, is the simulator's step of variant *i* built
  from those parameters;
* `System.group_successor` (a group of variants, as Houdini asks) agrees likewise;
* an ``other: any`` yield of a transition invariant (one symbolic choice of the other
  task's action) is, at each value of the choice, the simulator's yield with that action.

Worlds are reached by random traces, so the stopped, faulted and migrated states occur.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgs_smt.encode.property import Property
from fsgs_smt.encode.system import LDT_ENTRIES, PARAMS, System, other_actions
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.policy.invariants import Invariant, is_any_other
from fsgs_smt.proving import shipped_invariants
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.props import view
from fsgs_smt.semantics.state import Bounds
from tests.strategies import BASES, SELECTORS, traces

BOUNDS = Bounds(ncpus=2, ldt_slots=4)
COMBOS = [("linux-5.9", "intel"), ("linux-4.6", "amd-legacy"), ("lutomirski-2016", "amd-zen3")]


@cache
def _system(policy: str, cpu: str) -> System:
    return System(load_checked(policy), CPU_MODELS[cpu], BOUNDS)


def _value(term: Any) -> int | bool:
    term = z3.simplify(term)
    if z3.is_true(term) or z3.is_false(term):
        return bool(z3.is_true(term))
    assert z3.is_bv_value(term), f"not a constant after substitution: {term}"
    return int(term.as_long())


def _const(system: System, key: str, value: int | bool) -> Any:
    width = system.layout[key]
    return z3.BoolVal(bool(value)) if width == 0 else z3.BitVecVal(int(value), width)


def _reach(system: System, trace: tuple[ev.Event, ...]) -> dict[str, int | bool]:
    world = system.conc.initial_world()
    for event in trace:
        world = system.conc.step(world, event).world
    return world


@st.composite
def step_params(draw: st.DrawFn) -> dict[str, int]:
    """Values for every step parameter, inside the ranges `param_constraint` allows."""
    return {
        "sel": draw(st.one_of(st.sampled_from(SELECTORS), st.integers(0, 0xFFFF))),
        "val": draw(st.one_of(st.sampled_from(BASES), st.integers(0, 2**64 - 1))),
        "ent": draw(st.sampled_from((0, 1, 2, 3, LDT_ENTRIES, 12, 13, 14, 0xFFFFFFFF))),
        "cpu": draw(st.integers(0, BOUNDS.ncpus - 1)),
        "d_base_addr": draw(st.sampled_from((0, 0x7000, 0xBAADF00D))),
        "d_limit": draw(st.sampled_from((0, 0xFFFFF, 0x10))),
        "d_seg_32bit": draw(st.integers(0, 1)),
        "d_contents": draw(st.integers(0, 3)),
        "d_read_exec_only": draw(st.integers(0, 1)),
        "d_limit_in_pages": draw(st.integers(0, 1)),
        "d_seg_not_present": draw(st.integers(0, 1)),
        "d_useable": draw(st.integers(0, 1)),
    }


def _pairs(system: System, s: dict[str, Any], world: dict[str, int | bool]) -> list[Any]:
    return [(s[k], _const(system, k, world[k])) for k in system.layout]


def _param_pairs(p: dict[str, Any], values: dict[str, int]) -> list[Any]:
    return [(p[n], z3.BitVecVal(values[n], PARAMS[n])) for n in PARAMS]


SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(
    combo=st.sampled_from(COMBOS), trace=traces(max_events=4), values=step_params(),
    pick=st.integers(0, 10**6),
)  # fmt: skip
def test_merged_transition_is_the_simulator_step_of_the_chosen_variant(
    combo: tuple[str, str], trace: tuple[ev.Event, ...], values: dict[str, int], pick: int
) -> None:
    """BMC's one-term transition at ``op = i`` is the sim step of variant i, every field."""
    system = _system(*combo)
    world = _reach(system, trace)
    i = pick % len(system.variants)
    if system.variants[i].name.endswith("modify_ldt") and (
        BOUNDS.ldt_slots <= values["ent"] < LDT_ENTRIES
    ):  # outside param_constraint: the LDT beyond the modelled entries
        values = {**values, "ent": LDT_ENTRIES}
    event = system.variants[i].build(values)
    expected = system.conc.step(world, event).world
    s, p, op = system.state(0), system.params(0), system.op(0)
    subst = [*_pairs(system, s, world), *_param_pairs(p, values),
             (op, z3.BitVecVal(i, system.op_width))]  # fmt: skip
    assert _value(z3.substitute(system.param_constraint(p, op), *subst)) is True
    merged = system.successor(s, p, op)
    got = {k: _value(z3.substitute(v, *subst)) for k, v in merged.items()}
    assert got == expected, system.variants[i].name


@SETTINGS
@given(
    combo=st.sampled_from(COMBOS), trace=traces(max_events=4), values=step_params(),
    pick=st.integers(0, 10**6),
)  # fmt: skip
def test_group_successor_is_the_simulator_step_of_the_chosen_variant(
    combo: tuple[str, str], trace: tuple[ev.Event, ...], values: dict[str, int], pick: int
) -> None:
    """Houdini's per-group successor at ``op = i`` is the sim step of variant i."""
    system = _system(*combo)
    groups = system.groups()
    assert sorted(i for g in groups for i in g) == list(range(len(system.variants)))
    shared = groups[0]
    assert len(shared) > 1  # the yields and the migration are asked together
    i = shared[pick % len(shared)]
    if system.variants[i].name.endswith("modify_ldt") and (
        BOUNDS.ldt_slots <= values["ent"] < LDT_ENTRIES
    ):
        values = {**values, "ent": LDT_ENTRIES}
    world = _reach(system, trace)
    expected = system.conc.step(world, system.variants[i].build(values)).world
    s, p, op = system.state(0), system.params(0), system.op(0)
    subst = [*_pairs(system, s, world), *_param_pairs(p, values),
             (op, z3.BitVecVal(i, system.op_width))]  # fmt: skip
    assert _value(z3.substitute(system.group_constraint(shared, p, op), *subst)) is True
    succ = system.group_successor(shared, s, p, op)
    got = {k: _value(z3.substitute(v, *subst)) for k, v in succ.items()}
    assert got == expected, system.variants[i].name


def _any_invariants() -> list[Invariant]:
    return [inv for inv in shipped_invariants() if inv.id in ("Q1a", "selftest-unexpected-base")]


@SETTINGS
@given(
    combo=st.sampled_from(COMBOS), trace=traces(max_events=4), values=step_params(),
    choice=st.integers(0, 15), which=st.integers(0, 1),
)  # fmt: skip
def test_other_any_choice_is_the_simulator_yield_with_that_action(
    combo: tuple[str, str], trace: tuple[ev.Event, ...], values: dict[str, int], choice: int,
    which: int,
) -> None:  # fmt: skip
    """``other: any`` at choice j runs the j-th other-task action (j out of range: none)."""
    system = _system(*combo)
    inv = _any_invariants()[which]
    prop = Property(system, inv)
    world = _reach(system, trace)
    actions = other_actions()
    other = () if choice >= len(actions) else (actions[choice][1](values),)
    after = world
    for event in inv.events:  # these invariants' own events have no parameters
        run = ev.Yield(other=other) if is_any_other(event) else event
        after = system.conc.step(after, run).world
    expected = view(system.conc, after)
    s = system.state(0)
    own, other_vars = prop.param_vars("0")
    assert not own
    subst = [*_pairs(system, s, world), *_param_pairs(other_vars, values),
             (other_vars["any0"], z3.BitVecVal(choice, other_vars["any0"].size()))]  # fmt: skip
    names = prop.run(s, own, other_vars)
    got = {k[len("after."):]: _value(z3.substitute(v, *subst))
           for k, v in names.items() if k.startswith("after.")}  # fmt: skip
    assert got == expected
    events, _ = prop.concrete_events(_Model(dict(subst)), "0")
    assert next(e for e in events if isinstance(e, ev.Yield)) == ev.Yield(other=other)


class _Model:
    """Just enough of a model for `Property.concrete_events`: values by substitution."""

    def __init__(self, values: dict[Any, Any]) -> None:
        self.values = values

    def eval(self, term: Any, model_completion: bool = False) -> Any:
        del model_completion
        return z3.simplify(z3.substitute(term, *self.values.items()))
