# SPDX-License-Identifier: MIT
"""Renderings of verdicts (text, JSON, JUnit) and counterexamples (table, fsgs-trace/1, ITF,
a C reproducer).

Layer: traces/rendering. Imports `proving`, `pipeline`, `traces.*`, `native.reproduce`,
rich's data classes; returns strings or rich renderables, never prints.
"""

from __future__ import annotations

import io
import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table
from rich.text import Text

from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.errors import CannotReplayError
from fsgs_smt.pipeline import Options, evaluate
from fsgs_smt.policy import ast
from fsgs_smt.policy.invariants import Invariant
from fsgs_smt.proving import Result
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import Trace
from fsgs_smt.semantics.state import Bounds
from fsgs_smt.sim import SimRun, result_entries, simulate
from fsgs_smt.traces.fsgs_json import event_to_json, trace_to_json
from fsgs_smt.traces.render import STATE_COLUMNS, task_view, trace_table

_STYLE = {
    Status.PROVED: "green", Status.BOUNDED: "yellow", Status.VIOLATED: "bold red",
    Status.VACUOUS: "magenta", Status.UNKNOWN: "yellow",
}  # fmt: skip


def exit_status(results: list[Result], *, accept_bounded: bool) -> int:
    """0 all proved (or bounded, if accepted); 1 a violation; 4 vacuous; 3 unknown or bounded."""
    statuses = {r.verdict.status for r in results}
    if Status.VIOLATED in statuses:
        return 1
    if Status.VACUOUS in statuses:
        return 4
    if Status.UNKNOWN in statuses:
        return 3
    if Status.BOUNDED in statuses and not accept_bounded:
        return 3
    return 0


def render_text(
    policy: ast.Policy, results: list[Result], ncpus: int = 2, ldt_slots: int = 2
) -> str:
    """The invariant x CPU model table, titled with the size of the world it is about."""
    cpus = list(dict.fromkeys(r.cpu for r in results))
    # names and reasons are plain text, not rich markup (a policy file names its policy)
    count = len({r.invariant.id for r in results})
    table = Table(title=markup_escape(f"{policy.name}: {count} invariants"))
    table.add_column("invariant")
    for cpu in cpus:
        table.add_column(cpu)
    rows: dict[str, dict[str, Result]] = {}
    for r in results:
        rows.setdefault(r.invariant.id, {})[r.cpu] = r
    notes: list[str] = []
    for inv_id, cells in rows.items():
        texts = []
        for cpu in cpus:
            v = cells[cpu].verdict
            same = v.details.get("same_as")
            when = f"as {same}" if same else f"{v.seconds:.1f}s"
            texts.append(Text(f"{v.label} {when}", style=_STYLE[v.status]))
            bad = v.status in (Status.UNKNOWN, Status.BOUNDED, Status.VACUOUS)
            if bad and v.reason and not same:
                notes.append(f"{inv_id} on {cpu}: {v.reason}")
        table.add_row(Text(inv_id), *texts)
    buf = io.StringIO()
    console = Console(file=buf, width=160, force_terminal=False, color_system=None)
    console.print(table)
    console.print(f"in {Bounds(ncpus=ncpus, ldt_slots=ldt_slots).describe()}")
    for note in notes:
        console.print(note, markup=False, highlight=False)
    return buf.getvalue()


def _verdict_json(r: Result, policy: ast.Policy) -> dict[str, Any]:
    v = r.verdict
    doc: dict[str, Any] = {
        "invariant": r.invariant.id, "cpu": r.cpu, "verdict": v.status.value, "depth": v.depth,
        "engine": v.engine, "seconds": round(v.seconds, 3), "policy": policy.name,
        "policy_hash": policy.text_hash, "invariant_hash": r.invariant.text_hash,
    }  # fmt: skip
    if v.reason:
        doc["reason"] = v.reason
    if "same_as" in v.details:  # decided once, for a model with the same parameters
        doc["same_as"] = v.details["same_as"]
    if "found" in v.details:  # the shortest depth's events were an earlier counterexample's
        doc["found"] = v.details["found"]
    if v.certificate:
        doc["certificate"] = v.certificate
    if v.trace:
        doc["trace"] = [event_to_json(e) for e in v.trace]
    return doc


def render_json(
    policy: ast.Policy, results: list[Result], ncpus: int = 2, ldt_slots: int = 2
) -> str:
    """The matrix as JSON; each cell says the size of the world it was decided for."""
    world = {"ncpus": ncpus, "ldt_slots": ldt_slots}
    return json.dumps([{**_verdict_json(r, policy), "world": world} for r in results],
                      indent=2) + "\n"  # fmt: skip


