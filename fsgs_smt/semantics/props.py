# SPDX-License-Identifier: MIT
"""What an invariant can see of a world, and the evaluation of invariant expressions.

Layer: semantics. Imports `policy.ast` (expressions), `semantics.*`. Generic over the
domain, so the simulator re-checks a counterexample with the very code the encoder
used to find it.

The *view* of a world is a flat set of named values about the task under study:

* ``fs fs_base gs gs_base``: what the task observes: its CPU's registers while it runs,
  its saved thread state while it is stopped under a tracer;
* ``fs_desc gs_desc``: the hidden descriptor cache of its CPU (0 after a null load);
* ``fs_table gs_table``: the descriptor its selector names in the tables now (0 if null
  or beyond the table), and ``fs_loadable gs_loadable`` (a CPL-3 MOV would not fault);
* ``fsindex gsindex fsbase gsbase tls0 tls1 tls2``: its ``thread_struct``;
* ``cpu running stopped kernel_gp ldt_n`` and ``kgs_ok`` (every CPU's kernel GS base is
  its per-CPU base while in user mode).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fsgs_smt.policy import ast
from fsgs_smt.policy.vocab import INVARIANT_BUILTINS, VIEW_FIELDS
from fsgs_smt.semantics import x86
from fsgs_smt.semantics.domain import V
from fsgs_smt.semantics.events import Seg
from fsgs_smt.semantics.state import STATUS_RUNNING, Choice, Store, percpu_base
from fsgs_smt.semantics.step import Semantics


def view(sem: Semantics, world: Mapping[str, V], only: Collection[str] = ()) -> dict[str, V]:
    """The named values an invariant may read about *world* (see the module docstring).

    With *only*, at least those (the descriptor-table lookups behind ``*_table`` and
    ``*_loadable`` are skipped unless asked for: a concrete exploration asks for the
    observed registers of thousands of worlds)."""
    d = sem.d
    tables = not only or any(k.endswith(("_table", "_loadable")) for k in only)
    store = Store(d, world)
    cpu = Choice.one(d, sem.cpus[0])  # the task's CPU (task-relative slots, `state`)
    stopped = world["T.stopped"]
    out: dict[str, V] = {}
    for seg in (Seg.FS, Seg.GS):
        s = seg.value
        sel = cpu.read(store, s)
        live_base = cpu.read(store, f"{s}_base")
        out[s] = d.zext(d.ite(stopped, world[f"T.{s}index"], sel), 16, 64)
        out[f"{s}_base"] = d.ite(stopped, world[f"T.{s}base"], live_base)
        out[f"{s}_desc"] = cpu.read(store, f"{s}_desc")
        if not tables:
            continue
        in_limit, desc = x86.lookup(d, store, sem.m.bounds, cpu, sel)
        null = x86.null_sel(d, sel)
        out[f"{s}_table"] = d.ite(d.or_(null, d.not_(in_limit)), d.bv(0, 64), desc)
        out[f"{s}_loadable"] = x86.would_load(d, store, sem.m.bounds, cpu, sel, 3)
    for key in ("fsindex", "gsindex", "fsbase", "gsbase", "tls0", "tls1", "tls2"):
        width = 16 if key.endswith("index") else 64
        out[key] = d.zext(world[f"T.{key}"], width, 64)
    out["cpu"] = d.zext(world["T.cpu"], 8, 64)
    out["running"] = d.eq(world["T.status"], d.bv(STATUS_RUNNING, 2))
    out["stopped"] = stopped
    out["kernel_gp"] = world["kernel_gp"]
    out["ldt_n"] = d.zext(world["mm.ldt_n"], 16, 64)
    kgs_ok = d.boolean(True)
    for c, name in enumerate(sem.cpus):
        want = percpu_base(d, world["T.cpu"], c, len(sem.cpus))
        kgs_ok = d.and_(kgs_ok, d.eq(world[f"{name}.kernel_gs_base"], want))
    out["kgs_ok"] = kgs_ok
    return out


def result_names(result: Mapping[str, V]) -> dict[str, V]:
    """An event's result values under invariant names (``handler.gs`` -> ``handler_gs``)."""
    return {k.replace(".", "_"): v for k, v in result.items()}


class Evaluator:
    """Evaluates a checked invariant expression over named values, in the machine's domain."""

    def __init__(self, sem: Semantics) -> None:
        self.sem = sem
        self.d = sem.d

    def eval(self, e: ast.Expr, names: Mapping[str, V]) -> V:
        d = self.d
        m = self.sem.m
        match e:
            case ast.Num(value=value):
                return d.bv(value, 64)
            case ast.Bool(value=value):
                return d.boolean(value)
            case ast.Name(parts=parts):
                return names[".".join(parts)]
            case ast.Unary(op=op, operand=operand):
                v = self.eval(operand, names)
                if op == "!":
                    return d.not_(v)
                if op == "~":
                    return d.bvnot(v, 64)
                return d.sub(d.bv(0, 64), v, 64)
            case ast.Binary(op=op, left=left, right=right):
                lv = self.eval(left, names)
                if op == "&&":
                    return d.and_(lv, self.eval(right, names))
                if op == "||":
                    return d.or_(lv, self.eval(right, names))
                if op == "=>":
                    return d.or_(d.not_(lv), self.eval(right, names))
                return m.binary(op, lv, self.eval(right, names))
            case ast.Cond(cond=cond, then=then, other=other):
                return d.ite(
                    self.eval(cond, names), self.eval(then, names), self.eval(other, names)
                )
            case ast.InSet(operand=operand, items=items):
                v = self.eval(operand, names)
                result = d.boolean(False)
                for item in items:
                    result = d.or_(result, d.eq(v, self.eval(item, names)))
                return result
            case ast.Call(func=func, args=args):
                values = [self.eval(a, names) for a in args]
                # the policy interpreter's builtins: one implementation for both languages
                # (invariants have no CPU context, so `loadable` is not among theirs)
                return m.pure_builtin(None, func, values, args, None)  # type: ignore[arg-type]
        raise AssertionError(e)  # pragma: no cover


__all__ = ["INVARIANT_BUILTINS", "VIEW_FIELDS", "Evaluator", "result_names", "view"]
