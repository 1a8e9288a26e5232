# SPDX-License-Identifier: MIT
"""Conformance runs (`fsgs-smt conform`, `fsgs_smt.native.conform`): random traces biased
to the corners (`fsgs_smt.native.randtrace`) and litmus files, replayed natively and
compared with the model.

The CI test: 500 random traces of a fixed seed agree with linux-5.9 on this machine's CPU
model, each in its one run (about a minute on two cores). A disagreement that every one of
10 recheck runs contradicts (``transient``: an event outside the trace) is tolerated, at
most two of them; one that the recheck reproduces, even sometimes, fails the test. A run
that is the prediction with one asynchronous interrupt inserted (its IRET cleared a null
selector 1..3) agrees when the recheck does (``interrupted``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsgs_smt.cli import app
from fsgs_smt.native import cgen, machine
from fsgs_smt.native.conform import (
    Case,
    CaseResult,
    ConformReport,
    conform,
    features_of,
    random_cases,
)
from fsgs_smt.native.machine import probe
from fsgs_smt.native.randtrace import KERNEL_BASES, NONCANONICAL_BASES, Features, random_trace
from fsgs_smt.native.render import first_mismatch, render_conform_json, render_conform_text
from fsgs_smt.native.run import NativeRun, ReplayReport, compare
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import (
    Abi,
    Event,
    ModifyLdt,
    MovSeg,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    SetThreadArea,
    Signal,
    Trace,
    WrBase,
    Yield,
    op_name,
)
from fsgs_smt.traces.fsgs_json import load_trace
from tests.native.conftest import requires_native, wrong_model
from tests.native.test_run import _as_seen_in_ci, _interrupted_case, _native

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests/golden/traces"
SEED = 20240
COUNT = 500
DEPTH = 8

runner = CliRunner()


def _all(trace: Trace) -> list[Event]:
    out: list[Event] = []
    for e in trace.events:
        out.append(e)
        if isinstance(e, Yield):
            out.extend(e.other)
    return out


# -- the generator -----------------------------------------------------------------------------


def test_random_traces_are_reproducible_and_independent_of_the_count() -> None:
    """Trace k of a seed is the same whether 10 or 500 are made; another seed differs."""
    few = [c.trace for c in random_cases(10, SEED, DEPTH, Features())]
    many = [c.trace for c in random_cases(50, SEED, DEPTH, Features())]

    assert few == many[:10]
    assert few[3] == random_trace(SEED, 3, max_events=DEPTH)
    assert few != [c.trace for c in random_cases(10, SEED + 1, DEPTH, Features())]


def test_random_traces_respect_the_depth_and_the_replay() -> None:
    """1..D events, and every trace is one the native replay can execute."""
    traces = [random_trace(SEED, k, max_events=5) for k in range(300)]

    assert {len(t.events) for t in traces} == {1, 2, 3, 4, 5}
    assert [] == [t for t in traces if cgen.unsupported(t)]
    with pytest.raises(ValueError, match="max_events"):
        random_trace(SEED, 0, max_events=0)


def test_random_traces_reach_the_corners() -> None:
    """Every op, LDT and null selectors, kernel-half and non-canonical bases, descriptor
    changes under a loaded LDT selector (also by the other task), ptrace round trips,
    set_thread_area through int $0x80, signals."""
    traces = [random_trace(SEED, k, max_events=DEPTH) for k in range(COUNT)]
    events = [e for t in traces for e in _all(t)]
    ops = Counter(op_name(e) for e in events)
    sels = [e.selector for e in events if isinstance(e, MovSeg)]
    bases = {e.value for e in events if isinstance(e, WrBase | PtracePoke)}

    assert set(ops) == {
        "mov_seg", "wrbase", "arch_prctl", "modify_ldt", "set_thread_area", "yield",
        "interrupt", "migrate", "observe", "ptrace_peek", "ptrace_poke", "ptrace_setregs",
        "signal", "fork", "exec",
    }  # fmt: skip
    assert {0, 1, 2, 3} <= set(sels)
    assert sum(s & 4 for s in sels) >= 100  # LDT selectors
    assert bases & set(KERNEL_BASES) and bases & set(NONCANONICAL_BASES)
    assert any(isinstance(e, PtraceSetregs) and not e.fields for e in events)
    assert any(isinstance(e, SetThreadArea) and e.abi is Abi.IA32 for e in events)
    assert ops["signal"] >= 100

    def changed_under_selector(t: Trace, *, by_other: bool = False) -> bool:
        loaded: set[int] = set()
        for e in t.events:
            if isinstance(e, MovSeg) and e.selector & 4:
                loaded.add(e.selector >> 3)
            writes = list(e.other) if isinstance(e, Yield) else [] if by_other else [e]
            if any(isinstance(w, ModifyLdt) and w.entry in loaded for w in writes):
                return True
        return False

    assert sum(changed_under_selector(t) for t in traces) >= 50
    assert sum(changed_under_selector(t, by_other=True) for t in traces) >= 5


def test_features_keep_out_what_the_machine_lacks() -> None:
    """No int $0x80, modify_ldt or tracer events where the machine has none of them."""
    none = Features(ia32=False, modify_ldt=False, ptrace=False)
    events = [e for k in range(300) for e in _all(random_trace(SEED, k, features=none))]

    assert not any(isinstance(e, ModifyLdt | PtracePeek | PtracePoke | PtraceSetregs)
                   for e in events)  # fmt: skip
    assert not any(isinstance(e, SetThreadArea) and e.abi is Abi.IA32 for e in events)
    assert any(isinstance(e, Signal) for e in events)


def test_features_of_a_machine() -> None:
    info = dataclasses.replace(probe(run_probes=False), modify_ldt=False, ptrace=True,
                               ia32_emulation=False, c_probe_ran=True)  # fmt: skip

    assert Features(ia32=False, modify_ldt=False, ptrace=True) == features_of(info)


def _interrupted_result(*, odd_recheck: bool) -> CaseResult:
    """A one-run case whose run is the CI failure of selftest-4 (an interrupt cleared GS 1),
    and its recheck: 9 exact runs, then (if *odd_recheck*) one with a different GS base."""
    trace, pred, alts = _interrupted_case()
    exact = _native(list(pred.results), list(pred.states))
    odd = _native(list(pred.results), [{**s, "gs_base": "0x7"} if s else s
                                       for s in pred.states])  # fmt: skip

    def rep(runs: list[NativeRun]) -> ReplayReport:
        return compare("t", trace, "linux-5.9", "amd-zen3", pred, runs,
                       alternatives=lambda: alts)  # fmt: skip

    return CaseResult(case=Case("random-7", trace, "random"), report=rep([_as_seen_in_ci(pred)]),
                      recheck=rep([exact] * 9 + [odd] * odd_recheck))  # fmt: skip


def test_an_interrupted_case_agrees_when_its_recheck_does() -> None:
    """The one run is explained by an interrupt: the case agrees if the recheck agrees;
    if the recheck shows something else, the case disagrees as the recheck says."""
    agreeing = _interrupted_result(odd_recheck=False)
    unexplained = _interrupted_result(odd_recheck=True)
    report = dataclasses.replace(_conform_report(), results=(agreeing, unexplained))

    assert ("interrupted", True) == (agreeing.kind, agreeing.agrees)
    assert ("sometimes", False) == (unexplained.kind, unexplained.agrees)
    text = render_conform_text(report)
    assert ("interrupted random-7: the prediction with an asynchronous interrupt before "
            "event 6; the recheck agrees") in text  # fmt: skip
    assert "traces: 1 agree (1 of them interrupted), 1 disagree" in text
    assert ["random-7"] == render_conform_json(report)["interrupted"]


def _conform_report() -> ConformReport:
    return ConformReport(policy="linux-5.9", cpu="amd-zen3", runs=1, recheck=10, seed=1,
                         depth=8, random=2, litmus=(), results=())  # fmt: skip


# -- the CI conformance run ------------------------------------------------------------------


@requires_native
def test_500_random_traces_agree_with_linux_5_9_on_this_machine() -> None:
    """500 random traces (fixed seed, at most 8 events), one run each, two at a time."""
    info = probe()
    cases = random_cases(COUNT, SEED, DEPTH, features_of(info))
    start = time.monotonic()
    report = conform(cases, load_checked("linux-5.9"), CPU_MODELS[info.cpu_model], runs=1,
                     seed=SEED, depth=DEPTH, info=info, jobs=2)  # fmt: skip
    seconds = time.monotonic() - start

    transient = [r for r in report.disagreeing if r.kind == "transient"]
    problems = [f"{r.case.name} ({r.kind}): {first_mismatch(r)}"
                for r in report.disagreeing if r not in transient]  # fmt: skip
    problems += [f"{r.case.name} skipped: {r.skipped}" for r in report.skipped]
    assert [] == problems
    assert len(transient) <= 2, [f"{r.case.name}: {first_mismatch(r)}" for r in transient]
    assert COUNT == len(report.agreeing) + len(transient)
    assert sum(c.agree for c in report.per_op()) > 3 * COUNT
    print(f"{COUNT} random traces in {seconds:.1f} s")  # shown with -s


# -- the command -------------------------------------------------------------------------------


def _litmus(tmp_path: Path, *names: str) -> Path:
    d = tmp_path / "litmus"
    d.mkdir()
    for name in names:
        shutil.copy(GOLDEN / name, d / name)
    return d


@requires_native
def test_cli_conform_text(tmp_path: Path) -> None:
    """Random and litmus traces; counts per op and the totals; exit 0; nothing written."""
    litmus = _litmus(tmp_path, "L07.json", "L26.json")
    out = tmp_path / "dis.json"
    result = runner.invoke(app, ["conform", "--random", "6", "--seed", "3", "--depth", "4",
                                 "--litmus", str(litmus), "--output", str(out)])  # fmt: skip

    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"conformance of this machine with linux-5.9 on {probe().cpu_model}: "
                        f"6 random traces (seed 3, at most 4 events) and 2 litmus traces "
                        f"({litmus}), 1 run each")  # fmt: skip
    assert lines[1].split() == ["op", "agree", "disagree", "first"]
    assert lines[-2].startswith("total ")
    assert lines[-1] == "traces: 8 agree, 0 disagree, 0 skipped (cannot run here)"
    assert not out.exists()


@requires_native
def test_cli_conform_disagreement_is_written_and_exits_1(tmp_path: Path) -> None:
    """Against a model this machine is not, L07 disagrees: exit 1, the trace (with cpu) in
    --output, which `simulate` and `replay` read; an unsupported litmus trace is skipped and
    counted."""
    litmus = _litmus(tmp_path, "L07.json", "L08.json")
    (litmus / "bad-setregs.json").write_text(
        '{"format": "fsgs-trace/1", "events": [{"op": "ptrace_setregs", "fields": {"ip": "0x0"}}]}'
    )
    out = tmp_path / "dis.json"
    model, predicted, observed = wrong_model()
    result = runner.invoke(app, ["conform", "--random", "0", "--litmus", str(litmus),
                                 "--cpu", model, "--output", str(out)])  # fmt: skip

    assert 1 == result.exit_code, result.stderr
    assert (f"DISAGREES {litmus / 'L07.json'} (never: 0 of 10 recheck runs agree): event 1 "
            "mov_seg state: predicted "
            f"fs (0x0, 0x0) gs (0x1, {predicted}), observed fs (0x0, 0x0) gs (0x1, {observed}) "
            "x1") in (
        result.stdout.splitlines())  # fmt: skip
    assert f"skipped {litmus / 'bad-setregs.json'}: event 0 ptrace_setregs changes ip" in (
        result.stdout
    )
    assert "traces: 1 agree, 1 disagree, 1 skipped (cannot run here)" in result.stdout
    assert f"first disagreeing trace ({litmus / 'L07.json'}) written to {out}" in result.stdout
    written = load_trace(out).trace
    assert model == written.cpu
    assert load_trace(GOLDEN / "L07.json").trace.events == written.events


@requires_native
def test_cli_conform_json(tmp_path: Path) -> None:
    """--format json: the counts, and each disagreement with its trace and report."""
    litmus = _litmus(tmp_path, "L07.json")
    out = tmp_path / "dis.json"
    model = wrong_model()[0]
    result = runner.invoke(app, ["conform", "--random", "2", "--litmus", str(litmus),
                                 "--cpu", model, "--format", "json",
                                 "--output", str(out)])  # fmt: skip

    doc = json.loads(result.stdout)
    assert 1 == result.exit_code
    assert ("linux-5.9", model, 2, 3) == (doc["policy"], doc["cpu"], doc["random"],
                                                doc["traces"])  # fmt: skip
    names = [d["name"] for d in doc["disagreements"]]
    assert str(litmus / "L07.json") in names
    assert str(out) == doc["written"]
    first = doc["disagreements"][names.index(str(litmus / "L07.json"))]
    assert ("never", "Never", 10) == (first["kind"], first["recheck"]["seen"],
                                      first["recheck"]["runs"])  # fmt: skip
    assert "fsgs-trace/1" == first["trace"]["format"]
    assert "Never" == first["report"]["seen"]
    assert {"op", "agree", "disagree", "first"} == set(doc["ops"][0])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--random", "-1"], "--random -1: expected an integer >= 0"),
        (["--depth", "0"], "--depth 0: expected an integer >= 1"),
        (["--runs", "0"], "--runs 0: expected an integer >= 1"),
        (["--jobs", "0"], "--jobs 0: expected an integer >= 1"),
        (["--recheck", "-1"], "--recheck -1: expected an integer >= 0"),
        (["--random", "0"], "--random 0 and no --litmus"),
        (["--litmus", "/nonexistent/dir"], "--litmus /nonexistent/dir: expected a directory"),
        (["--cpu", "arm"], "--cpu 'arm'"),
        (["--policy", "linux-9.9"], "linux-9.9"),
    ],
)
def test_cli_conform_bad_options(args: list[str], needle: str) -> None:
    """Bad options are bad input: one line, exit 2, nothing run."""
    result = runner.invoke(app, ["conform", *args])

    assert 2 == result.exit_code
    assert needle in result.stderr
    assert 1 == len(result.stderr.splitlines())


def test_cli_conform_litmus_errors_are_located(tmp_path: Path) -> None:
    """A directory without traces, and a malformed trace: located, exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["conform", "--litmus", str(empty)])

    assert 2 == result.exit_code
    assert f"--litmus {empty}: expected *.json traces, got none" in result.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.json").write_text('{"format": "fsgs-trace/1", "events": [{"op": "nope"}]}')
    result = runner.invoke(app, ["conform", "--litmus", str(bad)])

    assert 2 == result.exit_code
    assert result.stderr.startswith(f"{bad / 'x.json'}:1:")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux machine's facts")
