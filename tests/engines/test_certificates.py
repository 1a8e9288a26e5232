"""``prove --certificates``: every query of a proof, written as SMT-LIB, checked by another parser.

The files are read back by bitwuzla's own SMT-LIB parser (not fsgs-smt's z3-to-bitwuzla
translation), so these tests check that the written formulas are standard SMT-LIB and
that a solver fed only the text gets every answer the proof relied on.
"""

from __future__ import annotations

import json
from pathlib import Path

import bitwuzla
import pytest
import z3
from typer.testing import CliRunner

from fsgs_smt.cli import app
from fsgs_smt.engines.backend import Answer, Solver, benchmark, recording

RUNNER = CliRunner()


def solve_text(path: Path) -> str:
    """What bitwuzla answers for the SMT-LIB file *path*, parsed from its text."""
    parser = bitwuzla.Parser(bitwuzla.TermManager(), bitwuzla.Options(), "smt2", 2)
    parser.parse(str(path), True, True)
    return str(parser.bitwuzla().check_sat())


@pytest.fixture(scope="module")
def certified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """One run of prove with certificates: a proof by lemmas, a noninterference proof and
    a violation, on intel."""
    root = tmp_path_factory.mktemp("certs")
    result = RUNNER.invoke(app, ["prove", "linux-5.9", "-i", "Q1a", "-i", "no-cross-task-leak",
                                 "-i", "ptrace-roundtrip-accepted", "--cpu", "intel",
                                 "--certificates", str(root)])  # fmt: skip
    return root, result


@pytest.mark.parametrize(
    ("invariant", "engine"), [("Q1a", "houdini"), ("no-cross-task-leak", "ni-houdini")]
)
def test_each_proof_query_gets_its_answer_from_the_text_alone(
    certified: tuple[Path, object], invariant: str, engine: str
) -> None:
    root, _ = certified
    where = root / "linux-5.9" / invariant / "intel"
    doc = json.loads((where / "certificate.json").read_text(encoding="utf-8"))
    assert (doc["format"], doc["invariant"], doc["cpu"], doc["engine"], doc["verdict"]) == (
        "fsgs-certificate/1", invariant, "intel", engine, "PROVED",
    )  # fmt: skip
    assert doc["world"] == {"ncpus": 2, "ldt_slots": 2}
    assert "inductive invariant" in doc["certificate"]
    statuses = [q["status"] for q in doc["queries"]]
    assert statuses.count("unsat") >= 10  # a step per group of events, and the implication
    assert set(statuses) <= {"sat", "unsat"}
    assert sorted(p.name for p in where.glob("*.smt2")) == [q["file"] for q in doc["queries"]]
    # the lemmas in the initial world (Houdini evaluates that without a solver) are a
    # query of their own: the last, over constants only
    last = (where / doc["queries"][-1]["file"]).read_text(encoding="utf-8")
    assert "declare-fun" not in last and doc["queries"][-1]["status"] == "unsat"
    for q in doc["queries"]:
        text = (where / q["file"]).read_text(encoding="utf-8")
        assert f"(set-info :status {q['status']})" in text
        assert q["status"] == solve_text(where / q["file"]), q["file"]


def test_a_violated_cell_has_no_certificate_and_the_exit_code_is_proves(
    certified: tuple[Path, object],
) -> None:
    root, result = certified
    assert 1 == result.exit_code  # type: ignore[attr-defined]
    assert not (root / "linux-5.9" / "ptrace-roundtrip-accepted").exists()
    assert "certificates: 2 proofs," in result.stderr  # type: ignore[attr-defined]


def test_recording_hands_over_every_assertion_and_assumption() -> None:
    """A query's benchmark holds what was asserted and what was assumed; answers match."""
    x = z3.BitVec("rec_x", 8)  # a name of its own: the process shares bitwuzla's terms
    seen: list[tuple[str, Answer]] = []
    with recording(lambda text, answer: seen.append((text, answer))):
        s = Solver("auto")
        s.add(x + 1 == x)
        s.check()
        t = Solver("auto")
        t.add(z3.ULT(x, 5))
        t.check(x == 3)
    Solver("auto").check(x == 1)  # outside: not recorded
    assert [a.result for _, a in seen] == ["unsat", "sat"]
    assert "(set-info :status sat)" in seen[1][0] and "(bvult rec_x (_ bv5 8))" in seen[1][0]
    assert "(= rec_x (_ bv3 8))" in seen[1][0] and "(bvadd" not in seen[1][0]


