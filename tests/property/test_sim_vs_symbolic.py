"""The concrete simulator and the symbolic step are one semantics: they must agree.

Two properties, over random traces for every shipped policy and CPU model:

* constant inputs: the z3-domain step on the concrete world gives the same state and
  results as the concrete step (this runs every event of >= 500 traces);
* symbolic inputs: the z3-domain step on a world and event parameters that are all
  variables, evaluated at the concrete point by substitution, gives the same state and
  results (this checks the if-then-else terms themselves, not just constant folding).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import z3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsgs_smt.policy.catalog import load_checked, shipped_policies
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.domain import CONCRETE
from fsgs_smt.semantics.interp import Machine
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.semantics.step import Semantics
from fsgs_smt.symbolic.z3domain import Z3Domain
from tests.strategies import traces

BOUNDS = Bounds(ncpus=2, ldt_slots=4)
POLICIES = {p.name: load_checked(p.name) for p in shipped_policies()}
COMBOS = [(p, c) for p in sorted(POLICIES) for c in sorted(CPU_MODELS)]
Z3 = Z3Domain()


def _semantics(policy: str, cpu: str, domain: Any) -> Semantics:
    return Semantics(Machine(domain, POLICIES[policy], CPU_MODELS[cpu], BOUNDS))


def _value(term: Any) -> int | bool:
    term = z3.simplify(term)
    if z3.is_true(term) or z3.is_false(term):
        return bool(z3.is_true(term))
    assert z3.is_bv_value(term), f"not a constant after substitution: {term}"
    return int(term.as_long())


def _lift_world(world: dict[str, Any], widths: dict[str, int]) -> dict[str, Any]:
    return {k: (Z3.boolean(v) if widths[k] == 0 else Z3.bv(v, widths[k])) for k, v in world.items()}


@settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(combo=st.sampled_from(COMBOS), trace=traces(max_events=6))
def test_symbolic_step_on_constants_equals_simulator(
    combo: tuple[str, str], trace: tuple[ev.Event, ...]
) -> None:
    """Every state field and result of every event agrees between the two domains."""
    policy, cpu = combo
    conc = _semantics(policy, cpu, CONCRETE)
    sym = _semantics(policy, cpu, Z3)
    world = conc.initial_world()
    for event in trace:
        expected = conc.step(world, event)
        got = sym.step(_lift_world(world, conc.layout), event)
        assert {k: _value(v) for k, v in got.world.items()} == expected.world, event
        assert {k: _value(v) for k, v in got.result.items()} == expected.result, event
        world = expected.world


# -- fully symbolic ----------------------------------------------------------------------------

_PARAM_WIDTH = {"selector": 16, "value": 64, "entry": 32, "cpu": 8, "entry_number": 32}


def _symbolize(event: ev.Event, tag: str, subst: list[tuple[Any, Any]]) -> ev.Event:
    """*event* with every numeric parameter replaced by a fresh variable (recorded in *subst*)."""

    def var(name: str, value: int, width: int) -> Any:
        v = z3.BitVec(f"{tag}.{name}", width)
        subst.append((v, z3.BitVecVal(value & ((1 << width) - 1), width)))
        return v

    changes: dict[str, Any] = {}
    for f in dataclasses.fields(event):  # type: ignore[arg-type]
        value = getattr(event, f.name)
        if f.name in _PARAM_WIDTH and isinstance(value, int) and not isinstance(value, bool):
            if isinstance(event, ev.ArchPrctl) and not event.code.is_set:
                continue
            changes[f.name] = var(f.name, value, _PARAM_WIDTH[f.name])
        elif isinstance(value, ev.UserDesc):
            desc = {n: var(f"desc.{n}", getattr(value, n), 32) for n in ev.USER_DESC_FIELDS}
            changes[f.name] = ev.UserDesc(**desc)
        elif f.name == "fields" and isinstance(event, ev.PtraceSetregs):
            changes[f.name] = tuple((k, var(f"fields.{k}", v, 64)) for k, v in value)
    return dataclasses.replace(event, **changes)  # type: ignore[type-var]


def _symbolic_world(widths: dict[str, int], world: dict[str, Any], subst: list) -> dict:
    out = {}
    for k, w in widths.items():
        v = Z3.var(f"s.{k}", w)
        out[k] = v
        subst.append((v, Z3.boolean(world[k]) if w == 0 else Z3.bv(world[k], w)))
    return out


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(combo=st.sampled_from(COMBOS), trace=traces(max_events=3))
def test_symbolic_step_evaluated_at_a_point_equals_simulator(
    combo: tuple[str, str], trace: tuple[ev.Event, ...]
) -> None:
    """The symbolic transition, substituted with the concrete world and event, is the sim step."""
    policy, cpu = combo
    conc = _semantics(policy, cpu, CONCRETE)
    sym = _semantics(policy, cpu, Z3)
    world = conc.initial_world()
    for n, event in enumerate(trace):
        expected = conc.step(world, event)
        subst: list[tuple[Any, Any]] = []
        got = sym.step(
            _symbolic_world(conc.layout, world, subst), _symbolize(event, f"e{n}", subst)
        )
        assert {k: _value(z3.substitute(v, *subst)) for k, v in got.world.items()} == (
            expected.world
        ), event
        assert {k: _value(z3.substitute(v, *subst)) for k, v in got.result.items()} == (
            expected.result
        ), event
        world = expected.world


@pytest.mark.parametrize(("policy", "cpu"), COMBOS)
def test_every_event_kind_runs_symbolically(policy: str, cpu: str) -> None:
    """Each op builds a transition over a fully symbolic world without error."""
    sym = _semantics(policy, cpu, Z3)
    world = {k: Z3.var(f"s.{k}", w) for k, w in sym.layout.items()}
    sample = [
        ev.MovSeg(seg=ev.Seg.GS, selector=z3.BitVec("sel", 16)),
        ev.WrBase(seg=ev.Seg.FS, value=z3.BitVec("v", 64)),
        ev.ArchPrctl(code=ev.ArchCode.SET_GS, value=z3.BitVec("v", 64)),
        ev.ArchPrctl(code=ev.ArchCode.GET_FS),
        ev.ModifyLdt(entry=z3.BitVec("e", 32), desc=ev.UserDesc(base_addr=z3.BitVec("b", 32))),
        ev.SetThreadArea(
            entry_number=z3.BitVec("n", 32), desc=ev.UserDesc(seg_32bit=1), abi=ev.Abi.IA32
        ),
        ev.Yield(other=(ev.MovSeg(seg=ev.Seg.GS, selector=z3.BitVec("o", 16)),)),
        ev.Interrupt(),
        ev.Migrate(cpu=z3.BitVec("c", 8)),
        ev.Observe(),
        ev.PtracePeek(field=ev.PtraceField.GS_BASE),
        ev.PtracePoke(field=ev.PtraceField.GS, value=z3.BitVec("p", 64)),
        ev.PtraceSetregs(fields=()),
        ev.Signal(),
        ev.Fork(),
        ev.Exec(),
    ]
    assert {ev.op_name(e) for e in sample} == set(ev.OPS)
    for event in sample:
        out = sym.step(world, event)
        assert set(out.world) == set(sym.layout)
        assert out.result["ran"] is not None
