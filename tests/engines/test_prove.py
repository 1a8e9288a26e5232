"""Proofs and counterexamples: verdicts that must hold, traces that must replay.

These run the real engines (z3); the lemma search is shared by the tests of one policy
and CPU model, so the module costs one search per pair it touches.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsgs_smt.cli import app
from fsgs_smt.engines.portfolio import can_race
from fsgs_smt.engines.verdict import Status
from fsgs_smt.pipeline import LEMMAS_DEPTH, RACE_LEMMAS_DEPTH, Options, check
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import MovSeg, PtraceField, PtracePoke, Trace, WrBase
from fsgs_smt.sim import simulate
from fsgs_smt.traces.fsgs_json import parse_trace

RUNNER = CliRunner()
INVS = {i.id: i for i in select_invariants(None, [])}


def _check(policy: str, inv: str, cpu: str, **kw: object) -> object:
    options = Options(**{"depth": 4, "timeout": 600.0, **kw})  # type: ignore[arg-type]
    return check(load_checked(policy), INVS[inv], CPU_MODELS[cpu], options)


def test_q1a_is_violated_by_linux_4_13_on_intel_with_a_replayable_trace() -> None:
    """Q1a fails under P2 on Intel (stale cached base restored); the trace replays."""
    verdict = _check("linux-4.13", "Q1a", "intel", engine="bmc")

    assert Status.VIOLATED == verdict.status
    assert 3 == len(verdict.trace)
    run = simulate(load_checked("linux-4.13"), Trace(events=verdict.trace), CPU_MODELS["intel"])
    assert "not-run" not in run.results


def test_ptrace_roundtrip_is_violated_by_linux_5_9() -> None:
    """A base set by WRFSBASE/WRGSBASE at or above TASK_SIZE_MAX makes SETREGS fail (-EIO)."""
    verdict = _check("linux-5.9", "ptrace-roundtrip-accepted", "amd-zen3", engine="bmc")

    assert Status.VIOLATED == verdict.status
    run = simulate(load_checked("linux-5.9"), Trace(events=verdict.trace), CPU_MODELS["amd-zen3"])
    assert "-EIO" == run.results[-1]


def test_bmc_alone_never_proves() -> None:
    """Without induction a clean search is BOUNDED(k), never PROVED."""
    verdict = _check("linux-5.9", "kernel-never-loads-noncanonical", "intel", engine="bmc", depth=2)

    assert (Status.BOUNDED, 2) == (verdict.status, verdict.depth)


def test_q1a_is_proved_for_linux_5_9_on_intel() -> None:
    """The merged FSGSBASE semantics restore selectors and bases exactly: an unbounded proof."""
    verdict = _check("linux-5.9", "Q1a", "intel")

    assert Status.PROVED == verdict.status, verdict.reason
    assert "inductive invariant" in verdict.certificate


def test_contradictory_premises_are_vacuous_not_proved(tmp_path: Path) -> None:
    """An invariant whose assume no reachable world meets is VACUOUS (exit 4), never PROVED."""
    spec = tmp_path / "vacuous.yaml"
    spec.write_text(
        "fsgs-invariants: 1\ninvariants:\n  - id: contradictory\n    statement: s\n"
        "    source: test\n    events:\n      - {op: yield}\n"
        '    assume: "before.gs == 7 && before.gs == 8"\n    expect: "after.gs == 0"\n'
    )
    (inv,) = select_invariants(spec, [])
    verdict = check(load_checked("linux-5.9"), inv, CPU_MODELS["intel"], Options(depth=2))
    result = RUNNER.invoke(app, ["prove", "linux-5.9", "--invariants", str(spec), "--cpu", "intel"])

    assert Status.VACUOUS == verdict.status
    assert 4 == result.exit_code


def test_the_premises_are_asked_only_of_an_invariant_the_lemmas_imply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The vacuity query comes after the lemma implication: a broken transition invariant
    (ptrace-roundtrip-accepted on linux-5.9) never asks it, since the world that breaks
    the implication meets the premises; a proved one (Q1b) still does, before PROVED."""
    from fsgs_smt import pipeline  # noqa: PLC0415

    asked: list[str] = []
    real = pipeline._vacuous

    def spy(system, prop, *rest):  # type: ignore[no-untyped-def]
        asked.append(prop.inv.id)
        return real(system, prop, *rest)

    monkeypatch.setattr(pipeline, "_vacuous", spy)
    broken = _check("linux-5.9", "ptrace-roundtrip-accepted", "intel")
    assert Status.VIOLATED == broken.status
    assert [] == asked
    proved = _check("linux-5.9", "Q1b", "intel")
    assert Status.PROVED == proved.status
    assert ["Q1b"] == asked


