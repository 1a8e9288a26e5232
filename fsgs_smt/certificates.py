# SPDX-License-Identifier: MIT
"""Proof certificates as files: every query of a PROVED cell, for another solver to check.

Layer: pipeline. Imports `pipeline`, `proving`, `engines.backend`; prints nothing.

``fsgs-smt prove --certificates DIR`` decides each PROVED cell again (`pipeline.certify`)
and writes, under ``DIR/<policy>/<invariant>/<cpu>/``:

* ``query-NNN.smt2``: each query the proof asked, in the order asked, as a standalone
  SMT-LIB 2 QF_BV benchmark whose ``(set-info :status ...)`` is the answer fsgs-smt got
  (``unsat`` for the base, step and implication checks of the inductive invariant;
  ``sat`` for the checks that the premises can hold, which keep a proof from being vacuous);
* ``certificate.json``: the policy and its SHA-256, the invariant and its SHA-256, the
  CPU model, the engine, the certificate's text (its lemmas), and each query's file and
  expected answer.

Any SMT-LIB solver can then confirm the proof without fsgs-smt: ``for f in DIR/**/*.smt2;
do bitwuzla $f; done`` must print each file's status (``fsgs-smt check-certificates``
does it with bitwuzla's or z3's own parser). The files are the formulas as built (z3
terms, printed by z3 with shared subterms as ``let``), not the bitwuzla translation the
default solver checked, so a second solver also checks that translation.

What the files do not show stays fsgs-smt's part of the trust: that the formulas encode
the policy and the invariant (the encoding is pinned to the simulator by property tests),
and, for noninterference, that the product's two copies start equal (both start from the
one initial world, so every "same" candidate holds there by construction).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsgs_smt.engines.backend import Answer
from fsgs_smt.engines.verdict import Status
from fsgs_smt.errors import InputError
from fsgs_smt.pipeline import Options, certify
from fsgs_smt.policy import ast
from fsgs_smt.proving import Result
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.source import Span

MANIFEST = "certificate.json"


@dataclass(frozen=True, slots=True)
class Written:
    """One cell's certificate: its directory, and whether the proof was found again."""

    directory: Path
    queries: int
    reproduced: bool
    reason: str = ""


def _part(name: str) -> str:
    """*name* as one path component (policy names and invariant ids are free text)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".")
    return safe or "_"


def write_certificates(
    policy: ast.Policy, results: list[Result], options: Options, root: Path
) -> list[Written]:
    """Write the certificate of every PROVED cell of *results* under *root* (the cells of a
    CPU model decided as another of the same architecture are that model's: skipped).

    Raises:
        OSError: a directory or file could not be written.
    """
    out = []
    for r in results:
        if r.verdict.status is not Status.PROVED or "same_as" in r.verdict.details:
            continue
        where = root / _part(policy.name) / _part(r.invariant.id) / _part(r.cpu)
        where.mkdir(parents=True, exist_ok=True)
        for stale in where.glob("query-*.smt2"):  # from an earlier run into the same place
            stale.unlink()
        queries: list[dict[str, str]] = []

        def sink(text: str, answer: Answer, where: Path = where,
                 queries: list[dict[str, str]] = queries) -> None:  # fmt: skip
            name = f"query-{len(queries) + 1:03d}.smt2"
            (where / name).write_text(text, encoding="utf-8")
            queries.append({"file": name, "status": answer.result})

        again = certify(policy, r.invariant, CPU_MODELS[r.cpu], options, r.verdict, sink)
        reproduced = again.status is Status.PROVED
        doc = {
            "format": "fsgs-certificate/1",
            "policy": policy.name, "policy_sha256": policy.text_hash,
            "invariant": r.invariant.id, "invariant_sha256": r.invariant.text_hash,
            "cpu": r.cpu, "engine": again.engine, "verdict": again.label,
            "certificate": again.certificate, "reason": again.reason,
            "world": {"ncpus": options.ncpus, "ldt_slots": options.ldt_slots},
            "queries": queries,
        }  # fmt: skip
        text = json.dumps(doc, indent=2) + "\n"
        (where / MANIFEST).write_text(text, encoding="utf-8")
        out.append(Written(where, len(queries), reproduced, again.reason))
    return out


@dataclass(frozen=True, slots=True)
class Rechecked:
    """One query of a certificate, answered again from its text."""

    file: Path
    expected: str
    got: str  # "sat", "unsat", "unknown", or "error: ..." (unreadable, a parse error)


def recheck_certificates(
    root: Path, solver: str, timeout_s: float
) -> tuple[list[Rechecked], list[Path]]:  # fmt: skip
    """Answer every query of every certificate under *root* again, from the SMT-LIB text
    alone, with *solver*'s own parser (``z3`` or ``bitwuzla``), *timeout_s* per query.

    Returns the answers and the manifests read. A manifest whose proof was not found again
    when it was written (its ``verdict`` is not PROVED), or that lists no query, certifies
    nothing: it is one answer that differs (``got`` says why).

    Raises:
        InputError: a manifest that is not a certificate, at the place in it.
    """
    out = []
    manifests = sorted(root.rglob(MANIFEST))
    for manifest in manifests:
        doc = _manifest(manifest)
        queries = [(str(q["file"]), str(q["status"])) for q in doc["queries"]]
        if doc.get("verdict") != "PROVED" or not queries:
            why = f"verdict {doc.get('verdict')!r}" if queries else "no queries"
            out.append(Rechecked(manifest, "PROVED", f"certifies nothing ({why})"))
        for name, expected in queries:
            path = manifest.parent / name
            out.append(Rechecked(path, expected, _answer_text(path, solver, timeout_s)))
    return out, manifests


def _manifest(path: Path) -> dict[str, Any]:
    """The manifest *path*, checked to be one (a list of queries, each a file and a status)."""
    where = str(path)
    expected = "expected the certificate.json that prove --certificates writes"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(Span(where, exc.lineno, exc.colno),
                         f"not JSON ({exc.msg}): {expected}") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Span(where, 1, 1), f"cannot read it ({exc}): {expected}") from None
    queries = doc.get("queries") if isinstance(doc, dict) else None
    if not isinstance(queries, list) or not all(
        isinstance(q, dict) and isinstance(q.get("file"), str)
        and q.get("status") in ("sat", "unsat", "unknown")
        for q in queries
    ):  # fmt: skip
        what = "no list of queries, each a file and a status sat, unsat or unknown"
        raise InputError(Span(where, 1, 1), f"not an fsgs-smt certificate ({what}): {expected}")
    assert isinstance(doc, dict)  # noqa: S101 - queries is a list only in a mapping
    return doc


def _answer_text(path: Path, solver: str, timeout_s: float) -> str:
    """*solver*'s answer to the SMT-LIB file *path*, parsed by the solver itself."""
    ms = max(1, int(timeout_s * 1000))
    if solver == "z3":
        import z3  # noqa: PLC0415

        try:
            s = z3.Solver()
            s.set("timeout", ms)
            s.from_file(str(path))
            return str(s.check())
        except (z3.Z3Exception, OSError) as exc:
            return f"error: {_first_line(exc)}"
    import bitwuzla  # noqa: PLC0415

    try:
        options = bitwuzla.Options()
        options.set(bitwuzla.Option.TIME_LIMIT_PER, ms)
        parser = bitwuzla.Parser(bitwuzla.TermManager(), options, "smt2", 2)
        parser.parse(str(path), True, True)
        return str(parser.bitwuzla().check_sat())
    except (bitwuzla.BitwuzlaException, OSError) as exc:
        return f"error: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
