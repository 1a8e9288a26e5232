# SPDX-License-Identifier: MIT
"""Recorded proofs: ``proofs/<policy>.json``, regenerated and re-checked (``fsgs-smt check``).

Layer: pipeline. Imports `pipeline`, `proving`, `engines.backend`, `engines.ni`, `traces`;
prints nothing.

One file per shipped policy, in canonical JSON (sorted keys, two-space indentation, no
timings; each policy x CPU model decided in a fresh process, so that a regeneration by
the same code is byte-identical). Each record is
one invariant on one CPU model: the verdict, its depth and engine, the solver and its
version, the SHA-256 of the policy (with its includes) and of the invariant's own text,
and the evidence:

* PROVED by Houdini: the names of the lemmas of the inductive invariant;
* VIOLATED: the counterexample as an fsgs-trace/1 document (``fsgs-smt simulate`` replays
  it) and the values of the invariant's parameters.

``check`` decides every cell again and compares the verdict and depth, and for a PROVED
cell the names of the lemmas:

* a PROVED cell is proved again from scratch in fresh solvers, starting Houdini from the
  recorded lemmas (a recorded name only narrows the search; if the recorded set is no
  longer inductive, the search starts over from every candidate);
* a VIOLATED cell is confirmed by replaying its trace on the concrete simulator (with
  ``full``, BMC searches for it again, which also re-establishes that no shorter one
  exists);
* every other cell is re-run as recorded;
* a cell whose policy or invariant changed since it was recorded is re-run from scratch
  and reported as a difference, so that a regeneration is needed to accept it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsgs_smt.engines import backend
from fsgs_smt.engines.ni import pair_problem
from fsgs_smt.engines.verdict import Status, Verdict
from fsgs_smt.errors import InputError, describe
from fsgs_smt.pipeline import MAX_TIMEOUT, Options, check, observe, replay
from fsgs_smt.policy import ast
from fsgs_smt.policy.catalog import load_checked, shipped_policies
from fsgs_smt.policy.invariants import Invariant
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES, CPU_MODELS, same_architecture
from fsgs_smt.semantics.events import Migrate, Trace
from fsgs_smt.source import Span
from fsgs_smt.traces.fsgs_json import read_trace, trace_to_json
from fsgs_smt.traces.jsonpos import (
    JArray,
    JNode,
    JNumber,
    JObject,
    JString,
    decode_utf8,
    jtype_name,
    parse_json,
)

FORMAT = "fsgs-proofs/1"
BAD_EVIDENCE = "the recorded evidence is wrong"
DEFAULT_DIR = Path("proofs")
_U64 = 2**64 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How the recorded matrix was decided (stored in every proofs file)."""

    depth: int = 4
    timeout: float = 300.0
    ncpus: int = 2
    ldt_slots: int = 2

    def options(self, solver: str, hints: tuple[str, ...] | None = None) -> Options:
        """Pipeline options for these settings."""
        return Options(
            depth=self.depth, timeout=self.timeout, ncpus=self.ncpus, ldt_slots=self.ldt_slots,
            solver=solver, lemma_hints=hints,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One recorded cell."""

    invariant: str
    cpu: str
    verdict: str  # a Status value
    depth: int
    engine: str
    solver: str
    policy_sha256: str
    invariant_sha256: str
    lemmas: tuple[str, ...] = ()
    trace: Trace | None = None
    other_trace: Trace | None = None  # noninterference: the second run of the pair
    params: Mapping[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def label(self) -> str:
        """``PROVED``, ``BOUNDED(1)``, ..."""
        return f"BOUNDED({self.depth})" if self.verdict == "BOUNDED" else self.verdict


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofFile:
    """The recorded matrix of one policy."""

    policy: str
    settings: Settings
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One cell as ``check`` found it."""

    policy: str
    invariant: str
    cpu: str
    recorded: str  # label, or "-" when the cell was not recorded
    now: str  # label, or "-" when the cell no longer exists
    agree: bool
    note: str = ""
    seconds: float = 0.0


# ---------------------------------------------------------------- writing


def record_of(
    policy: ast.Policy, inv: Invariant, cpu: str, verdict: Verdict, solver: str
) -> Record:
    """The record of *verdict* (evidence included)."""
    lemmas = verdict.details.get("lemmas", ())
    params = verdict.details.get("params", {})
    other = verdict.details.get("other_trace", ())
    other = tuple(other) if isinstance(other, tuple | list) else ()
    return Record(
        invariant=inv.id, cpu=cpu, verdict=verdict.status.value, depth=verdict.depth,
        engine=verdict.engine, solver=backend.version(solver),
        policy_sha256=policy.text_hash, invariant_sha256=inv.text_hash,
        lemmas=tuple(lemmas) if isinstance(lemmas, tuple | list) else (),
        trace=Trace(events=verdict.trace, cpu=cpu) if verdict.trace else None,
        other_trace=Trace(events=other, cpu=cpu) if verdict.trace and other else None,
        params=dict(params) if isinstance(params, dict) else {},
        reason=verdict.reason if verdict.status is not Status.PROVED else "",
    )  # fmt: skip


def dumps(pf: ProofFile) -> str:
    """The canonical JSON text of a proofs file."""
    records = []
    for r in sorted(pf.records, key=lambda r: (r.invariant, r.cpu)):
        doc: dict[str, Any] = {
            "invariant": r.invariant, "cpu": r.cpu, "verdict": r.verdict, "depth": r.depth,
            "engine": r.engine, "solver": r.solver, "policy_sha256": r.policy_sha256,
            "invariant_sha256": r.invariant_sha256,
        }  # fmt: skip
        if r.lemmas:
            doc["lemmas"] = list(r.lemmas)
        if r.trace is not None:
            doc["trace"] = trace_to_json(r.trace)
            doc["params"] = {k: hex(v) for k, v in sorted(r.params.items())}
        if r.other_trace is not None:
            doc["other_trace"] = trace_to_json(r.other_trace)
        if r.reason:
            doc["reason"] = r.reason
        records.append(doc)
    s = pf.settings
    top = {
        "format": FORMAT, "policy": pf.policy,
        "settings": {"depth": s.depth, "timeout": s.timeout, "ncpus": s.ncpus,
                     "ldt_slots": s.ldt_slots},
        "records": records,
    }  # fmt: skip
    return json.dumps(top, indent=2, sort_keys=True) + "\n"


def path_for(directory: Path, policy: str) -> Path:
    """Where the proofs of *policy* live."""
    return directory / f"{policy}.json"


# ---------------------------------------------------------------- reading


def _got(node: JNode) -> str:
    """What a proofs file holds, for "got ...": a number as written (``1e999``, not inf)."""
    match node:
        case JNumber(text=text):
            return text
        case JString(value=value):
            return describe(value)
        case _:
            return jtype_name(node)


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def error(self, node: JNode, message: str) -> InputError:
        return InputError(node.span, message)

    def obj(self, node: JNode, what: str, keys: tuple[str, ...]) -> dict[str, JNode]:
        if not isinstance(node, JObject):
            raise self.error(node, f"{what}: expected an object, got {_got(node)}")
        out = {}
        for key, span, value in node.items:
            if key not in keys:
                raise InputError(span, f"unknown key {key!r} in {what}: expected one of "
                                       f"{', '.join(keys)}")  # fmt: skip
            out[key] = value
        return out

    def need(self, items: dict[str, JNode], key: str, node: JNode, what: str) -> JNode:
        if key not in items:
            raise self.error(node, f"missing key {key!r} in {what}: expected the key {key!r}")
        return items[key]

    def string(self, node: JNode, what: str) -> str:
        if not isinstance(node, JString):
            raise self.error(node, f"{what}: expected a string, got {_got(node)}")
        return node.value

    def choice(self, node: JNode, what: str, choices: tuple[str, ...]) -> str:
        value = self.string(node, what)
        if value not in choices:
            raise self.error(node, f"{what}: expected one of {', '.join(choices)}, "
                                   f"got {describe(value)}")  # fmt: skip
        return value

    def integer(self, node: JNode, what: str, low: int, high: int | None = None) -> int:
        """A JSON integer in *low*..*high* (no upper bound if None)."""
        if (
            isinstance(node, JNumber) and isinstance(node.value, int)
            and low <= node.value and (high is None or node.value <= high)
        ):  # fmt: skip
            return node.value
        want = f"an integer in {low}..{high}" if high is not None else f"an integer >= {low}"
        raise self.error(node, f"{what}: expected {want}, got {_got(node)}")

    def seconds(self, node: JNode, what: str) -> float:
        """A time budget: a JSON number in (0, MAX_TIMEOUT] (``1e999`` reads as infinity)."""
        if isinstance(node, JNumber) and 0 < node.value <= MAX_TIMEOUT:
            return float(node.value)
        raise self.error(node, f"{what}: expected a number in (0, {MAX_TIMEOUT:.0f}], "
                               f"got {_got(node)}")  # fmt: skip

    def array(self, node: JNode, what: str) -> tuple[JNode, ...]:
        if not isinstance(node, JArray):
            raise self.error(node, f"{what}: expected an array, got {_got(node)}")
        return node.items

    def trace(self, node: JNode, key: str, settings: Settings) -> Trace:
        """A recorded counterexample: an fsgs-trace/1 object of at least one event, whose
        migrations stay within the recorded world's CPUs."""
        try:
            loaded = read_trace(node)
        except InputError as exc:
            raise InputError(exc.span, f"{key}: {exc.message}") from None
        if not loaded.trace.events:
            raise InputError(loaded.span_at(("events",)), f"{key}: no events: expected a "
                             "counterexample of at least one event")  # fmt: skip
        for i, event in enumerate(loaded.trace.events):
            if isinstance(event, Migrate) and event.cpu >= settings.ncpus:
                raise InputError(loaded.span_at((i, "cpu")), f"{key}: migrate to CPU "
                                 f"{event.cpu}: expected a CPU number in 0..{settings.ncpus - 1} "
                                 f"(settings.ncpus is {settings.ncpus})")  # fmt: skip
        return loaded.trace


_RECORD_KEYS = (
    "invariant", "cpu", "verdict", "depth", "engine", "solver", "policy_sha256",
    "invariant_sha256", "lemmas", "trace", "other_trace", "params", "reason",
)  # fmt: skip
ENGINES = ("bmc", "houdini", "kind", "ni-bmc", "ni-houdini", "pdr")
"""The engine names a verdict can carry (`pipeline`)."""
# the sizes of the world `semantics.state.Bounds` accepts
NCPUS_MAX = 64
LDT_SLOTS_MAX = 8192


def load(path: Path, policy: str | None = None) -> ProofFile:
    """Read a proofs file (of *policy*, when given: the file must say so).

    Raises:
        InputError: unreadable, not UTF-8, not JSON, or not an fsgs-proofs/1 document
            (located).
    """
    filename = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Span(filename, 1, 1), f"cannot read proofs file: "
                         f"{exc.strerror or exc}: expected a readable file") from None  # fmt: skip
    r = _Reader(filename)
    root = parse_json(decode_utf8(data, filename, "proofs file"), filename)
    top = r.obj(root, "proofs file", ("format", "policy", "settings", "records"))
    fmt = r.string(r.need(top, "format", root, "proofs file"), "format")
    if fmt != FORMAT:
        raise r.error(top["format"], f"format: expected {FORMAT!r}, got {fmt!r}")
    named = r.string(r.need(top, "policy", root, "proofs file"), "policy")
    if policy is not None and named != policy:
        raise r.error(top["policy"], f"policy: expected {policy!r} (the proofs of {policy}), "
                                     f"got {named!r}")  # fmt: skip
    snode = r.need(top, "settings", root, "proofs file")
    sitems = r.obj(snode, "settings", ("depth", "timeout", "ncpus", "ldt_slots"))

    def setting(key: str) -> JNode:
        return r.need(sitems, key, snode, "settings")

    settings = Settings(
        depth=r.integer(setting("depth"), "depth", 1),
        timeout=r.seconds(setting("timeout"), "timeout"),
        ncpus=r.integer(setting("ncpus"), "ncpus", 1, NCPUS_MAX),
        ldt_slots=r.integer(setting("ldt_slots"), "ldt_slots", 1, LDT_SLOTS_MAX),
    )  # fmt: skip
    records = []
    seen: dict[tuple[str, str], Span] = {}
    for node in r.array(r.need(top, "records", root, "proofs file"), "records"):
        items = r.obj(node, "record", _RECORD_KEYS)

        def s(key: str, items: dict[str, JNode] = items, node: JNode = node) -> str:
            return r.string(r.need(items, key, node, "record"), key)

        verdict = r.choice(r.need(items, "verdict", node, "record"), "verdict",
                           tuple(st.value for st in Status))  # fmt: skip
        cpu = r.choice(r.need(items, "cpu", node, "record"), "cpu", CPU_MODEL_NAMES)
        invariant = s("invariant")
        if (invariant, cpu) in seen:
            first = seen[invariant, cpu]
            raise r.error(node, f"a second record of {invariant} on {cpu} (the first at "
                                f"{first.line}:{first.col}): expected one record per "
                                "invariant and CPU model")  # fmt: skip
        seen[invariant, cpu] = node.span
        traces = {
            key: r.trace(items[key], key, settings)
            for key in ("trace", "other_trace") if key in items
        }  # fmt: skip
        params: dict[str, int] = {}
        if "params" in items:
            pnode = items["params"]
            if not isinstance(pnode, JObject):
                raise r.error(pnode, f"params: expected an object, got {_got(pnode)}")
            for key, _, value in pnode.items:
                text_value = r.string(value, f"params.{key}")
                try:
                    number = int(text_value, 0)
                except ValueError:
                    number = -1
                if not 0 <= number <= _U64:
                    raise r.error(value, f"params.{key}: expected a number in 0x0..{_U64:#x}, "
                                         f"got {describe(text_value)}")  # fmt: skip
                params[key] = number
        lemma_nodes = r.array(items["lemmas"], "lemmas") if "lemmas" in items else ()
        lemmas = tuple(r.string(n, "lemma") for n in lemma_nodes)
        records.append(Record(
            invariant=invariant, cpu=cpu, verdict=verdict,
            depth=r.integer(r.need(items, "depth", node, "record"), "depth", 0),
            engine=r.choice(r.need(items, "engine", node, "record"), "engine", ENGINES),
            solver=s("solver"), policy_sha256=s("policy_sha256"),
            invariant_sha256=s("invariant_sha256"), lemmas=lemmas, trace=traces.get("trace"),
            other_trace=traces.get("other_trace"), params=params,
            reason=s("reason") if "reason" in items else "",
        ))  # fmt: skip
    return ProofFile(policy=named, settings=settings, records=tuple(records))


