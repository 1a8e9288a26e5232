# SPDX-License-Identifier: MIT
"""Renderings of a native replay report: a litmus-style text table and JSON data.

Layer: native (rendering). Imports `native.run` and `traces.fsgs_json`; returns strings
and JSON-ready values, never prints.
"""

from __future__ import annotations

import json
from typing import Any

from fsgs_smt.native.run import CheckReport, ReplayReport
from fsgs_smt.traces.fsgs_json import event_to_json


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
    return "\n".join(lines) + "\n"


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
