# SPDX-License-Identifier: MIT
"""Human rendering of a simulated trace: one row per event, the FS/GS state after it.

Layer: traces. Imports `sim`, `semantics.events` and rich's data classes (no printing:
the CLI prints the returned table).

The state columns are what the task would see: its CPU's registers while it runs,
or its saved thread state (marked ``*``) while it is stopped under a tracer.
A cell that changed since the previous row is highlighted.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from fsgs_smt.semantics.events import Event, op_name
from fsgs_smt.sim import SimRun
from fsgs_smt.traces.fsgs_json import event_to_json

STATE_COLUMNS = ("fs", "fs_base", "gs", "gs_base")


def task_view(world: Mapping[str, int | bool]) -> tuple[dict[str, int], bool]:
    """The task's (fs, fs_base, gs, gs_base) and whether they are its saved (stopped) state."""
    if world["T.stopped"]:
        return {
            "fs": int(world["T.fsindex"]),
            "fs_base": int(world["T.fsbase"]),
            "gs": int(world["T.gsindex"]),
            "gs_base": int(world["T.gsbase"]),
        }, True
    return {name: int(world[f"cpu0.{name}"]) for name in STATE_COLUMNS}, False  # its CPU


def _args(event: Event) -> str:
    fields = event_to_json(event)
    fields.pop("op", None)
    parts = []
    for key, value in fields.items():
        if isinstance(value, dict):
            inner = ",".join(f"{k}={v}" for k, v in value.items())
            parts.append(f"{key}={{{inner}}}")
        elif isinstance(value, list):
            parts.append(f"{key}=[{', '.join(str(v.get('op', v)) for v in value)}]")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _result_text(result: object) -> str:
    if isinstance(result, dict):
        if "handler" in result:
            h = result["handler"]
            inner = _result_text(h)
            return (
                f"handler {inner}; sc.fs={result['sigcontext_fs']} sc.gs={result['sigcontext_gs']}"
            )
        return " ".join(f"{k}={v}" for k, v in result.items())
    return str(result)


def trace_table(run: SimRun, *, title: str | None = None) -> Table:
    """A rich Table of *run*: #, op, arguments, result, then the task's FS/GS state.

    *title* is plain text (file names and policy names in it are not rich markup).
    """
    table = Table(title=None if title is None else escape(title), show_lines=False)
    for name in ("#", "op", "arguments", "result", *STATE_COLUMNS):
        table.add_column(name, no_wrap=name in STATE_COLUMNS or name == "#")
    prev, _ = task_view(run.initial)
    table.add_row("", "(initial)", "", "", *(hex(prev[c]) for c in STATE_COLUMNS))
    for i, (event, result, world) in enumerate(
        zip(run.trace.events, run.results, run.worlds, strict=True)
    ):
        view, stopped = task_view(world)
        cells = []
        for col in STATE_COLUMNS:
            text = hex(view[col]) + ("*" if stopped else "")
            style = "bold yellow" if view[col] != prev[col] else ""
            cells.append(Text(text, style=style))
        res_style = "bold red" if result in ("SIGSEGV", "SIGBUS", "SIGILL") else ""
        table.add_row(
            str(i), op_name(event), Text(_args(event)), Text(_result_text(result), style=res_style),
            *cells,
        )  # fmt: skip
        prev = view
    return table