def test_kernel_never_loads_noncanonical_is_proved_for_linux_5_9() -> None:
    """No path of the 5.9 policy writes a non-canonical base."""
    verdict = _check("linux-5.9", "kernel-never-loads-noncanonical", "intel")

    assert Status.PROVED == verdict.status, verdict.reason


def test_no_cross_task_leak_is_violated_by_linux_4_6_on_amd_legacy() -> None:
    """P0 on a CPU whose null load keeps the base leaks the other task's base (§6.2 item 2)."""
    verdict = _check("linux-4.6", "no-cross-task-leak", "amd-legacy", engine="bmc")

    assert Status.VIOLATED == verdict.status
    observed = verdict.details["observed"]
    assert isinstance(observed, list)
    assert observed[0] != observed[1]


def test_linux_4_7_on_old_amd_leaks_through_a_null_selector_1_to_3() -> None:
    """4.7 reloads any nonzero selector at switch-in ("loading a nonzero value into FS
    sets the index and base"), but on a CPU whose null load keeps the base, selectors
    1..3 are null: the task gets the other task's base. Found at depth 2."""
    verdict = _check("linux-4.7", "no-cross-task-leak", "amd-legacy", engine="bmc")

    assert (Status.VIOLATED, 2) == (verdict.status, verdict.depth)
    (first, *_) = verdict.trace
    # The selector gets there by a MOV or by a tracer's POKEUSER: both are shortest.
    match first:
        case (
            MovSeg(selector=selector)
            | PtracePoke(field=PtraceField.FS | PtraceField.GS, value=selector)
        ):
            assert 1 <= selector <= 3
        case _:
            pytest.fail(f"the first event does not load a selector 1..3: {first}")


def test_a_noninterference_counterexample_shows_both_runs() -> None:
    """The table has both traces and the observation that differs; C is refused (exit 5)."""
    args = ["counterexample", "linux-4.6", "no-cross-task-leak", "--cpu", "amd-legacy"]
    table = RUNNER.invoke(app, args)
    c_source = RUNNER.invoke(app, [*args, "--format", "c"])

    assert 1 == table.exit_code, table.output
    assert "the second run" in table.output
    assert "the task observes" in table.output and "in the second" in table.output
    assert 5 == c_source.exit_code


def test_no_cross_task_leak_is_not_violated_by_linux_5_9_within_its_bound() -> None:
    """PC restores the saved state whatever the other task did: the product BMC finds no
    difference within the bound (the unbounded proof is recorded in proofs/ and re-checked
    by `fsgs-smt check`)."""
    verdict = _check("linux-5.9", "no-cross-task-leak", "amd-legacy", engine="bmc")

    assert Status.BOUNDED == verdict.status


def test_counterexample_cli_outputs_a_trace_that_simulate_replays(tmp_path: Path) -> None:
    """`counterexample --format json` prints a trace that `simulate` runs to the same results."""
    result = RUNNER.invoke(
        app, ["counterexample", "linux-5.9", "ptrace-roundtrip-accepted", "--cpu", "intel",
              "--depth", "3", "--format", "json"],
    )  # fmt: skip
    assert 1 == result.exit_code, result.output
    doc = json.loads(result.stdout)
    trace_file = tmp_path / "cex.json"
    trace_file.write_text(result.stdout)
    replay = RUNNER.invoke(app, ["simulate", "linux-5.9", str(trace_file), "--format", "json"])
    assert 0 == replay.exit_code, replay.output
    assert doc["results"] == json.loads(replay.stdout)["results"]
    assert parse_trace(result.stdout, "cex.json").trace.events


