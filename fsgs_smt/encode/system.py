# SPDX-License-Identifier: MIT
"""The transition system: the one semantics, in the z3 domain, with a symbolic event per step.

Layer: encode. Imports z3, `symbolic.z3domain`, `semantics.*`, `policy.invariants`.

Each step chooses one *variant* (an op with its enum fields fixed: ``mov_seg gs``,
``yield`` with the other task doing ``wrbase fs``, ``ptrace_poke gs_base``, ...) through
``op@t``; its numeric parameters are the step's variables (``sel@t``, ``val@t``,
``ent@t``, ``cpu@t``, ``d_*@t``). The successor of a world is the if-then-else merge of
every variant's `Semantics.step`. It is built once over template variables and
instantiated per step by substitution, so deep unrollings cost little to build.

Time-indexed names come only from `at` (``gs_base@3``); the model of a satisfying
assignment is decoded back into fsgs-trace/1 events by `decode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import z3

from fsgs_smt.policy import ast
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.domain import CONCRETE
from fsgs_smt.semantics.interp import Machine
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.semantics.step import Semantics
from fsgs_smt.symbolic.z3domain import Z3Domain

LDT_ENTRIES = 8192

# Step parameters: name -> width.
PARAMS: dict[str, int] = {
    "sel": 16, "val": 64, "ent": 32, "cpu": 8,
    "d_base_addr": 32, "d_limit": 32, "d_seg_32bit": 32, "d_contents": 32,
    "d_read_exec_only": 32, "d_limit_in_pages": 32, "d_seg_not_present": 32, "d_useable": 32,
}  # fmt: skip
_DESC_MAX = {
    "seg_32bit": 1, "contents": 3, "read_exec_only": 1, "limit_in_pages": 1,
    "seg_not_present": 1, "useable": 1,
}  # fmt: skip


def substitute_many(terms: Mapping[str, Any], pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """`z3.substitute(term, *pairs)` for every term of *terms*, the pairs marshalled once
    (z3py re-checks and re-converts all pairs on each call: most of a step's build time)."""
    if not terms:
        return {}
    n = len(pairs)
    src, dst = (z3.Ast * n)(), (z3.Ast * n)()
    for i, (old, new) in enumerate(pairs):
        src[i], dst[i] = old.as_ast(), new.as_ast()
    ctx = next(iter(terms.values())).ctx
    return {
        k: z3.z3._to_expr_ref(z3.Z3_substitute(ctx.ref(), t.as_ast(), n, src, dst), ctx)
        for k, t in terms.items()
    }


def at(name: str, t: int) -> str:
    """The time-indexed name of a state key or parameter: ``gs_base@3``."""
    return f"{name}@{t}"


Params = Mapping[str, Any]
Builder = Callable[[Params], ev.Event]


@dataclass(frozen=True, slots=True)
class Variant:
    """One choice of the per-step event: a name and how to build the event from parameters."""

    name: str
    build: Builder


def _desc(p: Params) -> ev.UserDesc:
    return ev.UserDesc(**{f: p[f"d_{f}"] for f in ev.USER_DESC_FIELDS})


def _mov(seg: ev.Seg) -> Builder:
    def build(p: Params) -> ev.Event:
        return ev.MovSeg(seg=seg, selector=p["sel"])

    return build


def _wrbase(seg: ev.Seg) -> Builder:
    def build(p: Params) -> ev.Event:
        return ev.WrBase(seg=seg, value=p["val"])

    return build


def _arch_set(code: ev.ArchCode) -> Builder:
    def build(p: Params) -> ev.Event:
        return ev.ArchPrctl(code=code, value=p["val"])

    return build


def _modify_ldt(p: Params) -> ev.Event:
    return ev.ModifyLdt(entry=p["ent"], desc=_desc(p))


def _set_thread_area(p: Params) -> ev.Event:
    return ev.SetThreadArea(entry_number=p["ent"], desc=_desc(p), abi=ev.Abi.IA32)


def _yield_with(make: Builder | None) -> Builder:
    def build(p: Params) -> ev.Event:
        return ev.Yield(other=() if make is None else (make(p),))

    return build


def _poke(fld: ev.PtraceField) -> Builder:
    def build(p: Params) -> ev.Event:
        return ev.PtracePoke(field=fld, value=p["val"])

    return build


def _const(event: ev.Event) -> Builder:
    def build(p: Params) -> ev.Event:
        del p
        return event

    return build


def _migrate(p: Params) -> ev.Event:
    return ev.Migrate(cpu=p["cpu"])


def other_actions() -> list[tuple[str, Builder]]:
    """What the other task may do during a yield (one action, any parameters).

    Every op of events.OTHER_TASK_OPS that can change state (observe cannot), so the
    system over-approximates every world a trace can reach.
    """
    out: list[tuple[str, Builder]] = []
    for seg in ev.Seg:
        out.append((f"mov_seg {seg.value}", _mov(seg)))
        out.append((f"wrbase {seg.value}", _wrbase(seg)))
    for code in (ev.ArchCode.SET_FS, ev.ArchCode.SET_GS):
        out.append((f"arch_prctl {code.value}", _arch_set(code)))
    out.append(("modify_ldt", _modify_ldt))
    out.append(("set_thread_area", _set_thread_area))
    return out


READ_ONLY_HOOKS = ("arch_prctl_get", "ptrace_peek_sel", "ptrace_peek_base", "ptrace_peek_other")


def _writes_state(policy: ast.Policy, stmts: tuple[ast.Stmt, ...], seen: frozenset[str]) -> bool:
    """Whether *stmts* may write world state (a field, an array entry or an effectful builtin)."""
    for stmt in stmts:
        match stmt:
            case ast.Assign(target=target):
                if len(target.parts) > 1 or target.index is not None:
                    return True
            case ast.CallStmt(call=call, into=into):
                if into is not None and (len(into.parts) > 1 or into.index is not None):
                    return True
                proc = policy.procedures.get(call.func)
                if proc is not None:
                    if call.func not in seen and _writes_state(
                        policy, proc.body, seen | {call.func}
                    ):
                        return True
                elif call.func not in policy.functions and call.func not in (
                    "desc_base", "desc_limit", "desc_type", "desc_dpl", "desc_s",
                    "desc_present", "null_sel", "canonical", "loadable", "bits", "min", "max",
                ):  # fmt: skip
                    return True
            case ast.If(then=then, other=other):
                if _writes_state(policy, then, seen) or _writes_state(policy, other, seen):
                    return True
            case ast.EachSeg(body=body):
                if _writes_state(policy, body, seen):
                    return True
    return False


def variants(policy: ast.Policy | None = None) -> list[Variant]:
    """Every per-step event choice.

    Events that change no state are left out only when that is checked: ARCH_GET, observe
    and the ptrace peeks run hooks that must be read-only; if a policy's are not, their
    variants are included, so the system still over-approximates every reachable world.
    """
    out = [Variant(name, build) for name, build in other_actions()]
    out.append(Variant("yield", _yield_with(None)))
    for name, make in other_actions():
        out.append(Variant(f"yield/{name}", _yield_with(make)))
    out.append(Variant("interrupt", _const(ev.Interrupt())))
    out.append(Variant("migrate", _migrate))
    out.append(Variant("ptrace_peek", _const(ev.PtracePeek(field=ev.PtraceField.GS_BASE))))
    for fld in ev.PtraceField:
        out.append(Variant(f"ptrace_poke {fld.value}", _poke(fld)))
    out.append(Variant("ptrace_setregs", _const(ev.PtraceSetregs())))
    out.append(Variant("signal", _const(ev.Signal())))
    out.append(Variant("fork", _const(ev.Fork())))
    out.append(Variant("exec", _const(ev.Exec())))
    if policy is not None and any(
        _writes_state(policy, policy.hooks[h].body, frozenset()) for h in READ_ONLY_HOOKS
    ):
        for code in (ev.ArchCode.GET_FS, ev.ArchCode.GET_GS):
            out.append(Variant(f"arch_prctl {code.value}", _const(ev.ArchPrctl(code=code))))
        out.append(Variant("observe", _const(ev.Observe())))
        for fld in ev.PtraceField:
            out.append(Variant(f"ptrace_peek {fld.value}", _const(ev.PtracePeek(field=fld))))
        out.append(Variant("ptrace_setregs r15", _setregs_r15))
    return out


def _setregs_r15(p: Params) -> ev.Event:
    return ev.PtraceSetregs(fields=(("r15", p["val"]),))


class System:
    """The symbolic transition system of one policy on one CPU model."""

    def __init__(
        self,
        policy: ast.Policy,
        model: CpuModel,
        bounds: Bounds,
        settings: Mapping[str, bool | int] | None = None,
    ) -> None:
        self.d = Z3Domain()
        self.policy = policy
        self.model = model
        self.bounds = bounds
        self.settings = dict(settings or {})
        self.sem = Semantics(Machine(self.d, policy, model, bounds, settings))
        self.conc = Semantics(Machine(CONCRETE, policy, model, bounds, settings))
        self.layout = self.sem.layout
        self.variants = variants(policy)
        self.op_width = max(1, (len(self.variants) - 1).bit_length())
        self._template_state = {k: self.d.var(f"{k}@s", w) for k, w in self.layout.items()}
        self._template_params = {n: self.d.var(f"{n}@p", w) for n, w in PARAMS.items()}
        self._template_op = z3.BitVec("op@p", self.op_width)
        self._trans: dict[str, Any] | None = None
        self._groups: dict[tuple[int, ...], dict[str, Any]] = {}  # `group_successor`'s templates
        self._first: dict[tuple[int, ...], tuple[Any, object]] = {}  # `trans_from_initial`'s
        self._trans_formula: Any = None
        self._trans_next: dict[str, Any] = {}
        self._initial = self.conc.initial_world()

    # ------------------------------------------------------------------ variables
    def template_state(self) -> dict[str, Any]:
        """The world over which templates are built (substitute a real world for it)."""
        return self._template_state

    def state(self, t: int) -> dict[str, Any]:
        """The state variables at time *t*."""
        return {k: self.d.var(at(k, t), w) for k, w in self.layout.items()}

    def params(self, t: int) -> dict[str, Any]:
        """The event parameters of step *t* (the event from time t to t+1)."""
        return {n: self.d.var(at(n, t), w) for n, w in PARAMS.items()}

    def op(self, t: int) -> Any:
        """The variant chosen at step *t*."""
        return z3.BitVec(at("op", t), self.op_width)

    def initial(self) -> dict[str, Any]:
        """The initial world as constants: the task as after exec, the other tasks at rest."""
        d, widths = self.d, self.layout
        return {
            k: (d.boolean(bool(v)) if widths[k] == 0 else d.bv(int(v), widths[k]))
            for k, v in self._initial.items()
        }

    def initial_world(self) -> dict[str, int | bool]:
        """The initial world as plain values (a copy), for `System.conc`."""
        return dict(self._initial)

    def init_constraint(self, s: Mapping[str, Any]) -> Any:
        """*s* is the initial world."""
        init = self.initial()
        return z3.And([s[k] == init[k] for k in self.layout])

    def param_constraint(self, p: Mapping[str, Any], op: Any) -> Any:
        """The ranges the parameters of one step must respect (so every step replays).

        ``modify_ldt`` entries stay inside the modelled LDT (or are >= LDT_ENTRIES, which
        the kernel refuses), so the simulator's world and the encoding's stay the same.
        """
        writes_ldt = [i for i, v in enumerate(self.variants) if v.name.endswith("modify_ldt")]
        return z3.And(
            z3.ULT(op, len(self.variants)), z3.ULT(p["cpu"], self.bounds.ncpus),
            self.action_constraint(p, z3.Or([op == i for i in writes_ldt])),
        )  # fmt: skip

    def action_constraint(self, p: Mapping[str, Any], writes_ldt: Any) -> Any:
        """The ranges of an other-task action's parameters (as `param_constraint`), where
        *writes_ldt* says whether the action is ``modify_ldt``."""
        ent = p["ent"]
        ldt_ok = z3.Or(z3.ULT(ent, self.bounds.ldt_slots), z3.UGE(ent, LDT_ENTRIES))
        cons = [z3.Implies(writes_ldt, ldt_ok)]
        cons += [z3.ULE(p[f"d_{f}"], top) for f, top in _DESC_MAX.items()]
        return z3.And(cons)

    def variant_successor(
        self, i: int, s: Mapping[str, Any], p: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The world after variant *i* from *s* with parameters *p* (terms)."""
        return self.group_successor((i,), s, p, z3.BitVecVal(i, self.op_width))

    def groups(self) -> list[tuple[int, ...]]:
        """The variants, in the groups that a one-step query should take together.

        The yields (with every action of the other task) and the migration share their
        switches out and back in, so one query over all of them (`group_successor`) costs
        about what one of them alone does; every other variant is a group of its own.
        """
        shared = tuple(
            i for i, v in enumerate(self.variants)
            if v.name.startswith("yield") or v.name == "migrate"
        )  # fmt: skip
        return [shared] + [(i,) for i in range(len(self.variants)) if i not in shared]

    def group_successor(
        self, group: tuple[int, ...], s: Mapping[str, Any], p: Mapping[str, Any], op: Any
    ) -> dict[str, Any]:
        """The world after whichever variant of *group* *op* names, from *s* with *p*.

        Built once per group over the template world (running the semantics symbolically
        is the expensive part; Houdini, its re-check and both copies of the
        noninterference product ask for the same groups) and instantiated by substitution."""
        ts, tp, top = self._template_state, self._template_params, self._template_op
        if group not in self._groups:
            if len(group) == 1:
                world = self.sem.step(ts, self.variants[group[0]].build(tp)).world
            else:
                alternatives = [(top == i, self.variants[i].build(tp)) for i in group]
                world = self.sem.step_any(ts, alternatives).world
            self._groups[group] = world
        # every template variable is replaced (a missing parameter is a KeyError, never a
        # template variable left free and shared between two instances)
        pairs = [(ts[k], s[k]) for k in self.layout] + [(tp[n], p[n]) for n in PARAMS]
        pairs.append((top, op))
        return substitute_many(self._groups[group], pairs)

    def group_constraint(self, group: tuple[int, ...], p: Mapping[str, Any], op: Any) -> Any:
        """*op* is a variant of *group* and the parameters are in range for it."""
        if len(group) == 1:
            return self.param_constraint(p, z3.BitVecVal(group[0], self.op_width))
        return z3.And(self.param_constraint(p, op), z3.Or([op == i for i in group]))

    # ------------------------------------------------------------------ transitions
    def _template(self) -> dict[str, Any]:
        if self._trans is None:
            s, p, op = self._template_state, self._template_params, self._template_op
            alternatives = [(op == i, v.build(p)) for i, v in enumerate(self.variants)]
            self._trans = self.sem.step_any(s, alternatives).world
        return self._trans

    def build(self) -> None:
        """Build the transition template now (before forking racers, so they share it)."""
        self._template()

    def successor(self, s: Mapping[str, Any], p: Mapping[str, Any], op: Any) -> dict[str, Any]:
        """The world after one symbolic event from *s*, as terms over *s*, *p* and *op*."""
        pairs = [(self._template_state[k], s[k]) for k in self.layout]
        pairs += [(self._template_params[n], p[n]) for n in PARAMS]
        pairs.append((self._template_op, op))
        return substitute_many(self._template(), pairs)

    def trans(self, t: int) -> Any:
        """The constraint linking time *t* to *t+1*."""
        s, s1, p, op = self.state(t), self.state(t + 1), self.params(t), self.op(t)
        nxt = self.successor(s, p, op)
        return z3.And(self.param_constraint(p, op), *[s1[k] == nxt[k] for k in self.layout])

    def trans_instance(self, t: int) -> tuple[Any, list[tuple[Any, Any]]]:
        """`trans` (t) as a template and the substitution that makes it step *t*'s, for
        `Solver.add_instance` (the template is built once)."""
        return self.trans_between(self.state(t), self.state(t + 1), self.params(t), self.op(t))

    def trans_from_initial(self, s1: Mapping[str, Any], p: Mapping[str, Any], op: Any) -> Any:
        """The first step, from the initial world to *s1*: the transition template with the
        initial world's constants substituted in (z3 folds them while substituting), which
        leaves the solver a much smaller first step than an instance over state variables
        equated to those constants (measured: depth-2 counterexamples 1.5-5x faster)."""
        key = tuple(t.get_id() for t in (*s1.values(), *p.values(), op))
        if key not in self._first:  # every BMC engine asks for the same first step
            nxt = self.successor(self.initial(), p, op)
            self._first[key] = (
                z3.And(self.param_constraint(p, op), *[s1[k] == nxt[k] for k in self.layout]),
                (s1, p, op),  # keeps the terms alive, so that their ids are not reused
            )
        return self._first[key][0]

    def trans_between(
        self, s: Mapping[str, Any], s1: Mapping[str, Any], p: Mapping[str, Any], op: Any
    ) -> tuple[Any, list[tuple[Any, Any]]]:
        """The transition from world *s* to world *s1* by the event *op* with parameters
        *p*, as a template and its substitution (see `trans_instance`)."""
        if self._trans_formula is None:
            nxt = {k: self.d.var(f"{k}@s'", w) for k, w in self.layout.items()}
            succ = self._template()
            self._trans_formula = z3.And(
                self.param_constraint(self._template_params, self._template_op),
                *[nxt[k] == succ[k] for k in self.layout],
            )
            self._trans_next = nxt
        pairs = [(self._template_state[k], s[k]) for k in self.layout]
        pairs += [(self._trans_next[k], s1[k]) for k in self.layout]
        pairs += [(self._template_params[n], p[n]) for n in PARAMS]
        pairs.append((self._template_op, op))
        return self._trans_formula, pairs

    # ------------------------------------------------------------------ decoding
    def decode(self, model: z3.ModelRef, steps: int) -> list[ev.Event]:
        """The concrete events of steps 0..steps-1 in *model*."""
        out = []
        for t in range(steps):
            op = model.eval(self.op(t), model_completion=True).as_long()
            values = {
                n: model.eval(v, model_completion=True).as_long() for n, v in self.params(t).items()
            }
            out.append(self.variants[op].build(values))
        return out