# ---------------------------------------------------------------- deciding


@dataclass(frozen=True, slots=True)
class _Group:
    """The cells of one policy on the CPU models of one architecture (one process: they
    share the lemmas). Each cell is decided on ``cpus[0]``; the other models have the same
    architectural parameters (`CpuModel.architecture`), so the same transition system."""

    policy_ref: str
    cpus: tuple[str, ...]
    invariants: tuple[Invariant, ...]
    settings: Settings
    solver: str
    recorded: tuple[tuple[Record | None, ...], ...] | None  # per CPU model; None: regenerate
    full: bool

    @property
    def cpu(self) -> str:
        """The model the cells are decided on."""
        return self.cpus[0]


def _run_group(group: _Group) -> list[tuple[Record, Outcome]]:
    policy = load_checked(group.policy_ref)
    out = []
    nothing = (None,) * len(group.invariants)
    recorded = group.recorded or (nothing,) * len(group.cpus)
    hints = tuple(sorted({n for r in recorded[0] if r is not None for n in r.lemmas})) or None
    for n, inv in enumerate(group.invariants):
        start = time.monotonic()
        verdict, note = _decide(policy, inv, group, recorded[0][n], hints)
        seconds = time.monotonic() - start
        for cpu, recs in zip(group.cpus, recorded, strict=True):
            rec = recs[n]
            now = record_of(policy, inv, cpu, verdict, group.solver)
            agree = rec is not None and (rec.verdict, rec.depth) == (now.verdict, now.depth)
            agree = agree and not note.startswith(BAD_EVIDENCE)
            said = note if cpu == group.cpu else f"as {group.cpu}, the same architecture"
            if agree and rec is not None and set(rec.lemmas) != set(now.lemmas):
                agree = False  # the certificate is part of the record, as the verdict is
                said = _lemma_difference(rec.lemmas, now.lemmas) + "; " + said
            if rec is not None and (rec.policy_sha256, rec.invariant_sha256) != (
                now.policy_sha256, now.invariant_sha256,
            ):  # fmt: skip
                agree = False
                said = "the policy or the invariant changed since it was recorded; " + said
            if group.recorded is not None and rec is None:
                said = "not recorded"
            out.append((now, Outcome(
                policy=policy.name, invariant=inv.id, cpu=cpu,
                recorded=rec.label if rec is not None else "-", now=now.label,
                agree=agree, note=said.strip("; "), seconds=seconds if cpu == group.cpu else 0.0,
            )))  # fmt: skip
    return out


