# SPDX-License-Identifier: MIT
"""Soundness against mutants: a policy with a planted bug is never PROVED where the
concrete simulator finds a trace that breaks the invariant.

Mutants are made from the shipped linux-5.9 policy, whose invariants below are all
PROVED: one guard flipped, one statement dropped, or the field an assignment of a hook
writes swapped (FS for GS, the selector for the base). Hypothesis picks the mutant and
the random traces (fixed seed); a mutant on which no random trace breaks the invariant
tells nothing and is filtered out.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from fsgs_smt.encode.property import instantiate
from fsgs_smt.encode.system import PARAMS, other_actions
from fsgs_smt.engines.verdict import Status
from fsgs_smt.errors import InputError
from fsgs_smt.pipeline import Options, check, evaluate
from fsgs_smt.policy import ast
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.policy.check import check_policy
from fsgs_smt.policy.invariants import is_any_other
from fsgs_smt.proving import select_invariants
from fsgs_smt.semantics.cpu import CPU_MODELS
from tests.strategies import traces

# Invariants PROVED for linux-5.9 on every CPU model (proofs/linux-5.9.json).
INVARIANTS = ("Q1a", "Q1b", "Q2a", "arch-get-reports-live", "selftest-mov-0-gs")
CPU = "intel"

Path = tuple[tuple[str, int], ...]  # (hook or block, statement index) from a hook down


def _sites(policy: ast.Policy) -> list[tuple[str, str, Path]]:
    """Every (mutation, hook, path) of the policy's hooks."""
    out: list[tuple[str, str, Path]] = []

    def walk(hook: str, body: tuple[ast.Stmt, ...], path: Path) -> None:
        for i, stmt in enumerate(body):
            here = (*path, ("body", i))
            out.append(("drop", hook, here))
            if isinstance(stmt, ast.If):
                out.append(("flip", hook, here))
                walk(hook, stmt.then, (*here, ("then", 0)))
                walk(hook, stmt.other, (*here, ("other", 0)))
            elif isinstance(stmt, ast.EachSeg):
                walk(hook, stmt.body, (*here, ("each", 0)))
            elif isinstance(stmt, ast.Assign) and _swapped(stmt.target) != stmt.target:
                out.append(("swap", hook, here))

    for name, hook in sorted(policy.hooks.items()):
        walk(name, hook.body, ())
    return out


_SWAP = {
    "fsbase": "gsbase", "gsbase": "fsbase", "fsindex": "gsindex", "gsindex": "fsindex",
    "index": "base", "base": "index",  # inside each_seg, the fields of the segment at hand
}  # fmt: skip


def _swapped(name: ast.Name) -> ast.Name:
    return replace(name, parts=tuple(_SWAP.get(p, p) for p in name.parts))


def _mutate_body(body: tuple[ast.Stmt, ...], path: Path, kind: str) -> tuple[ast.Stmt, ...]:
    (_, i), rest = path[0], path[1:]
    stmt = body[i]
    if not rest:
        if kind == "drop":
            return body[:i] + body[i + 1 :]
        if kind == "flip":
            assert isinstance(stmt, ast.If)
            return (*body[:i], replace(stmt, then=stmt.other, other=stmt.then), *body[i + 1 :])
        assert isinstance(stmt, ast.Assign)
        return (*body[:i], replace(stmt, target=_swapped(stmt.target)), *body[i + 1 :])
    (where, _), inner = rest[0], rest[1:]
    new: Any
    if where == "then":
        assert isinstance(stmt, ast.If)
        new = replace(stmt, then=_mutate_body(stmt.then, inner, kind))
    elif where == "other":
        assert isinstance(stmt, ast.If)
        new = replace(stmt, other=_mutate_body(stmt.other, inner, kind))
    else:
        assert isinstance(stmt, ast.EachSeg)
        new = replace(stmt, body=_mutate_body(stmt.body, inner, kind))
    return (*body[:i], new, *body[i + 1 :])


def mutant(policy: ast.Policy, kind: str, hook: str, path: Path) -> ast.Policy | None:
    """The policy with one mutation (None if the mutant does not type-check)."""
    h = policy.hooks[hook]
    hooks = dict(policy.hooks)
    hooks[hook] = replace(h, body=_mutate_body(h.body, path, kind))
    tag = hashlib.sha256(f"{policy.text_hash}/{kind}/{hook}/{path}".encode()).hexdigest()
    try:
        return check_policy(replace(policy, hooks=hooks, text_hash=tag))
    except InputError:
        return None


BASE = load_checked("linux-5.9")
SITES = _sites(BASE)
OPTIONS = Options(depth=3, timeout=120)


def test_there_are_mutation_sites_of_every_kind() -> None:
    kinds = {kind for kind, _, _ in SITES}
    assert kinds == {"drop", "flip", "swap"}, kinds


@settings(
    max_examples=4, deadline=None, derandomize=True, phases=[Phase.generate],
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
@given(data=st.data())
def test_a_mutant_that_breaks_an_invariant_is_never_proved(data: st.DataObject) -> None:
    kind, hook, path = data.draw(st.sampled_from(SITES), label="mutation")
    inv_id = data.draw(st.sampled_from(INVARIANTS), label="invariant")
    policy = mutant(BASE, kind, hook, path)
    assume(policy is not None)
    assert policy is not None
    (inv,) = select_invariants(None, [inv_id])
    model = CPU_MODELS[CPU]
    broken = None
    for prefix in data.draw(st.lists(traces(max_events=5), min_size=40, max_size=40)):
        values = {
            n: data.draw(st.one_of(st.integers(0, 3), st.integers(0, 2**w - 1)))
            for n, w in inv.params.items()
        }
        tail: list[Any] = []
        if inv.kind == "transition":
            oparams = {n: data.draw(st.integers(0, 3)) for n in PARAMS}
            n_any = sum(1 for e in inv.events if is_any_other(e))
            choices = tuple(data.draw(st.integers(0, len(other_actions()))) for _ in range(n_any))
            tail = instantiate(inv.events, values, oparams, choices)
        events = [*prefix, *tail]
        try:
            holds, _ = evaluate(policy, inv, model, OPTIONS, events, values, len(prefix))
        except InputError:  # e.g. a migration to a CPU the world does not have
            continue
        if not holds:
            broken = events
            break
    assume(broken is not None)
    verdict = check(policy, inv, model, OPTIONS)
    assert verdict.status is not Status.PROVED, (
        f"{kind} at {hook}{list(path)}: {inv_id} PROVED, but the simulator breaks it with {broken}"
    )