def test_cli_conform_locates_a_litmus_migration_to_a_missing_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's world has 2 CPUs: a litmus migrate to CPU 5 is bad input at its value (it
    was <input>:1:1), found before anything is compiled (the machine's facts are faked)."""
    fake = dataclasses.replace(probe(run_probes=False), fsgsbase=True, arch="x86_64",
                               gcc="/usr/bin/gcc", cpu_model="intel")  # fmt: skip
    monkeypatch.setattr(machine, "probe", lambda **_: fake)
    litmus = tmp_path / "litmus"
    litmus.mkdir()
    (litmus / "m.json").write_text(
        '{"format": "fsgs-trace/1",\n "events": [{"op": "yield"},\n  {"op": "migrate", "cpu": 5}]}'
    )

    result = runner.invoke(app, ["conform", "--random", "0", "--litmus", str(litmus)])

    assert (2, "") == (result.exit_code, result.stdout)
    where = f"{litmus / 'm.json'}:3:28"
    assert [f"{where}: error: migrate to CPU 5: expected a CPU number in 0..1"] == (
        result.stderr.splitlines()
    )


def test_cli_conform_cannot_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without FSGSBASE: exit 5 and the reason on one line."""
    fake = dataclasses.replace(probe(run_probes=False), fsgsbase=False, arch="x86_64",
                               gcc="/usr/bin/gcc")  # fmt: skip
    monkeypatch.setattr(machine, "probe", lambda **_: fake)

    result = runner.invoke(app, ["conform", "--random", "3"])

    assert 5 == result.exit_code
    assert "" == result.stdout
    assert ["fsgs-smt: cannot run: the kernel does not enable FSGSBASE (HWCAP2 bit 1 clear)"] == (
        result.stderr.splitlines()
    )