def test_counterexample_itf_uses_bigints() -> None:
    """ITF output writes every 64-bit value as {"#bigint": "..."}."""
    result = RUNNER.invoke(
        app, ["counterexample", "linux-5.9", "ptrace-roundtrip-accepted", "--cpu", "intel",
              "--depth", "3", "--format", "itf"],
    )  # fmt: skip
    doc = json.loads(result.stdout)

    assert 1 == result.exit_code
    assert {"#bigint"} == set(doc["states"][-1]["gs_base"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["prove", "linux-5.9", "--invariant", "nope"], "unknown invariant 'nope'"),
        (["prove", "linux-5.9", "--depth", "0"], "--depth 0: expected a positive number"),
        (
            ["prove", "linux-5.9", "--timeout", "-1"],
            "--timeout -1.0: expected a number in (0, 1000000]",
        ),
        (
            ["prove", "linux-5.9", "--timeout", "nan"],
            "--timeout nan: expected a number in (0, 1000000]",
        ),
        (
            ["prove", "linux-5.9", "--timeout", "inf"],
            "--timeout inf: expected a number in (0, 1000000]",
        ),
        (
            ["counterexample", "linux-5.9", "Q1a", "--timeout", "inf"],
            "--timeout inf: expected a number in (0, 1000000]",
        ),
        (["prove", "linux-5.9", "--output", "."], "--output .: is a directory"),
        (
            ["prove", "linux-5.9", "--output", "/nonexistent-fsgs/r.json"],
            "there is no directory /nonexistent-fsgs: expected a file in an existing directory",
        ),
        (
            ["counterexample", "linux-5.9", "Q1a", "--output", "/nonexistent-fsgs/t"],
            "there is no directory /nonexistent-fsgs",
        ),
        (["prove", "linux-5.9", "--engine", "magic"], "Invalid value for '--engine'"),
        (["prove", "linux-5.9", "--cpu", "arm"], "unknown CPU model"),
        (["counterexample", "linux-5.9", "Q9"], "unknown invariant 'Q9'"),
        (["prove", "linux-5.9", "--cpus", "0"], "--cpus 0: expected 1..64"),
        (["prove", "linux-5.9", "--ldt-slots", "8193"], "--ldt-slots 8193: expected 1..8192"),
        (["counterexample", "linux-5.9", "Q1a", "--cpus", "65"], "--cpus 65: expected 1..64"),
        (
            ["counterexample", "linux-5.9", "Q1a", "--ldt-slots", "0"],
            "--ldt-slots 0: expected 1..8192",
        ),
    ],
)
def test_prove_bad_input_is_one_line_and_exit_2(args: list[str], needle: str) -> None:
    """Bad options to prove/counterexample: one located line on stderr, exit code 2."""
    result = RUNNER.invoke(app, args)

    assert 2 == result.exit_code
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines), result.stderr
    assert needle in lines[0]
    assert lines[0].startswith("<command line>:1:1: error: ")


def test_the_text_report_shows_names_and_reasons_as_they_are() -> None:
    """A policy name, an invariant id or a reason with rich markup in it ('[/x]' was a
    MarkupError, '[bold]' vanished) is printed as written."""
    from dataclasses import replace  # noqa: PLC0415

    from fsgs_smt.engines.verdict import Verdict  # noqa: PLC0415
    from fsgs_smt.proving import Result  # noqa: PLC0415
    from fsgs_smt.reports import render_text  # noqa: PLC0415

    policy = replace(load_checked("linux-5.9"), name="pol[/x]")
    (inv,) = select_invariants(None, ["Q1a"])
    verdict = Verdict(status=Status.UNKNOWN, depth=0, engine="bmc", reason="why [/y] [bold]z")
    text = render_text(policy, [Result(replace(inv, id="inv[bold]"), "intel", verdict)])

    assert "pol[/x]: 1 invariants" in text
    assert "in worlds of 2 CPUs and LDTs of up to 2 entries" in text
    assert "inv[bold]" in text
    assert "inv[bold] on intel: why [/y] [bold]z" in text


def test_bounded_is_not_a_pass_unless_accepted() -> None:
    """prove exits 3 on BOUNDED results, and 0 with --accept-bounded."""
    base = ["prove", "linux-5.9", "-i", "kernel-never-loads-noncanonical", "--cpu", "intel",
            "--engine", "bmc", "--depth", "1"]  # fmt: skip
    strict = RUNNER.invoke(app, base)
    lenient = RUNNER.invoke(app, [*base, "--accept-bounded"])

    assert (3, 0) == (strict.exit_code, lenient.exit_code), strict.output
    assert "BOUNDED(1)" in strict.stdout