def render_junit(policy: ast.Policy, results: list[Result]) -> str:
    """The matrix as a JUnit XML report (one testcase per invariant and CPU model)."""
    failures = sum(r.verdict.status is Status.VIOLATED for r in results)
    errors = sum(r.verdict.status in (Status.UNKNOWN, Status.VACUOUS) for r in results)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name={quoteattr("fsgs-smt " + policy.name)} tests="{len(results)}" '
        f'failures="{failures}" errors="{errors}">',
    ]
    for r in results:
        v = r.verdict
        name = quoteattr(f"{r.invariant.id}[{r.cpu}]")
        lines.append(f'  <testcase classname={quoteattr(policy.name)} name={name} '
                     f'time="{v.seconds:.3f}">')  # fmt: skip
        if v.status is Status.VIOLATED:
            trace = json.dumps([event_to_json(e) for e in v.trace])
            lines.append(f'    <failure message="VIOLATED">{escape(trace)}</failure>')
        elif v.status in (Status.UNKNOWN, Status.VACUOUS):
            lines.append(f"    <error message={quoteattr(v.label)}>{escape(v.reason)}</error>")
        elif v.status is Status.BOUNDED:
            lines.append(f"    <skipped message={quoteattr(v.label)}>{escape(v.reason)}</skipped>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines) + "\n"


def _names_in(e: ast.Expr) -> list[str]:
    out: list[str] = []
    match e:
        case ast.Name():
            out.append(e.dotted)
        case ast.Unary(operand=x):
            out += _names_in(x)
        case ast.Binary(left=a, right=b):
            out += _names_in(a) + _names_in(b)
        case ast.Cond(cond=c, then=a, other=b):
            out += _names_in(c) + _names_in(a) + _names_in(b)
        case ast.InSet(operand=x, items=items):
            out += _names_in(x)
            for item in items:
                out += _names_in(item)
        case ast.Call(args=args):
            for a in args:
                out += _names_in(a)
    return list(dict.fromkeys(out))


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else hex(int(value))


def broken(
    policy: ast.Policy, inv: Invariant, cpu: str, verdict: Verdict, options: Options | None = None
) -> list[tuple[str, str]]:
    """The values of the names the broken expectation reads, on the simulator (with the
    settings and world of *options*, those the counterexample was found with)."""
    params = verdict.details.get("params", {})
    assert isinstance(params, dict)  # noqa: S101
    prefix = len(verdict.trace) - (len(inv.events) if inv.kind == "transition" else 0)
    _, names = evaluate(
        policy, inv, CPU_MODELS[cpu], options or Options(), list(verdict.trace), params, prefix
    )
    exprs = [inv.always] if inv.kind == "state" else [inv.assume, inv.expect]
    wanted = [n for e in exprs if e is not None for n in _names_in(e)]
    return [(n, _fmt(names[n])) for n in wanted if n in names]


def render_counterexample(
    policy: ast.Policy, inv: Invariant, cpu: str, verdict: Verdict, run: SimRun, fmt: str,
    options: Options | None = None,
) -> list[Any]:  # fmt: skip
    """The counterexample as rich renderables (table) or one string (json, itf, c).

    *options* are those the counterexample was found with (its settings and world size):
    every value shown is computed again on the simulator with them.

    Raises:
        CannotReplayError: ``c`` for a trace the native replay cannot execute.
    """
    if fmt == "c":
        if inv.kind == "noninterference":
            msg = (
                "a noninterference counterexample is a pair of traces; --format c renders "
                "single traces; --format json gives the first of the two, --format table both"
            )
            raise CannotReplayError(msg)
        return [_reproducer(policy, inv, cpu, verdict, run, options or Options())]
    if fmt == "json":
        doc = trace_to_json(run.trace, list(run.results))
        doc["cpu"] = cpu
        return [json.dumps({k: doc[k] for k in ("format", "cpu", "events", "results")}, indent=2)
                + "\n"]  # fmt: skip
    if fmt == "itf":
        return [_itf(policy, inv, cpu, run)]
    title = f"{inv.id} VIOLATED by {policy.name} on {cpu}: {len(run.trace.events)} events"
    if inv.kind == "noninterference":
        return _ni_tables(policy, inv, cpu, verdict, run, title, options or Options())
    values = ", ".join(f"{n} = {v}" for n, v in broken(policy, inv, cpu, verdict, options))
    expect = "always" if inv.kind == "state" else "expect"
    return [
        trace_table(run, title=title),
        Text(f"broken: {inv.statement}", style="bold red"),
        Text(f"  {expect} is false with {values}"),
    ]


def _ni_tables(
    policy: ast.Policy, inv: Invariant, cpu: str, verdict: Verdict, run: SimRun, title: str,
    options: Options,
) -> list[Any]:  # fmt: skip
    """Both traces of a noninterference counterexample and what the task observes in each."""
    other = verdict.details.get("other_trace", ())
    observed = verdict.details.get("observed", [{}, {}])
    assert isinstance(other, tuple) and isinstance(observed, list)  # noqa: S101
    second = simulate(policy, Trace(events=other, cpu=cpu), CPU_MODELS[cpu],
                      settings=options.settings, ncpus=options.ncpus)  # fmt: skip
    differ = [
        f"{f} = {_fmt(observed[0][f])} in the first, {_fmt(observed[1][f])} in the second"
        for f in inv.observe if observed[0].get(f) != observed[1].get(f)
    ]  # fmt: skip
    return [
        trace_table(run, title=f"{title} (the first of two runs)"),
        trace_table(second, title="the second run: the same task events, other tasks differ"),
        Text(f"broken: {inv.statement}", style="bold red"),
        Text(f"  the task observes {'; '.join(differ)}"),
    ]


def _reproducer(
    policy: ast.Policy, inv: Invariant, cpu: str, verdict: Verdict, run: SimRun,
    options: Options,
) -> str:  # fmt: skip
    """The standalone C reproducer (`native.reproduce`): the model's prediction built in."""
    values = ", ".join(f"{n} = {v}" for n, v in broken(policy, inv, cpu, verdict, options))
    expect = "always" if inv.kind == "state" else "expect"
    heading = (
        f"{inv.id} VIOLATED by {policy.name} on {cpu}: {len(run.trace.events)} events "
        "(fsgs-smt counterexample --format c)",
        f"broken: {inv.statement}",
        f"  {expect} is false in the model with {values}",
        f"predicted: the results and states of {policy.name} on {cpu}, the violating outcome",
    )  # fmt: skip
    from fsgs_smt.native.reproduce import reproducer_source  # noqa: PLC0415 - gcc's world, on demand

    return reproducer_source(
        run.trace, policy, CPU_MODELS[cpu], settings=options.settings, name=inv.id,
        heading=heading, verdict=f"this machine showed the outcome that breaks {inv.id}",
    )  # fmt: skip


def _bigint(value: int) -> dict[str, str]:
    return {"#bigint": str(value)}


def _itf(policy: ast.Policy, inv: Invariant, cpu: str, run: SimRun) -> str:
    """Apalache's ITF: one state per event, the task's FS/GS view; 64-bit values as #bigint."""
    states = []
    worlds = [run.initial, *run.worlds]
    actions: list[Any] = [None, *run.trace.events]
    results: list[Any] = [None, *[e["result"] for e in result_entries(run)]]
    for i, (world, event, result) in enumerate(zip(worlds, actions, results, strict=True)):
        view, stopped = task_view(world)
        state: dict[str, Any] = {"#meta": {"index": i}}
        state["event"] = event_to_json(event) if event is not None else {"op": "init"}
        state["result"] = result if result is not None else "none"
        for col in STATE_COLUMNS:
            state[col] = _bigint(view[col])
        state["stopped"] = stopped
        states.append(state)
    doc = {
        "#meta": {
            "format": "ITF", "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": f"fsgs-smt {policy.name} {cpu}", "description": f"{inv.id}: {inv.statement}",
        },
        "vars": ["event", "result", *STATE_COLUMNS, "stopped"],
        "states": states,
    }  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def render_check(outcomes: list[Any], fmt: str, *, updated: bool) -> str:
    """``fsgs-smt check``: the differences (or, after ``--update``, the matrix) and a summary.

    *outcomes* are `proofs.Outcome` values (typed loosely: reports sits beside proofs).
    """
    if fmt == "json":
        docs = [
            {"policy": o.policy, "invariant": o.invariant, "cpu": o.cpu, "recorded": o.recorded,
             "now": o.now, "agree": o.agree, "note": o.note, "seconds": round(o.seconds, 3)}
            for o in outcomes
        ]  # fmt: skip
        return json.dumps(docs, indent=2) + "\n"
    counts: dict[str, int] = {}
    for o in outcomes:
        key = o.now.split("(")[0]
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    seconds = sum(o.seconds for o in outcomes)
    lines = []
    if updated:
        for o in outcomes:
            lines.append(f"{o.policy:<16}{o.invariant:<36}{o.cpu:<12}{o.now:<13}{o.seconds:7.1f}s")
        lines.append(f"recorded {len(outcomes)} cells ({summary}); {seconds:.0f} s of solving")
        return "\n".join(lines) + "\n"
    differ = [o for o in outcomes if not o.agree]
    for o in differ:
        note = f"  ({o.note})" if o.note else ""
        lines.append(f"DIFFERS {o.policy} {o.invariant} [{o.cpu}]: recorded {o.recorded}, "
                     f"now {o.now}{note}")  # fmt: skip
    verdict = "all agree" if not differ else f"{len(differ)} differ"
    lines.append(f"checked {len(outcomes)} cells against the recorded proofs: {verdict} "
                 f"({summary}); {seconds:.0f} s of solving")  # fmt: skip
    return "\n".join(lines) + "\n"