def _lemma_difference(recorded: tuple[str, ...], now: tuple[str, ...]) -> str:
    """What differs between the recorded and the re-checked inductive invariant."""
    extra = sorted(set(recorded) - set(now))
    missing = sorted(set(now) - set(recorded))
    parts = [f"recorded but not in the proof: {', '.join(extra)}"] if extra else []
    parts += [f"in the proof but not recorded: {', '.join(missing)}"] if missing else []
    return "the lemmas differ (" + "; ".join(parts) + ")"


def _decide(
    policy: ast.Policy, inv: Invariant, group: _Group, rec: Record | None,
    hints: tuple[str, ...] | None,
) -> tuple[Verdict, str]:  # fmt: skip
    model = CPU_MODELS[group.cpu]
    cold = group.settings.options(group.solver)
    changed = rec is None or (rec.policy_sha256, rec.invariant_sha256) != (
        policy.text_hash,
        inv.text_hash,
    )
    if group.recorded is None or changed:
        return check(policy, inv, model, cold), ""
    assert rec is not None  # noqa: S101
    if inv.kind == "noninterference" and rec.verdict == Status.VIOLATED.value and not group.full:
        return _replay_pair(policy, inv, group, rec)
    replayable = inv.kind != "noninterference"
    if rec.verdict == Status.VIOLATED.value and rec.trace and replayable and not group.full:
        events = list(rec.trace.events)
        tail = len(inv.events) if inv.kind == "transition" else 0
        ok, why = replay(policy, inv, model, cold, events, rec.params, len(events) - tail)
        unknown = sorted(set(rec.params) - set(inv.params))
        if ok and unknown:
            ok, why = False, f"parameters {', '.join(unknown)} that {inv.id} does not have"
        if ok and len(events) - tail != rec.depth:
            ok, why = False, f"{len(events) - tail} events before the invariant's, not {rec.depth}"
        if ok:
            verdict = Verdict(
                status=Status.VIOLATED, depth=rec.depth, engine=rec.engine,
                trace=rec.trace.events, details={"params": dict(rec.params)},
            )  # fmt: skip
            return verdict, "confirmed by replaying the recorded trace"
        verdict = check(policy, inv, model, cold)
        return verdict, f"{BAD_EVIDENCE}: the recorded trace does not replay ({why})"
    verdict = check(policy, inv, model, group.settings.options(group.solver, hints))
    if rec.verdict == Status.PROVED.value and verdict.status is not Status.PROVED and hints:
        again = check(policy, inv, model, cold)
        note = "proved again without the recorded lemmas" if again.status is Status.PROVED else ""
        return again, note
    return verdict, ""