def test_prove_reports_a_violation_with_exit_1_and_junit() -> None:
    """A VIOLATED cell makes prove exit 1; the JUnit report records the failure."""
    result = RUNNER.invoke(
        app, ["prove", "linux-5.9", "-i", "ptrace-roundtrip-accepted", "--cpu", "amd-zen3",
              "--engine", "bmc", "--depth", "2", "--format", "junit"],
    )  # fmt: skip

    assert 1 == result.exit_code
    assert '<failure message="VIOLATED">' in result.stdout


def test_prove_decides_a_model_of_the_same_architecture_once() -> None:
    """amd-zen3 has intel's parameters: prove reports intel's verdict for it, marked."""
    result = RUNNER.invoke(
        app, ["prove", "linux-5.9", "-i", "ptrace-roundtrip-accepted", "--cpu", "all",
              "--engine", "bmc", "--depth", "2", "--format", "json"],
    )  # fmt: skip

    docs = {d["cpu"]: d for d in json.loads(result.stdout)}
    assert 1 == result.exit_code
    assert "same_as" not in docs["intel"] and "same_as" not in docs["amd-legacy"]
    assert docs["amd-zen3"]["same_as"] == "intel"
    assert docs["amd-zen3"]["trace"] == docs["intel"]["trace"]
    assert docs["amd-zen3"]["verdict"] == docs["intel"]["verdict"] == "VIOLATED"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_the_invariants_own_parameters_are_shrunk_with_its_events() -> None:
    """lutomirski-2016's exact-restore failure needs some nonzero base b: the solver's choice
    (a kernel-half value, once) is shrunk to 1, in the parameters and in the WRGSBASE."""
    verdict = _check("lutomirski-2016", "selftest-wrbase", "intel", engine="bmc")

    assert Status.VIOLATED == verdict.status
    assert {"b": 1} == verdict.details["params"]
    (wrbase,) = [e for e in verdict.trace if isinstance(e, WrBase)]
    assert 1 == wrbase.value


def test_a_counterexample_table_goes_to_output_as_plain_text(tmp_path: Path) -> None:
    """--output with the default table format writes the table, without terminal colours
    (it was an internal error: only the string formats could be written)."""
    out = tmp_path / "cex.txt"
    result = RUNNER.invoke(app, ["counterexample", "linux-4.13", "selftest-ptrace-write-gsbase",
                                 "--cpu", "intel", "--output", str(out)])  # fmt: skip
    assert 1 == result.exit_code, result.output
    text = out.read_text()
    assert "selftest-ptrace-write-gsbase VIOLATED by linux-4.13 on intel" in text
    assert "ptrace_poke" in text and "broken:" in text
    assert "\x1b[" not in text


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_an_unwritable_output_is_bad_input() -> None:
    """A file that refuses writes, even to root (the proof is decided first, then the
    write fails): one located line and exit 2, not an internal error."""
    result = RUNNER.invoke(app, ["prove", "linux-5.9", "-i", "selftest-ptrace-write-gsbase",
                                 "--cpu", "intel", "--output", "/proc/version"])  # fmt: skip
    assert 2 == result.exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert 1 == len(lines) and "--output /proc/version: cannot write it" in lines[0], lines


MIGRATE_TO_2 = """\
fsgs-invariants: 1
invariants:
  - id: third-cpu
    statement: "A migration to CPU 2 keeps a null GS selector null."
    source: "a test of the world's size"
    events:
      - {op: migrate, cpu: 2}
    assume: "!before.stopped && before.gs == 0"
    expect: "after.gs == 0"
"""


