# SPDX-License-Identifier: MIT
"""Renderings of a native replay report (a litmus-style text table and JSON data) and of a
conformance run (counts per event kind, each disagreement in one line; JSON).

Layer: native (rendering). Imports `native.run`, `native.conform` and `traces.fsgs_json`;
returns strings and JSON-ready values, never prints.
"""

from __future__ import annotations

import json
from typing import Any

from fsgs_smt.native.conform import CaseResult, ConformReport
from fsgs_smt.native.run import CheckReport, ReplayReport
from fsgs_smt.traces.fsgs_json import event_to_json, trace_to_json


def value_text(value: Any) -> str:
    """A result or state in one short line: ``fs (0x0, 0x0) gs (0x7, 0x7000)``, ``-EIO``."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        if "handler" in value:
            return (
                f"handler {value_text(value['handler'])}; sigcontext fs {value['sigcontext_fs']} "
                f"gs {value['sigcontext_gs']}"
            )
        if {"fs", "fs_base", "gs", "gs_base"} <= value.keys():
            return f"fs ({value['fs']}, {value['fs_base']}) gs ({value['gs']}, {value['gs_base']})"
        return json.dumps(value, sort_keys=True)
    return str(value)


def _observed_text(check: CheckReport) -> str:
    if len(check.observed) == 1:
        return value_text(check.observed[0].value)
    return "; ".join(f"{value_text(o.value)} x{o.runs}" for o in check.observed)


def _verdict(check: CheckReport) -> str:
    if check.match:
        return "MATCH"
    if check.matched_runs:
        return f"MISMATCH ({check.matched_runs}/{check.runs} runs match)"
    return "MISMATCH"


def render_text(report: ReplayReport) -> str:
    """Per event and check (result, state after): predicted, observed, MATCH or MISMATCH."""
    header = ("i", "op", "check", "predicted", "observed", "")
    rows: list[tuple[str, ...]] = []
    for ev in report.events:
        for n, (what, check) in enumerate((("result", ev.result), ("state", ev.state))):
            rows.append((
                str(ev.i) if n == 0 else "", ev.op if n == 0 else "", what,
                value_text(check.predicted), _observed_text(check), _verdict(check),
            ))  # fmt: skip
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        f"replay of {report.name}: {report.runs} run{'s' if report.runs != 1 else ''} on this "
        f"machine vs {report.policy} on {report.cpu}"
    ]
    for r in [header, *rows]:
        rest = (c.ljust(w) for c, w in zip(r[1:], widths[1:], strict=True))
        cells = [r[0].rjust(widths[0]), *rest]
        lines.append("  ".join(cells).rstrip())
    lines += [f"error in {e}" for e in report.errors]
    if report.c_source:
        lines.append(f"C program: {report.c_source}")
    lines.append(
        f"predicted outcome seen: {report.seen} ({report.matched_runs} of {report.runs} runs)"
    )
    lines += [
        f"run {i.run} is the prediction with {ASYNC_TEXT[i.kind]} before "
        + (f"event {i.before}" if i.before < len(report.events) else "the end")
        for i in report.interrupted
    ]
    if report.interrupted:
        lines.append(f"agrees with the model: {'yes' if report.agrees else 'no'} (the runs "
                     "that match outright must be the majority)")  # fmt: skip
    return "\n".join(lines) + "\n"


ASYNC_TEXT = {
    "interrupt": "an asynchronous interrupt (IRET)",
    "context switch": "a context switch (the task slept or was preempted)",
    "preemption": "a preemption by an interrupt (a context switch, then IRET)",
}


def _check_json(check: CheckReport) -> dict[str, Any]:
    return {
        "predicted": check.predicted,
        "observed": [{"value": o.value, "runs": o.runs} for o in check.observed],
        "matched_runs": check.matched_runs,
        "match": check.match,
    }


def render_json(report: ReplayReport) -> dict[str, Any]:
    """The same report as JSON-ready data (``seen`` is Always, Sometimes or Never)."""
    return {
        "trace": report.name,
        "policy": report.policy,
        "cpu": report.cpu,
        "runs": report.runs,
        "matched_runs": report.matched_runs,
        "seen": report.seen,
        "interrupted": [
            {"run": i.run, "before_event": i.before, "kind": i.kind} for i in report.interrupted
        ],
        "agrees": report.agrees,
        "errors": list(report.errors),
        "c_source": report.c_source,
        "events": [
            {
                "i": ev.i,
                "op": ev.op,
                "event": event_to_json(ev.event),
                "match": ev.match,
                "result": _check_json(ev.result),
                "state": _check_json(ev.state),
            }
            for ev in report.events
        ],
    }


# -- conformance runs ------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def first_mismatch(result: CaseResult) -> str:
    """The first differing check of a conformance case in one line (or its error)."""
    if result.error:
        return f"error: {result.error}"
    if result.report is None:
        return ""
    for ev in result.report.events:
        for what, check in (("result", ev.result), ("state", ev.state)):
            if not check.match:
                seen = "; ".join(f"{value_text(o.value)} x{o.runs}" for o in check.observed)
                return (f"event {ev.i} {ev.op} {what}: predicted {value_text(check.predicted)}, "
                        f"observed {seen}")  # fmt: skip
    return "; ".join(result.report.errors)


def _kind_text(result: CaseResult) -> str:
    """What the recheck of a disagreement says, in a few words."""
    again = result.recheck
    if again is None:
        return result.kind
    seen = f"{again.matched_runs} of {again.runs} recheck runs agree"
    return f"{result.kind}: {seen}"


def render_conform_text(report: ConformReport) -> str:
    """Per event kind: agree / disagree / first disagreement; the totals; each disagreeing
    and each skipped case in one line."""
    made = []
    if report.random:
        made.append(f"{_plural(report.random, 'random trace')} (seed {report.seed}, at most "
                    f"{report.depth} events)")  # fmt: skip
    litmus = len(report.results) - report.random
    if report.litmus:
        made.append(f"{_plural(litmus, 'litmus trace')} ({', '.join(report.litmus)})")
    lines = [
        f"conformance of this machine with {report.policy} on {report.cpu}: "
        f"{' and '.join(made) or 'no traces'}, {_plural(report.runs, 'run')} each"
    ]
    counts = report.per_op()
    header = ("op", "agree", "disagree", "first")
    rows = [(c.op, str(c.agree), str(c.disagree), str(c.first)) for c in counts]
    totals = (sum(c.agree for c in counts), sum(c.disagree for c in counts),
              sum(c.first for c in counts))  # fmt: skip
    rows.append(("total", str(totals[0]), str(totals[1]), str(totals[2])))
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(4)]
    for r in [header, *rows]:
        right = (c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))
        lines.append("  ".join([r[0].ljust(widths[0]), *right]))
    for res in report.disagreeing:
        lines.append(f"DISAGREES {res.case.name} ({_kind_text(res)}): {first_mismatch(res)}")
    for res in report.skipped:
        lines.append(f"skipped {res.case.name}: {res.skipped}")
    interrupted = [r for r in report.agreeing if r.kind == "interrupted"]
    for res in interrupted:
        assert res.report is not None  # noqa: S101 - an interrupted case was replayed
        places = ", ".join(f"{i.kind} before event {i.before}" for i in res.report.interrupted)
        lines.append(
            f"interrupted {res.case.name}: the prediction with an asynchronous {places}; "
            "the recheck agrees"
        )
    lines.append(
        f"traces: {len(report.agreeing)} agree"
        + (f" ({len(interrupted)} of them interrupted)" if interrupted else "")
        + f", {len(report.disagreeing)} disagree, "
        f"{len(report.skipped)} skipped (cannot run here)"
    )
    return "\n".join(lines) + "\n"


def render_conform_json(report: ConformReport) -> dict[str, Any]:
    """The same as JSON-ready data; each disagreeing case with its trace and replay report."""
    return {
        "policy": report.policy,
        "cpu": report.cpu,
        "runs": report.runs,
        "recheck": report.recheck,
        "seed": report.seed,
        "depth": report.depth,
        "random": report.random,
        "litmus": list(report.litmus),
        "traces": len(report.results),
        "agree": len(report.agreeing),
        "interrupted": [r.case.name for r in report.agreeing if r.kind == "interrupted"],
        "disagree": len(report.disagreeing),
        "skipped": [{"name": r.case.name, "reason": r.skipped} for r in report.skipped],
        "ops": [
            {"op": c.op, "agree": c.agree, "disagree": c.disagree, "first": c.first}
            for c in report.per_op()
        ],
        "disagreements": [
            {
                "name": r.case.name,
                "kind": r.kind,
                "recheck": None
                if r.recheck is None
                else {
                    "runs": r.recheck.runs,
                    "matched_runs": r.recheck.matched_runs,
                    "seen": r.recheck.seen,
                },
                "first": first_mismatch(r),
                "error": r.error,
                "trace": trace_to_json(r.case.trace),
                "report": render_json(r.report) if r.report is not None else None,
            }
            for r in report.disagreeing
        ],
    }