def _replay_pair(
    policy: ast.Policy, inv: Invariant, group: _Group, rec: Record
) -> tuple[Verdict, str]:
    """A recorded noninterference violation: both runs replayed on the simulator must
    observe different values (else, or without both runs, it is decided again)."""
    model = CPU_MODELS[group.cpu]
    cold = group.settings.options(group.solver)
    if rec.trace is None or rec.other_trace is None:
        return check(policy, inv, model, cold), ""  # recorded before pairs were
    first, second = list(rec.trace.events), list(rec.other_trace.events)
    problem = pair_problem(first, second)
    if not problem and len(first) != rec.depth:
        problem = f"{len(first)} events, not {rec.depth}"
    if problem:
        verdict = check(policy, inv, model, cold)
        return verdict, f"{BAD_EVIDENCE}: the recorded pair is not one ({problem})"
    views = [observe(policy, inv, model, cold, first), observe(policy, inv, model, cold, second)]
    if views[0] != views[1]:
        verdict = Verdict(
            status=Status.VIOLATED, depth=rec.depth, engine=rec.engine, trace=tuple(first),
            details={"other_trace": tuple(second), "observed": views},
        )  # fmt: skip
        return verdict, "confirmed by replaying the recorded pair of traces"
    verdict = check(policy, inv, model, cold)
    return verdict, f"{BAD_EVIDENCE}: the recorded traces observe the same values"