def test_the_world_size_is_an_option_of_prove(tmp_path: Path) -> None:
    """--cpus and --ldt-slots size the world (issue: "the bounds of the world are options"):
    an invariant that migrates to CPU 2 is refused in the default world of 2 CPUs, at its
    CPU number, and decided in one of 3; the report and the certificate say which world."""
    spec = tmp_path / "inv.yaml"
    spec.write_text(MIGRATE_TO_2, encoding="utf-8")
    args = ["prove", "linux-5.9", "--invariants", str(spec), "--cpu", "intel"]

    small = RUNNER.invoke(app, args)
    assert 2 == small.exit_code
    assert small.stderr.startswith(
        f"{spec}:7:28: error: migrate to CPU 2: expected a CPU number in 0..1"
    )

    text = RUNNER.invoke(app, [*args, "--cpus", "3", "--ldt-slots", "3"])
    assert 0 == text.exit_code, text.output
    assert "in worlds of 3 CPUs and LDTs of up to 3 entries" in text.stdout
    as_json = RUNNER.invoke(app, [*args, "--cpus", "3", "--ldt-slots", "3", "--format", "json"])
    (cell,) = json.loads(as_json.stdout)
    assert "PROVED" == cell["verdict"]
    assert "for worlds of 3 CPUs and LDTs of up to 3 entries" in cell["certificate"]
    assert {"ncpus": 3, "ldt_slots": 3} == cell["world"]


def test_a_counterexample_in_a_one_cpu_world_migrates_to_cpu_0() -> None:
    """counterexample --cpus 1: Q2b's migration target ranges over the world's one CPU."""
    result = RUNNER.invoke(app, ["counterexample", "linux-4.13", "Q2b", "--cpu", "intel",
                                 "--cpus", "1", "--format", "json"])  # fmt: skip
    assert 1 == result.exit_code, result.output
    events = json.loads(result.stdout)["events"]
    assert [e["cpu"] for e in events if e["op"] == "migrate"] == ["0x0"]


def test_the_broken_expectation_is_evaluated_with_the_settings_it_was_found_with() -> None:
    """With --set fsgsbase=false, the values under 'broken:' were computed with the policy's
    default settings, where this trace breaks nothing: r1.gs_base showed 0, not the 1 that
    the table above it shows."""
    result = RUNNER.invoke(app, ["counterexample", "linux-5.9", "Q2a", "--cpu", "intel",
                                 "--set", "fsgsbase=false"])  # fmt: skip
    assert 1 == result.exit_code, result.output
    broken = " ".join(result.stdout.split("expect is false with", 1)[1].split())
    # the observation of the table's last row is what 'broken:' must show as r1.*
    observed = re.search(r"observe\s*│[^│]*│\s*(fs=\S+ fs_base=\S+ gs=\S+ gs_base=\S+)",
                         result.stdout)  # fmt: skip
    assert observed is not None, result.stdout
    for pair in observed.group(1).split():
        field, value = pair.split("=")
        assert f"r1.{field} = {value}" in broken
    # and the values differ from before the round trip, or nothing would be broken
    assert any(f"r1.{f} = {v}" in broken and f"before.{f} = {v}" not in broken
               for f, v in (p.split("=") for p in observed.group(1).split()))  # fmt: skip


def test_a_counterexample_search_that_finds_none_says_what_was_searched() -> None:
    """No trace within --depth: BOUNDED with what was searched and what decides it, exit 3
    (it said only 'BOUNDED(2)')."""
    result = RUNNER.invoke(app, ["counterexample", "linux-5.9", "Q1a", "--cpu", "intel",
                                 "--depth", "2"])  # fmt: skip
    assert 3 == result.exit_code
    assert result.stderr == (
        "Q1a on linux-5.9/intel: BOUNDED(2): no trace of up to 2 events breaks it (--depth); "
        "fsgs-smt prove decides it for every length\n"
    )  # fmt: skip


def test_a_deep_counterexample_search_that_finds_none_names_the_lemmas_it_relied_on() -> None:
    """From depth 4 the race asserts the system's inductive lemmas (from depth 1 without
    a race, on one CPU); BOUNDED says so too."""
    result = RUNNER.invoke(app, ["counterexample", "linux-5.9", "kernel-never-loads-noncanonical",
                                 "--cpu", "intel", "--depth", "4"])  # fmt: skip
    at = RACE_LEMMAS_DEPTH if can_race() else LEMMAS_DEPTH
    assert 3 == result.exit_code
    assert result.stderr == (
        "kernel-never-loads-noncanonical on linux-5.9/intel: BOUNDED(4): no trace of up to 4 "
        f"events breaks it (--depth; the system's inductive lemmas asserted from depth {at}); "
        "fsgs-smt prove decides it for every length\n"
    )  # fmt: skip
