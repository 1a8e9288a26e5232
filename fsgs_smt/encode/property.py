# SPDX-License-Identifier: MIT
"""Invariants as predicates over one symbolic world: what the engines check.

Layer: encode. Imports z3, `encode.system`, `semantics.props`, `policy.invariants`.

A state invariant is its expression over the world's view. A transition invariant is
turned into the state predicate "running the invariant's events from this world
satisfies ``assume => expect``" (the task must be running before them); ``other: any``
becomes a conjunction over every action the other task could take.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import z3

from fsgs_smt.encode.system import PARAMS, System, at, other_actions
from fsgs_smt.policy.invariants import Invariant, ParamRef, is_any_other
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.props import Evaluator, result_names, view

_TEMPLATE_TAG = "tmpl"


@dataclass(frozen=True, slots=True)
class Instance:
    """One way of instantiating a transition invariant's events (a choice per ``other: any``)."""

    choices: tuple[int, ...]  # index into other_actions() (len = none) per AnyOther


def _instantiate(
    events: tuple[ev.Event, ...], values: Mapping[str, Any], oparams: Mapping[str, Any],
    choices: tuple[int, ...],
) -> list[ev.Event]:  # fmt: skip
    """*events* with parameters replaced by *values* and each ``other: any`` by a choice."""
    actions = other_actions()
    out: list[ev.Event] = []
    k = 0
    for event in events:
        if is_any_other(event):
            choice = choices[k]
            k += 1
            other = () if choice == len(actions) else (actions[choice][1](oparams),)
            out.append(ev.Yield(other=other))
            continue
        out.append(_subst(event, values))
    return out


def _subst(event: Any, values: Mapping[str, Any]) -> Any:
    changes: dict[str, Any] = {}
    for name in getattr(event, "__dataclass_fields__", {}):
        value = getattr(event, name)
        if isinstance(value, ParamRef):
            changes[name] = values[value.name]
        elif isinstance(value, ev.UserDesc):
            changes[name] = _subst(value, values)
        elif name == "fields" and isinstance(value, tuple):
            changes[name] = tuple(
                (k, values[v.name] if isinstance(v, ParamRef) else v) for k, v in value
            )
        elif name == "other" and isinstance(value, tuple):
            changes[name] = tuple(_subst(e, values) for e in value)
    return replace(event, **changes) if changes else event


def instances(inv: Invariant) -> list[Instance]:
    """Every combination of other-task choices the invariant's events allow."""
    n = sum(1 for e in inv.events if is_any_other(e))
    size = len(other_actions()) + 1
    return [Instance(c) for c in itertools.product(range(size), repeat=n)]


class Property:
    """An invariant over the worlds of a `System`, in the z3 domain.

    Like the transition, each predicate is built once over the template world (running the
    invariant's events symbolically is the expensive part) and instantiated per world and
    tag by substitution.
    """

    def __init__(self, system: System, inv: Invariant) -> None:
        self.system = system
        self.inv = inv
        self.ev = Evaluator(system.sem)
        self._templates: dict[object, Any] = {}

    def _instantiate_template(
        self, key: object, build: Callable[[Mapping[str, Any], str], Any],
        s: Mapping[str, Any], tag: str,
    ) -> Any:  # fmt: skip
        template_state = self.system.template_state()
        if key not in self._templates:
            self._templates[key] = build(template_state, _TEMPLATE_TAG)
        own_t, other_t = self.param_vars(_TEMPLATE_TAG)
        own, other = self.param_vars(tag)
        pairs = [(template_state[k], s[k]) for k in self.system.layout]
        pairs += [(own_t[n], own[n]) for n in own_t] + [(other_t[n], other[n]) for n in other_t]
        return z3.substitute(self._templates[key], *pairs)

    def param_vars(self, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The invariant's own parameters and the other task's, at *tag*."""
        d = self.system.d
        own = {n: d.var(f"p.{n}@{tag}", w) for n, w in self.inv.params.items()}
        other = {n: d.var(f"o.{n}@{tag}", w) for n, w in PARAMS.items()}
        return own, other

    def holds(self, s: Mapping[str, Any], tag: str) -> Any:
        """The invariant holds in world *s* (parameters named with *tag*)."""
        return self._instantiate_template("holds", self._holds, s, tag)

    def _holds(self, s: Mapping[str, Any], tag: str) -> Any:
        inv = self.inv
        if inv.kind == "state":
            assert inv.always is not None  # noqa: S101
            return self.ev.eval(inv.always, view(self.system.sem, s))
        parts = [self.holds_instance(s, tag, i) for i in instances(inv)]
        return z3.And(parts) if len(parts) > 1 else parts[0]

    def holds_instance(self, s: Mapping[str, Any], tag: str, inst: Instance) -> Any:
        """The transition invariant for one choice of the other task's actions."""
        return self._instantiate_template(
            inst, lambda s, tag: self._holds_instance(s, tag, inst), s, tag
        )

    def _holds_instance(self, s: Mapping[str, Any], tag: str, inst: Instance) -> Any:
        sem = self.system.sem
        own, other = self.param_vars(tag)
        names = self.run(sem, s, own, other, inst)
        assume = self.ev.eval(self.inv.assume, names) if self.inv.assume is not None else True
        assert self.inv.expect is not None  # noqa: S101
        expect = self.ev.eval(self.inv.expect, names)
        return z3.Implies(z3.And(names["before.running"], assume), expect)

    def lemmas(self, s: Mapping[str, Any]) -> list[Any]:
        """The invariant's lemmas in world *s*."""
        names = view(self.system.sem, s)
        return [self.ev.eval(lemma, names) for lemma in self.inv.lemmas]

    def run(
        self, sem: Any, s: Mapping[str, Any], own: Mapping[str, Any], other: Mapping[str, Any],
        inst: Instance,
    ) -> dict[str, Any]:  # fmt: skip
        """The names a transition invariant reads, after running its events from *s*."""
        names: dict[str, Any] = {f"before.{k}": v for k, v in view(sem, s).items()}
        world = dict(s)
        for i, event in enumerate(_instantiate(self.inv.events, own, other, inst.choices)):
            out = sem.step(world, event)
            for k, v in result_names(out.result).items():
                # results keep their native widths (selectors 16, faults 2): read as u64
                names[f"r{i}.{k}"] = v if z3.is_bool(v) else z3.ZeroExt(64 - v.size(), v)
            world = out.world
        names.update({f"after.{k}": v for k, v in view(sem, world).items()})
        d = self.system.d
        names.update({f"p.{k}": d.zext(v, self.inv.params[k], 64) for k, v in own.items()})
        return names

    def concrete_events(
        self, model: z3.ModelRef, tag: str
    ) -> tuple[list[ev.Event], Instance] | None:
        """The invariant's events as the model instantiates them, for the failing choice."""
        if self.inv.kind != "transition":
            return None
        own, other = self.param_vars(tag)
        values = {n: model.eval(v, model_completion=True).as_long() for n, v in own.items()}
        ovalues = {n: model.eval(v, model_completion=True).as_long() for n, v in other.items()}
        s = self.system.state(int(tag)) if tag.isdigit() else None
        for inst in instances(self.inv):
            if s is not None:
                ok = model.eval(self.holds_instance(s, tag, inst), model_completion=True)
                if not z3.is_false(ok):
                    continue
            return _instantiate(self.inv.events, values, ovalues, inst.choices), inst
        return None


def state_key(name: str, t: int) -> str:
    """Re-exported time naming (``at``), for engines that name their own copies."""
    return at(name, t)
