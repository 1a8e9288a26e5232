"""Why the symbolic domain builds z3 terms: a measurement, not a timed test.

Run: ``python bench/domain_choice.py``. For each shipped policy it builds the
symbolic transition of every event kind over a fully symbolic world (z3 API),
then decides one query per policy -- "can one yield change the task's GS base?"
-- three ways: z3 directly on the terms; the same query as SMT-LIB text parsed
by pysmt and solved through pysmt's z3 backend; and (if installed) bitwuzla on
the same text. Prints seconds for each.
"""

from __future__ import annotations

import io
import time

import z3

from fsgs_smt.policy.catalog import load_checked, shipped_policies
from fsgs_smt.semantics import events as ev
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.interp import Machine
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.semantics.step import Semantics
from fsgs_smt.symbolic.z3domain import Z3Domain

SAMPLE: list[ev.Event] = [
    ev.MovSeg(seg=ev.Seg.GS, selector=z3.BitVec("sel", 16)),
    ev.WrBase(seg=ev.Seg.GS, value=z3.BitVec("v", 64)),
    ev.ArchPrctl(code=ev.ArchCode.SET_GS, value=z3.BitVec("v", 64)),
    ev.ModifyLdt(entry=z3.BitVec("e", 32), desc=ev.UserDesc(base_addr=z3.BitVec("b", 32))),
    ev.Yield(),
    ev.Migrate(cpu=z3.BitVec("c", 8)),
    ev.PtraceSetregs(fields=()),
    ev.Signal(),
    ev.Fork(),
]


def main() -> None:
    """Print the build and solve times."""
    d = Z3Domain()
    try:
        import bitwuzla  # noqa: PLC0415 - optional
    except ImportError:
        bitwuzla = None
    print(f"{'policy':<18}{'build s':>9}{'z3 s':>8}{'pysmt+z3 s':>12}{'bitwuzla s':>12}")
    for info in shipped_policies():
        sem = Semantics(
            Machine(d, load_checked(info.name), CPU_MODELS["intel"], Bounds(ldt_slots=4))
        )
        world = {k: d.var(f"s.{k}", w) for k, w in sem.layout.items()}
        start = time.perf_counter()
        for event in SAMPLE:
            sem.step(world, event)
        build = time.perf_counter() - start

        after = sem.step(world, ev.Yield()).world
        cpu0 = z3.And(world["T.cpu"] == 0, z3.Not(world["T.stopped"]), world["T.status"] == 0)
        query = z3.And(cpu0, after["cpu0.gs_base"] != world["cpu0.gs_base"])

        start = time.perf_counter()
        solver = z3.Solver()
        solver.add(query)
        verdict = solver.check()
        t_z3 = time.perf_counter() - start

        s2 = z3.Solver()
        s2.add(query)
        smt2 = "(set-logic QF_BV)\n" + s2.to_smt2()
        start = time.perf_counter()
        from pysmt.shortcuts import Solver as PSolver  # noqa: PLC0415
        from pysmt.smtlib.parser import SmtLibParser  # noqa: PLC0415

        script = SmtLibParser().get_script(io.StringIO(smt2))
        with PSolver(name="z3", generate_models=False) as ps:
            ps.add_assertion(script.get_last_formula())
            ps.solve()
        t_pysmt = time.perf_counter() - start

        t_bzla = float("nan")
        if bitwuzla is not None:
            start = time.perf_counter()
            tm = bitwuzla.TermManager()
            opts = bitwuzla.Options()
            parser = bitwuzla.Parser(tm, opts)
            parser.parse(smt2.replace("(check-sat)", ""), True, False)
            parser.bitwuzla().check_sat()
            t_bzla = time.perf_counter() - start
        print(
            f"{info.name:<18}{build:>9.3f}{t_z3:>8.3f}{t_pysmt:>12.3f}{t_bzla:>12.3f}  ({verdict})"
        )


if __name__ == "__main__":
    main()
