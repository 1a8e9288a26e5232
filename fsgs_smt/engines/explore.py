# SPDX-License-Identifier: MIT
"""Concrete exploration: seeded random runs of a `System` on the simulator's semantics.

Layer: engines. Imports `encode.system` and `semantics.*`; no solver.

The lemma searches (`houdini`, `ni`) compute the largest inductive subset of their
candidates. A candidate that is false in some reachable world (or, for noninterference,
some reachable pair of worlds) belongs to no inductive invariant that holds initially,
so dropping it before the solver sees it leaves that subset unchanged; it only spares
the counterexamples to induction that would have dropped it, each a query (up to seconds
over the product), where evaluating a candidate on a concrete world costs microseconds.
Whatever survives is still checked by the solver, so the exploration can make a search
faster, never its answer less sound.

The runs are the system's own: each step is one of `System.variants`, built from
parameters that satisfy `System.param_constraint` (a test checks that with z3), and run
by `System.conc`, the concrete instance of the one semantics. Parameters are drawn from
the values that matter to segment loads (null, GDT, TLS and LDT selectors with each RPL;
zero, small, user, kernel-half and non-canonical bases) and from uniform noise. The seed
is fixed, so a search is reproducible.

The small-scope runs (`scope_runs`) serve the counterexample search instead: every run of
exactly k events from a fixed alphabet (`scope_alphabet`: each variant with the simplest
parameters that tell the kernels apart), in a fixed order, simplest first. The pipeline
judges each on the concrete semantics before the solver's satisfiable query at depth k
(`pipeline.small_scope`); whatever they find is replayed on the simulator like any
counterexample, and whatever they miss the solver still finds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from fsgs_smt.encode.system import LDT_ENTRIES, PARAMS, System
from fsgs_smt.semantics import x86
from fsgs_smt.semantics.events import Event

SEED = 0
WALKS = 150
LENGTH = 16

_SELECTORS = (
    0, 1, 2, 3,  # null, each RPL
    x86.USER_DS, 0x33, 0x23, 0x10, 0x18, 0x08,  # user and kernel GDT segments
    *[((x86.GDT_ENTRY_TLS_MIN + i) << 3) | rpl for i in range(3) for rpl in (0, 3)],
    (x86.GDT_ENTRY_CPUNODE << 3) | 3,
    *[(i << 3) | 4 | rpl for i in range(3) for rpl in (0, 3)],  # LDT entries
)  # fmt: skip
_VALUES = (  # below and above 4 GiB (Linux 4.6 put small bases in the GDT), TASK_SIZE_MAX
    0, 1, 0x1000, 0xFFFF_F000, 0x1_0000_0000, 0x7F12_3456_7000,
    0x7FFF_FFFF_F000, 0x7FFF_FFFF_FFFF, 0x8000_0000_0000,
    0xFFFF_8000_0000_0000, 0xFFFF_8880_0000_1000, 0xFFFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
)  # fmt: skip
_DESC_FIELDS = {
    "d_seg_32bit": 1, "d_contents": 3, "d_read_exec_only": 1, "d_limit_in_pages": 1,
    "d_seg_not_present": 1, "d_useable": 1,
}  # fmt: skip


def _selector(rng: random.Random) -> int:
    """Null selectors a third of the time (the kernels' cases differ most there)."""
    roll = rng.random()
    if roll < 0.3:
        return rng.randrange(4)
    return rng.choice(_SELECTORS) if roll < 0.9 else rng.getrandbits(16)


def sample_params(rng: random.Random, variant: str, system: System) -> dict[str, int]:
    """Parameters for one step of *variant*, within `System.param_constraint`."""
    bounds = system.bounds
    ldt = variant.endswith("modify_ldt")
    if ldt:  # inside the modelled LDT, or refused by the kernel (>= LDT_ENTRIES)
        entries = [*range(bounds.ldt_slots), LDT_ENTRIES, 0xFFFF_FFFF]
    else:  # set_thread_area: the TLS entries, "find a free one", and wrong ones
        entries = [x86.GDT_ENTRY_TLS_MIN + i for i in range(3)] + [0xFFFF_FFFF, 0, 11, 15]
    p = {
        "sel": _selector(rng),
        "val": rng.choice(_VALUES) if rng.random() < 0.8 else rng.getrandbits(64),
        "ent": rng.choice(entries),
        "cpu": rng.randrange(bounds.ncpus),
        "d_base_addr": rng.choice((0, 0x1000, 0xFFFF_F000, rng.getrandbits(32))),
        "d_limit": rng.choice((0, 0xFFFFF, rng.getrandbits(20))),
    }
    for name, top in _DESC_FIELDS.items():
        p[name] = rng.randint(0, top)
    if rng.random() < 0.6:  # what fill_ldt() accepts and a load can use: present data
        p.update(d_seg_not_present=0, d_contents=0, d_read_exec_only=0, d_useable=1)
    assert set(p) == set(PARAMS)  # noqa: S101 - every parameter the encoding has
    return p


def _weights(system: System) -> list[int]:
    """How often each variant is drawn: the events that switch (where other tasks act and
    the kernel saves and restores) and those that set up descriptors, three times as often."""
    heavy = ("yield", "migrate", "modify_ldt", "set_thread_area")
    return [3 if any(h in v.name for h in heavy) else 1 for v in system.variants]


def walks(
    system: System, *, seed: int = SEED, count: int = WALKS, length: int = LENGTH
) -> Iterator[dict[str, Any]]:
    """The worlds of *count* random runs of *length* steps from the initial world (the
    initial world first)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible exploration, not secrets
    weights = _weights(system)
    ids = range(len(system.variants))
    yield system.initial_world()
    for _ in range(count):
        world = system.initial_world()
        for _ in range(length):
            (i,) = rng.choices(ids, weights)
            name = system.variants[i].name
            world = system.conc.step(world, system.variants[i].build(
                sample_params(rng, name, system))).world  # fmt: skip
            yield world


def pair_walks(
    system: System,
    free: Sequence[str],
    *,
    seed: int = SEED,
    count: int = WALKS,
    length: int = LENGTH,
) -> Iterator[tuple[dict[str, Any], dict[str, Any], tuple[Event, ...], tuple[Event, ...]]]:
    """Pairs of worlds of the self-composition (`engines.ni`), with the events each copy
    took to reach it: both copies take the same event, except that when the chosen variant
    is one of *free* (a yield in which the other task may act), the second copy takes any
    variant of *free*, with its own parameters."""
    rng = random.Random(seed)  # noqa: S311 - reproducible exploration, not secrets
    free_ids = [i for i, v in enumerate(system.variants) if v.name in free]
    weights = _weights(system)
    ids = range(len(system.variants))
    yield system.initial_world(), system.initial_world(), (), ()
    for _ in range(count):
        a, b = system.initial_world(), system.initial_world()
        ea: tuple[Event, ...] = ()
        eb: tuple[Event, ...] = ()
        for _ in range(length):
            (i,) = rng.choices(ids, weights)
            p = sample_params(rng, system.variants[i].name, system)
            j, q = i, p
            if i in free_ids:
                j = rng.choice(free_ids)
                q = sample_params(rng, system.variants[j].name, system)
            ea, eb = (*ea, system.variants[i].build(p)), (*eb, system.variants[j].build(q))
            same = a == b and ea[-1] == eb[-1]  # until the other tasks first act apart
            a = system.conc.step(a, ea[-1]).world
            b = a if same else system.conc.step(b, eb[-1]).world
            yield a, b, ea, eb


def falsified(
    names: Sequence[str],
    holds: Callable[[str, Any], bool],
    worlds: Iterator[Any],
    key: Callable[[Any], Hashable] | None = None,
) -> set[str]:
    """The names of *names* that some world of *worlds* falsifies (``holds(name, world)``).

    With *key*, a world whose key was seen before is skipped: a random run revisits
    worlds often (a refused call, a read), and linux-4.13's 1601 explored worlds are 331
    distinct ones."""
    alive = list(names)
    out: set[str] = set()
    seen: set[Hashable] = set()
    for world in worlds:
        if key is not None:
            k = key(world)
            if k in seen:
                continue
            seen.add(k)
        still = []
        for n in alive:
            if holds(n, world):
                still.append(n)
            else:
                out.add(n)
        alive = still
        if not alive:
            break
    return out


def world_key(world: dict[str, Any]) -> Hashable:
    """What identifies a world of the simulator: its fields and their values."""
    return frozenset(world.items())


# ---------------------------------------------------------------- small-scope search
# Each variant's event with the simplest parameters that tell the kernels apart, in the
# order a shrunk counterexample prefers them: a null selector with a nonzero RPL first (the
# Intel/AMD difference), then null, the user data segment, a TLS entry and an LDT entry; a
# small base first, then zero, above 4 GiB, the top of user space, the kernel half and a
# non-canonical one. The 122 recorded counterexamples of depth <= 3 use 18 prefixes, and
# all but a few are made of these events.
SCOPE_SELECTORS = (
    1, 0, 3, x86.USER_DS, x86.GDT_ENTRY_TLS_MIN << 3, (x86.GDT_ENTRY_TLS_MIN << 3) | 3,
    (0 << 3) | 4 | 3,  # LDT entry 0, RPL 3
)  # fmt: skip
SCOPE_VALUES = (
    1, 0, 0x1_0000_0000, 0x7FFF_FFFF_F000, 0xFFFF_8000_0000_0000, 0x8000_0000_0000,
)  # fmt: skip
_SCOPE_BASE = {  # a present, usable, 32-bit, page-granular data descriptor
    "sel": 0, "val": 0, "ent": 0, "cpu": 0, "d_base_addr": 0, "d_limit": 0xFFFFF,
    "d_seg_32bit": 1, "d_contents": 0, "d_read_exec_only": 0, "d_limit_in_pages": 1,
    "d_seg_not_present": 0, "d_useable": 1,
}  # fmt: skip


def scope_alphabet(system: System) -> list[tuple[int, dict[str, int]]]:
    """The events of the small-scope search as (variant index, parameters), in the order of
    `System.variants`, each variant's simplest first, each distinct event once; the
    parameters are inside `System.param_constraint`.

    (Every variant's simplest event first, then every variant's second, was measured too:
    over the shipped matrix's 116 counterexamples of depth <= 2, 101 are found within
    1500 runs that way against 110 this way.)"""
    bounds = system.bounds
    tls = x86.GDT_ENTRY_TLS_MIN
    out: list[tuple[int, dict[str, int]]] = []
    seen: set[Event] = set()
    for i, variant in enumerate(system.variants):
        if variant.name.endswith("modify_ldt"):
            changes: list[dict[str, int]] = [  # entry 0: every world models at least one
                {"d_base_addr": 1}, {}, {"d_seg_not_present": 1},
            ]  # fmt: skip
        elif variant.name.endswith("set_thread_area"):
            changes = [{"ent": e, "d_base_addr": b} for e in (0xFFFF_FFFF, tls) for b in (1, 0)]
        else:
            changes = [{"val": v} for v in SCOPE_VALUES] + [{"sel": s} for s in SCOPE_SELECTORS]
            changes += [{"cpu": c} for c in range(bounds.ncpus)]
        for change in changes:
            params = {**_SCOPE_BASE, **change}
            event = variant.build(params)
            if event not in seen:
                seen.add(event)
                out.append((i, params))
    return out


def _diagonal(n: int, k: int) -> Iterator[tuple[int, ...]]:
    """Every k-tuple of indices below *n*, by increasing sum (lexicographic within one)."""

    def parts(total: int, k: int) -> Iterator[tuple[int, ...]]:
        if k == 1:
            if total < n:
                yield (total,)
            return
        for first in range(min(total, n - 1) + 1):
            for rest in parts(total - first, k - 1):
                yield (first, *rest)

    for total in range(k * (n - 1) + 1):
        yield from parts(total, k)


def scope_runs(
    system: System, k: int, limit: int | None = None
) -> Iterator[tuple[tuple[Event, ...], dict[str, Any]]]:
    """Runs of exactly *k* events of `scope_alphabet` from the initial world, simplest
    first (by the sum of the events' places in the alphabet), each with the world it ends
    in; a run that ends in a world an earlier run of this search ended in is skipped, and
    after *limit* runs (skipped ones included: each costs a step) the search stops."""
    alphabet = [(system.variants[i].build(p), i) for i, p in scope_alphabet(system)]
    worlds: dict[tuple[int, ...], dict[str, Any]] = {(): system.initial_world()}
    seen: set[Hashable] = set()
    runs = _diagonal(len(alphabet), k) if k > 0 else iter([()])
    for idx in itertools.islice(runs, limit):
        world = worlds.get(idx)
        if world is None:
            j = len(idx) - 1
            while idx[:j] not in worlds:
                j -= 1
            world = worlds[idx[:j]]
            for m in range(j, len(idx)):
                world = system.conc.step(world, alphabet[idx[m]][0]).world
                if m < len(idx) - 1:
                    worlds[idx[: m + 1]] = world
        key = world_key(world)
        if key in seen:
            continue
        seen.add(key)
        yield tuple(alphabet[m][0] for m in idx), world
