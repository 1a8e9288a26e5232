# SPDX-License-Identifier: MIT
"""Z3's Spacer (PDR/IC3 over constrained Horn clauses): an optional, always time-limited engine.

Layer: engines. Imports z3, `encode.*`, `engines.backend`.

The system becomes three Horn clauses over one unknown relation ``Inv`` of the world:

    Init(x)                         => Inv(x)
    Inv(x) /\\ T(x, p, op, x')       => Inv(x')
    Inv(x) /\\ not P(x, q)           => false

(``q`` are the invariant's own parameters, universally quantified). Spacer answers
``sat`` with an interpretation of ``Inv`` (an inductive invariant) or ``unsat`` (a
counterexample exists). Spacer's answer is never trusted: the interpretation is
re-checked as a certificate with ordinary quantifier-free queries in fresh solvers
(Init => I, I /\\ T => I' for every event variant, I => P); a counterexample is only
reported after BMC finds it and the simulator replays it (the pipeline does that).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

import z3

from fsgs_smt.encode.property import Property
from fsgs_smt.encode.system import System
from fsgs_smt.engines.backend import Solver


@dataclass(frozen=True, slots=True)
class PdrResult:
    """``proved`` (with the re-checked invariant), ``violated``, or ``unknown`` (and why)."""

    kind: str
    invariant: Any = None
    reason: str = ""


def _free_params(prop: Property, tag: str) -> list[Any]:
    own, other = prop.param_vars(tag)
    return [*own.values(), *other.values()]


def run(system: System, prop: Property, seconds: float, *, solver: str = "auto") -> PdrResult:
    """Ask Spacer for an inductive invariant that implies *prop*, within *seconds*.

    Spacer runs in a child process that is killed at the deadline: its own ``timeout``
    parameter is not always honoured (measured: a 60 s limit ran past 150 s).
    """
    keys = list(system.layout)
    x, x1 = system.state(0), system.state(1)
    xs, x1s = [x[k] for k in keys], [x1[k] for k in keys]
    inv = z3.Function("Inv", *[v.sort() for v in xs], z3.BoolSort())
    params = [*system.params(0).values(), system.op(0)]
    horn = z3.SolverFor("HORN")
    horn.add(z3.ForAll(xs, z3.Implies(system.init_constraint(x), inv(*xs))))
    horn.add(z3.ForAll([*xs, *params, *x1s],
                       z3.Implies(z3.And(inv(*xs), system.trans(0)), inv(*x1s))))  # fmt: skip
    q = _free_params(prop, "0")
    horn.add(z3.ForAll([*xs, *q], z3.Implies(z3.And(inv(*xs), z3.Not(prop.holds(x, "0"))),
                                             z3.BoolVal(False))))  # fmt: skip
    signature = [(v.decl().name(), v.size() if z3.is_bv(v) else 0) for v in xs]
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_spacer, args=(horn.to_smt2(), int(seconds * 1000), signature,
                                              send), daemon=True)  # fmt: skip
    child.start()
    send.close()
    answer: tuple[str, str] = ("unknown", "spacer: timeout")
    if receive.poll(seconds + 2):
        try:
            answer = receive.recv()
        except EOFError:
            answer = ("unknown", "spacer: the solver process died")
    child.kill()
    child.join()
    kind, payload = answer
    if kind != "proved":
        return PdrResult(kind, reason=payload)
    parsed = z3.parse_smt2_string(f"(assert {payload})", decls={v.decl().name(): v for v in xs})
    invariant = parsed[0]
    why = recheck(system, prop, invariant, seconds, solver=solver)
    if why:
        return PdrResult("unknown", reason=f"spacer's invariant did not re-check: {why}")
    return PdrResult("proved", invariant=invariant)


def _spacer(text: str, ms: int, signature: list[tuple[str, int]], send: Any) -> None:
    """The child process: solve the Horn clauses, send back the invariant as SMT-LIB."""
    horn = z3.SolverFor("HORN")
    horn.set("timeout", ms)
    horn.from_string(text)
    result = horn.check()
    if result == z3.unsat:
        send.send(("violated", "spacer found a counterexample"))
        return
    if result != z3.sat:
        send.send(("unknown", f"spacer: {horn.reason_unknown()}"))
        return
    model = horn.model()
    (inv,) = [d for d in model.decls() if d.name() == "Inv"] or [None]
    interp = model[inv] if inv is not None else None
    body = interp.else_value() if isinstance(interp, z3.FuncInterp) else interp
    if body is None or not z3.is_expr(body):
        send.send(("unknown", "spacer gave no invariant"))
        return
    xs = [z3.BitVec(n, w) if w else z3.Bool(n) for n, w in signature]
    send.send(("proved", z3.substitute_vars(body, *xs).sexpr()))


def recheck(system: System, prop: Property, inv: Any, seconds: float, *, solver: str) -> str:
    """Init => I, I /\\ T => I' per variant, I => P: "" when all hold, else which failed."""
    from fsgs_smt.engines.kind import Deadline  # noqa: PLC0415

    deadline = Deadline(seconds)
    keys = list(system.layout)
    x, p = system.state(0), system.params(0)

    def at(world: dict[str, Any]) -> Any:
        return z3.substitute(inv, *[(x[k], world[k]) for k in keys])

    queries = [("initially", [system.init_constraint(x), z3.Not(inv)])]
    for i, variant in enumerate(system.variants):
        nxt = system.variant_successor(i, x, p)
        queries.append((f"after {variant.name}", [
            system.param_constraint(p, z3.BitVecVal(i, system.op_width)), inv, z3.Not(at(nxt)),
        ]))  # fmt: skip
    queries.append(("the invariant", [inv, z3.Not(prop.holds(x, "0"))]))
    for name, query in queries:
        check = Solver(solver)
        check.add(*query)
        answer = check.check(deadline=deadline.left_ms)
        if answer.result != "unsat":
            return f"{name}: {answer.result} {answer.reason}".strip()
    return ""