def decide_matrix(
    policies: list[str], invariants: list[Invariant], cpus: list[str], settings: Settings,
    *, solver: str = "auto", jobs: int = 1, recorded: Mapping[str, ProofFile] | None = None,
    full: bool = False, progress: Callable[[Outcome], None] | None = None,
) -> list[tuple[Record, Outcome]]:  # fmt: skip
    """Decide (``recorded`` None) or re-check every policy x invariant x CPU model.

    A policy with a proofs file in *recorded* is re-checked with that file's settings
    (*settings* is for the others). Each policy is decided once per architecture
    (`same_architecture`): a CPU model with the same parameters as one before it in *cpus*
    gets that model's verdicts. Groups of one policy on one architecture run in parallel
    with ``jobs > 1``.
    """
    solver = backend.resolve(solver)
    groups = []
    for name in policies:
        pf = recorded.get(name) if recorded is not None else None
        by_key = {(r.invariant, r.cpu): r for r in (pf.records if pf else ())}
        for same in same_architecture(cpus).values():
            recs: tuple[tuple[Record | None, ...], ...] | None = None
            if recorded is not None:
                recs = tuple(tuple(by_key.get((inv.id, cpu)) for inv in invariants)
                             for cpu in same)  # fmt: skip
            own = pf.settings if pf is not None else settings  # as recorded, per policy
            groups.append(_Group(name, same, tuple(invariants), own, solver, recs, full))
    chunks: list[list[tuple[Record, Outcome]]] = []
    if jobs > 1 and len(groups) > 1:
        # a fresh process per group (forked from a server that has imported fsgs-smt):
        # what a worker decided before never shapes the next group's terms, so the
        # recorded evidence does not depend on which worker took which group
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["fsgs_smt.proofs"])
        with ProcessPoolExecutor(max_workers=min(jobs, len(groups)), mp_context=ctx,
                                 max_tasks_per_child=1) as pool:  # fmt: skip
            for chunk in pool.map(_run_group, groups):
                for item in chunk:
                    if progress is not None:
                        progress(item[1])
                chunks.append(chunk)
    else:
        for group in groups:
            chunks.append([])
            for item in _run_group(group):
                if progress is not None:
                    progress(item[1])
                chunks[-1].append(item)
    # in the order asked for: policy, then CPU model, then invariant
    cpu_place = {cpu: n for n, cpu in enumerate(cpus)}
    inv_place = {inv.id: n for n, inv in enumerate(invariants)}
    keyed = [
        ((policies.index(g.policy_ref), cpu_place[o.cpu], inv_place[o.invariant]), (r, o))
        for g, chunk in zip(groups, chunks, strict=True)
        for r, o in chunk
    ]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]


def stale_records(recorded: Mapping[str, ProofFile], invariants: list[Invariant]) -> list[Outcome]:
    """Recorded cells whose invariant no longer exists (a CPU model left out with ``--cpu``
    is only not checked this time; an unknown one cannot be loaded)."""
    ids = {inv.id for inv in invariants}
    return [
        Outcome(
            policy=name,
            invariant=r.invariant,
            cpu=r.cpu,
            recorded=r.label,
            now="-",
            agree=False,
            note="recorded, but no longer checked",
        )
        for name, pf in recorded.items()
        for r in pf.records
        if r.invariant not in ids
    ]


def shipped_policy_names() -> list[str]:
    """The names of the shipped policies, sorted."""
    return [p.name for p in shipped_policies()]
