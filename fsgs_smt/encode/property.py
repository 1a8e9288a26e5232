# SPDX-License-Identifier: MIT
"""Invariants as predicates over one symbolic world: what the engines check.

Layer: encode. Imports z3, `encode.system`, `semantics.props`, `policy.invariants`.

A state invariant is its expression over the world's view. A transition invariant is
turned into the state predicate "running the invariant's events from this world
satisfies ``assume => expect``" (the task must be running before them). Its parameters
are free variables: the invariant's own (``p.c@tag``), the other task's action
parameters (``o.val@tag``, ...) and, per ``other: any``, the choice of the other task's
action (``o.any0@tag``: one of `other_actions`, or nothing). A query that asks for a
violation therefore asks for one under some choice; a proof that no world violates the
predicate covers every choice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

import z3

from fsgs_smt.encode.system import PARAMS, System, at, other_actions, substitute_many
from fsgs_smt.policy.invariants import Invariant, ParamRef, is_any_other
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.props import Evaluator, result_names, view

_TEMPLATE_TAG = "tmpl"
CHOICE_WIDTH = 4  # enough for len(other_actions()) + 1 choices


def any_count(inv: Invariant) -> int:
    """How many ``other: any`` yields the invariant's events have."""
    return sum(1 for e in inv.events if is_any_other(e))


def other_choice(actions_len: int, value: int) -> int:
    """The alternative a choice variable's *value* selects (out of range: nothing)."""
    return min(value, actions_len)


def _other_events(choice: int, oparams: Mapping[str, Any]) -> tuple[ev.Event, ...]:
    actions = other_actions()
    return () if choice >= len(actions) else (actions[choice][1](oparams),)


def instantiate(
    events: tuple[ev.Event, ...], values: Mapping[str, Any], oparams: Mapping[str, Any],
    choices: tuple[int, ...],
) -> list[ev.Event]:  # fmt: skip
    """*events* with parameters replaced by *values* and the k-th ``other: any`` by the
    other task's action ``choices[k]`` (an index into `other_actions`; out of range: none)."""
    out: list[ev.Event] = []
    k = 0
    for event in events:
        if is_any_other(event):
            out.append(ev.Yield(other=_other_events(choices[k], oparams)))
            k += 1
        else:
            out.append(_subst(event, values))
    return out


def substitute_params(event: ev.Event, values: Mapping[str, int]) -> ev.Event:
    """One of an invariant's events with its ``p.*`` parameters replaced by *values*."""
    out: ev.Event = _subst(event, values)
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