def test_a_benchmark_has_no_and_or_or_of_fewer_than_two_arguments(tmp_path: Path) -> None:
    """z3 prints ``(or p)``; SMT-LIB and bitwuzla's parser refuse it ("got 1")."""
    p, q = z3.Bools("p q")
    x = z3.BitVec("x", 8)
    terms = [z3.Or([p]), z3.And([z3.Or([z3.And([q])]), x == 1]), z3.Or([]) == z3.And([])]
    text = benchmark(terms, "unsat")
    assert "(or p)" not in text and "(and q)" not in text
    path = tmp_path / "q.smt2"
    path.write_text(text, encoding="utf-8")
    assert "unsat" == solve_text(path)  # false == true


def test_certificates_into_a_file_is_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("", encoding="utf-8")
    result = RUNNER.invoke(app, ["prove", "linux-5.9", "-i", "Q1a", "--cpu", "intel",
                                 "--certificates", str(target)])  # fmt: skip
    assert 2 == result.exit_code
    assert f"--certificates {target}: is not a directory: expected a directory" in result.stderr


def test_check_certificates_confirms_them_with_either_solver(
    certified: tuple[Path, object],
) -> None:
    root, _ = certified
    q1a = root / "linux-5.9" / "Q1a"  # (every query of both is re-answered above already)
    result = RUNNER.invoke(app, ["check-certificates", str(q1a)])
    assert 0 == result.exit_code, result.output
    assert "of 1 certificates with bitwuzla: every answer agrees" in result.stdout
    by_z3 = RUNNER.invoke(app, ["check-certificates", str(q1a), "--solver", "z3"])
    assert 0 == by_z3.exit_code, by_z3.output
    assert "of 1 certificates with z3: every answer agrees" in by_z3.stdout


def test_check_certificates_finds_a_query_that_lost_its_goal(
    certified: tuple[Path, object], tmp_path: Path
) -> None:
    """The first query (a step of the inductive invariant) without its last assertion (the
    negated goal) is satisfiable: the recorded unsat no longer holds, exit 1."""
    import shutil  # noqa: PLC0415

    root, _ = certified
    copy = tmp_path / "q1a"
    shutil.copytree(root / "linux-5.9" / "Q1a" / "intel", copy)
    first = copy / "query-001.smt2"
    text = first.read_text(encoding="utf-8")
    assert "(set-info :status unsat)" in text
    first.write_text(text.rsplit("(assert", 1)[0] + "(check-sat)\n", encoding="utf-8")
    result = RUNNER.invoke(app, ["check-certificates", str(tmp_path)])
    assert 1 == result.exit_code, result.output
    assert f"DIFFERS {first}: recorded unsat, bitwuzla says sat" in result.stdout


@pytest.mark.parametrize(("manifest", "place", "message"), [
    (None, "<command line>:1:1",
     "no certificate.json below it: expected a directory that prove --certificates"),
    ('{\n  "queries": ]', "2:14", "not JSON (Expecting value): expected the certificate.json"),
    ('{"queries": [{"file": "a.smt2"}]}', "1:1", "not an fsgs-smt certificate (no list of"),
])  # fmt: skip
def test_check_certificates_of_what_is_no_certificate_is_bad_input(
    tmp_path: Path, manifest: str | None, place: str, message: str
) -> None:
    """One located line, exit 2: at the JSON error in the manifest, or at the manifest."""
    path = tmp_path / "certificate.json"
    if manifest is not None:
        path.write_text(manifest, encoding="utf-8")
        place = f"{path}:{place}"
    result = RUNNER.invoke(app, ["check-certificates", str(tmp_path)])
    assert 2 == result.exit_code
    assert result.stderr.startswith(f"{place}: error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


@pytest.mark.parametrize("doc", [
    {"verdict": "UNKNOWN", "queries": [{"file": "query-001.smt2", "status": "unsat"}]},
    {"verdict": "PROVED", "queries": []},
])  # fmt: skip
def test_a_manifest_that_certifies_nothing_is_a_difference(tmp_path: Path, doc: dict) -> None:  # type: ignore[type-arg]
    """A proof not found again when written, or no query at all: never 'every answer agrees'."""
    (tmp_path / "query-001.smt2").write_text(
        "(set-logic QF_BV)\n(assert false)\n(check-sat)\n", encoding="utf-8"
    )
    (tmp_path / "certificate.json").write_text(json.dumps(doc), encoding="utf-8")
    result = RUNNER.invoke(app, ["check-certificates", str(tmp_path)])
    assert 1 == result.exit_code, result.output
    assert "certifies nothing" in result.stdout and "1 differ" in result.stdout
