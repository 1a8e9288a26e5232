# SPDX-License-Identifier: MIT
"""Native replay on this machine: the examples and every golden litmus trace agree with
linux-5.9 on the machine's CPU model, in every run; a wrong model is caught; the CLI.

These tests compile and run C. They skip (saying why) unless the machine is x86-64 Linux
with gcc and a kernel that enables FSGSBASE. Each golden trace is its own test, so a
disagreement fails by name; a trace that cannot agree on this machine must be listed in
`EXCLUDED` with the reason, never skipped silently.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsgs_smt.cli import app
from fsgs_smt.native import machine
from fsgs_smt.native.machine import probe
from fsgs_smt.native.render import value_text
from fsgs_smt.native.run import ReplayReport, replay
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import (
    ArchCode,
    ArchPrctl,
    Event,
    Fork,
    Migrate,
    MovSeg,
    Observe,
    Seg,
    Trace,
    WrBase,
    Yield,
)
from fsgs_smt.traces.fsgs_json import load_trace
from tests.native.conftest import native_skip_reason, requires_native, wrong_model

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden/traces"
EXAMPLES = ROOT / "examples"
RUNS = 3

# Golden traces that cannot agree with linux-5.9 on this machine, with the reason. None
# today: all agree on an AMD EPYC amd-zen3 guest and on an amd-legacy one (Linux 6.18). A
# trace added here must say why (another CPU model's hardware, a missing feature, ...).
EXCLUDED: dict[str, str] = {}

GOLDEN_NAMES = sorted(p.name for p in GOLDEN.glob("*.json"))
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.glob("*.json"))

runner = CliRunner()


def explain(report: ReplayReport) -> str:
    """Every mismatch of a report, one line each, for assertion messages."""
    lines = [f"{report.name}: seen {report.seen} ({report.matched_runs}/{report.runs})"]
    lines += [f"  run {i.run}: an interrupt before event {i.before}" for i in report.interrupted]
    lines += list(report.errors)
    for ev in report.events:
        for what, check in (("result", ev.result), ("state", ev.state)):
            if not check.match:
                seen = "; ".join(f"{value_text(o.value)} x{o.runs}" for o in check.observed)
                lines.append(f"  {ev.i} {ev.op} {what}: predicted {value_text(check.predicted)}"
                             f", observed {seen}")  # fmt: skip
    return "\n".join(lines)


def _replay_all(paths: list[Path]) -> dict[str, ReplayReport]:
    policy = load_checked("linux-5.9")
    info = probe()
    model = CPU_MODELS[info.cpu_model]

    def one(path: Path) -> tuple[str, ReplayReport]:
        trace = load_trace(path).trace
        return path.name, replay(trace, policy, model, name=path.name, runs=RUNS, info=info)

    with ThreadPoolExecutor(max_workers=2) as pool:  # compiling dominates: use both cores
        return dict(pool.map(one, paths))


@pytest.fixture(scope="module")
def golden_reports() -> dict[str, ReplayReport]:
    """Every golden trace not excluded, replayed RUNS times (once per module)."""
    if native_skip_reason():
        pytest.skip(native_skip_reason())
    return _replay_all([GOLDEN / n for n in GOLDEN_NAMES if n not in EXCLUDED])


def test_excluded_traces_exist_and_say_why() -> None:
    """The exclusion list names real traces, each with a reason."""
    for name, reason in EXCLUDED.items():
        assert name in GOLDEN_NAMES
        assert reason.strip()


@requires_native
@pytest.mark.parametrize("name", [n for n in GOLDEN_NAMES if n not in EXCLUDED])
def test_golden_trace_agrees_with_linux_5_9(
    name: str, golden_reports: dict[str, ReplayReport]
) -> None:
    """Every event's result and after-state matches the model in every run, or in most
    runs with the others the model's outcome under one asynchronous interrupt (an IRET
    clears a null selector 1..3; the machine takes interrupts when it likes)."""
    report = golden_reports[name]

    assert report.agrees, explain(report)


@requires_native
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_agrees_with_linux_5_9(name: str) -> None:
    """examples/*.json (every-event.json has every op, exec included)."""
    report = _replay_all([EXAMPLES / name])[name]

    assert report.agrees, explain(report)
    assert report.runs == RUNS


@requires_native
def test_a_wrong_model_is_caught() -> None:
    """Replayed against a model this machine is not (a null load keeps or clears the base
    the other way), L07 never matches."""
    model, predicted, observed = wrong_model()
    trace = load_trace(GOLDEN / "L07.json").trace
    report = replay(trace, load_checked("linux-5.9"), CPU_MODELS[model], runs=2)

    assert "Never" == report.seen
    check = report.events[1].state  # mov $1, %gs after wrgsbase 0xaaa000
    assert not check.match
    assert predicted == check.predicted["gs_base"]
    assert [{"fs": "0x0", "fs_base": "0x0", "gs": "0x1", "gs_base": observed}] == [
        o.value for o in check.observed
    ]


@requires_native
def test_no_page_fault_nulls_a_selector_in_a_long_trace() -> None:
    """135 events holding null selectors 1..3 (cleared by any IRET), across a fork: the
    program touches its pages beforehand (and after the fork's copy-on-write), so no event
    takes a page fault the model does not have. Without that, the record of event 35, on a
    new page of the shared area, nulled GS in every run (which no interrupt excuses: the
    runs an interrupt explains must be the minority)."""
    events: list[Event] = [
        MovSeg(seg=Seg.GS, selector=3), WrBase(seg=Seg.GS, value=0x9999000),
        MovSeg(seg=Seg.FS, selector=2),
    ]  # fmt: skip
    for _ in range(30):
        events += [Yield(), Observe(), ArchPrctl(code=ArchCode.GET_GS)]
    events += [Fork(), MovSeg(seg=Seg.GS, selector=1)]
    for k in range(10):
        events += [Yield(), Observe(), Migrate(cpu=k % 2), ArchPrctl(code=ArchCode.GET_FS)]
    info = probe()
    report = replay(Trace(events=tuple(events)), load_checked("linux-5.9"),
                    CPU_MODELS[info.cpu_model], runs=3, info=info)  # fmt: skip

    assert report.agrees, explain(report)
    assert ("0x0", "0x1") == (  # the fork's IRET nulled FS 2; GS 1 came after it
        report.events[-1].state.predicted["fs"],
        report.events[-1].state.predicted["gs"],
    )


@requires_native
def test_int80_returns_through_iret() -> None:
    """mov $3, %gs; set_thread_area via int $0x80: GS is 0 afterwards, on the machine and in
    the model (this disagreement, found by replay, fixed the model; golden trace N01)."""
    trace = load_trace(GOLDEN / "N01.json").trace
    info = probe()
    report = replay(trace, load_checked("linux-5.9"), CPU_MODELS[info.cpu_model], runs=3)

    assert report.agrees, explain(report)


# -- the command ------------------------------------------------------------------------------


@requires_native
def test_cli_replay_text(tmp_path: Path) -> None:
    """Exit 0, a MATCH per check, the verdict; --keep-c keeps the program."""
    result = runner.invoke(app, ["replay", str(EXAMPLES / "wrgsbase-ldt.json"), "--runs", "2",
                                 "--keep-c", str(tmp_path)])  # fmt: skip

    assert (0, "") == (result.exit_code, result.stderr)
    assert result.stdout.count("MATCH") == 10
    assert "MISMATCH" not in result.stdout
    assert result.stdout.endswith("predicted outcome seen: Always (2 of 2 runs)\n")
    kept = tmp_path / "wrgsbase-ldt.c"
    assert kept.read_text().startswith("/* Generated by fsgs-smt replay")
    assert f"C program: {kept}" in result.stdout


@requires_native
def test_cli_replay_keeps_the_program_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--keep-c . ran the executable by its bare name, which is looked up on PATH (exit 70);
    and a trace named with two dots was reported as a .c file that did not exist."""
    trace = tmp_path / "two.dots.json"
    trace.write_text((EXAMPLES / "wrgsbase-ldt.json").read_text())
    keep = tmp_path / "keep"
    keep.mkdir()
    monkeypatch.chdir(keep)

    result = runner.invoke(app, ["replay", str(trace), "--runs", "1", "--keep-c", "."])

    assert (0, "") == (result.exit_code, result.stderr)
    kept = keep / "two.dots.c"
    assert kept.read_text().startswith("/* Generated by fsgs-smt replay")
    assert f"C program: {kept}\n" in result.stdout


@requires_native
def test_cli_replay_json_and_mismatch_exit_code() -> None:
    """--format json is the same report as data; a mismatch exits 1."""
    model = wrong_model()[0]
    result = runner.invoke(app, ["replay", str(GOLDEN / "L07.json"), "--runs", "1",
                                 "--cpu", model, "--format", "json"])  # fmt: skip

    assert 1 == result.exit_code, result.stderr
    data = json.loads(result.stdout)
    assert ("linux-5.9", model, "Never", 1) == (
        data["policy"],
        data["cpu"],
        data["seen"],
        data["runs"],
    )
    assert 9 == len(data["events"])
    assert not data["events"][1]["state"]["match"]


def test_cli_replay_bad_trace_is_a_located_error(tmp_path: Path) -> None:
    """A malformed trace: one located line on stderr, exit 2 (nothing compiled)."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "fsgs-trace/1", "events": [{"op": "mov_seg", "seg": "ds"}]}')

    result = runner.invoke(app, ["replay", str(bad)])

    assert 2 == result.exit_code
    assert result.stderr.startswith(f"{bad}:1:")
    assert 1 == len(result.stderr.splitlines())


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--runs", "0"], "--runs"), (["--cpu", "arm"], "--cpu 'arm'"),
     (["--policy", "linux-9.9"], "linux-9.9")],
)  # fmt: skip
def test_cli_replay_bad_options(args: list[str], needle: str) -> None:
    """Bad options are bad input (exit 2)."""
    result = runner.invoke(app, ["replay", str(EXAMPLES / "wrgsbase-ldt.json"), *args])

    assert 2 == result.exit_code
    assert needle in result.stderr


def test_cli_replay_cannot_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without FSGSBASE: exit 5 and the reason on one line."""
    import dataclasses  # noqa: PLC0415

    fake = dataclasses.replace(probe(run_probes=False), fsgsbase=False, arch="x86_64",
                               gcc="/usr/bin/gcc")  # fmt: skip
    monkeypatch.setattr(machine, "probe", lambda **_: fake)

    result = runner.invoke(app, ["replay", str(EXAMPLES / "wrgsbase-ldt.json")])

    assert 5 == result.exit_code
    assert "" == result.stdout
    assert ["fsgs-smt: cannot run: the kernel does not enable FSGSBASE (HWCAP2 bit 1 clear)"] == (
        result.stderr.splitlines()
    )