class Property:
    """An invariant over the worlds of a `System`, in the z3 domain.

    Like the transition, the predicate is built once over the template world (running the
    invariant's events symbolically is the expensive part) and instantiated per world and
    tag by substitution.
    """

    def __init__(self, system: System, inv: Invariant) -> None:
        self.system = system
        self.inv = inv
        self.ev = Evaluator(system.sem)
        self._templates: dict[object, Any] = {}
        # the own parameters that name a CPU to migrate to: they range over the world's CPUs
        self.cpu_params = sorted(
            {e.cpu.name for e in inv.events if isinstance(e, ev.Migrate)
             and isinstance(e.cpu, ParamRef)}
        )  # fmt: skip

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
        return substitute_many({"t": self._templates[key]}, pairs)["t"]

    def param_vars(self, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The invariant's own parameters, and the other task's (with the choices), at *tag*."""
        d = self.system.d
        # the width is in the name: invariants checked in one process share the solvers'
        # translation, and two invariants may give one parameter name different widths
        own = {n: d.var(f"p.{n}:{w}@{tag}", w) for n, w in self.inv.params.items()}
        other = {n: d.var(f"o.{n}@{tag}", w) for n, w in PARAMS.items()}
        for k in range(any_count(self.inv)):
            other[f"any{k}"] = d.var(f"o.any{k}@{tag}", CHOICE_WIDTH)
        return own, other

    def holds(self, s: Mapping[str, Any], tag: str) -> Any:
        """The invariant holds in world *s* (for the parameters named with *tag*)."""
        return self._instantiate_template("holds", self._holds, s, tag)

    def _names(self, s: Mapping[str, Any], tag: str) -> dict[str, Any]:
        """`run` over the template world (once: `holds` and `premise` both read it)."""
        assert s is self.system.template_state()  # noqa: S101 - built once, substituted
        key = ("names", tag)
        if key not in self._templates:
            own, other = self.param_vars(tag)
            self._templates[key] = self.run(s, own, other)
        return cast(dict[str, Any], self._templates[key])

    def _holds(self, s: Mapping[str, Any], tag: str) -> Any:
        inv = self.inv
        if inv.kind == "state":
            assert inv.always is not None  # noqa: S101
            return self.ev.eval(inv.always, view(self.system.sem, s))
        own, other = self.param_vars(tag)
        names = self._names(s, tag)
        assume = self.ev.eval(inv.assume, names) if inv.assume is not None else True
        assert inv.expect is not None  # noqa: S101
        expect = self.ev.eval(inv.expect, names)
        premise = z3.And(self.other_ok(other), *self.own_ok(own), names["before.running"], assume)
        return z3.Implies(premise, expect)

    def own_ok(self, own: Mapping[str, Any]) -> list[Any]:
        """What puts the invariant's own parameters in range: a CPU it migrates to exists
        (none for most invariants)."""
        return [z3.ULT(own[n], self.system.bounds.ncpus) for n in self.cpu_params]

    def other_ok(self, other: Mapping[str, Any]) -> Any:
        """The other task's action parameters are in range (so every trace replays)."""
        n = any_count(self.inv)
        if n == 0:
            return z3.BoolVal(True)
        ldt = [j for j, (name, _) in enumerate(other_actions()) if name == "modify_ldt"]
        writes_ldt = z3.Or([other[f"any{k}"] == j for k in range(n) for j in ldt])
        return self.system.action_constraint(other, writes_ldt)

    def premise(self, s: Mapping[str, Any], tag: str) -> Any:
        """The transition invariant's premises in world *s*: the task runs, and its assume."""
        return self._instantiate_template("premise", self._premise, s, tag)

    def _premise(self, s: Mapping[str, Any], tag: str) -> Any:
        own, other = self.param_vars(tag)
        names = self._names(s, tag)
        premise = z3.And(self.other_ok(other), *self.own_ok(own), names["before.running"])
        if self.inv.assume is not None:
            premise = z3.And(premise, self.ev.eval(self.inv.assume, names))
        return premise

    def lemmas(self, s: Mapping[str, Any]) -> list[Any]:
        """The invariant's lemmas in world *s*."""
        names = view(self.system.sem, s)
        return [self.ev.eval(lemma, names) for lemma in self.inv.lemmas]

    def run(
        self, s: Mapping[str, Any], own: Mapping[str, Any], other: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The names a transition invariant reads, after running its events from *s*."""
        sem = self.system.sem
        names: dict[str, Any] = {f"before.{k}": v for k, v in view(sem, s).items()}
        world = dict(s)
        k = 0
        for i, event in enumerate(self.inv.events):
            if is_any_other(event):
                choice = other[f"any{k}"]
                k += 1
                n = len(other_actions())
                alternatives = [
                    (choice == j, ev.Yield(other=_other_events(j, other))) for j in range(n)
                ]
                alternatives.append((z3.BoolVal(True), ev.Yield()))
                out = sem.step_any(world, alternatives)
            else:
                out = sem.step(world, _subst(event, own))
            for key, v in result_names(out.result).items():
                # results keep their native widths (selectors 16, faults 2): read as u64
                names[f"r{i}.{key}"] = v if z3.is_bool(v) else z3.ZeroExt(64 - v.size(), v)
            world = out.world
        names.update({f"after.{k_}": v for k_, v in view(sem, world).items()})
        d = self.system.d
        names.update({f"p.{k_}": d.zext(v, self.inv.params[k_], 64) for k_, v in own.items()})
        return names

    def concrete_events(self, model: Any, tag: str) -> tuple[list[ev.Event], dict[str, int]]:
        """The invariant's events, and its own parameters, as the model instantiates them."""
        own, other = self.param_vars(tag)
        values = {n: model.eval(v, model_completion=True).as_long() for n, v in own.items()}
        ovalues = {n: model.eval(v, model_completion=True).as_long() for n, v in other.items()}
        n = len(other_actions())
        choices = tuple(other_choice(n, ovalues[f"any{k}"]) for k in range(any_count(self.inv)))
        out = instantiate(self.inv.events, values, ovalues, choices)
        return out, values


def state_key(name: str, t: int) -> str:
    """Re-exported time naming (``at``), for engines that name their own copies."""
    return at(name, t)
