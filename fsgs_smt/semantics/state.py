# SPDX-License-Identifier: MIT
"""The world's state: a flat map from named fields to domain values.

Layer: semantics. Imports `semantics.domain` only.

A world is one dict ``{key: value}`` over a fixed `Layout` (key -> width;
width 0 means a boolean). The flat form makes the state vector of the SMT
encoding, the comparison in the sim-vs-encoding property test and the
merge of two worlds under a condition all one-liners.

The CPUs are laid out relative to the task (a symmetry reduction): slot 0 is always the
CPU the task is on (its number is ``T.cpu``), slot ``j`` is CPU ``(T.cpu + j) mod n``
(`real_cpu`). A migration rotates the slots (`rotate_slots`), so every other event
reads and writes slot 0 by name, with no choice over the CPUs; numbering CPUs the
kernel's way is a relabelling that no event, invariant or policy can observe (the
policy's ``cpu.id`` and the view's ``cpu`` read ``T.cpu``; each slot's per-CPU base is
its real CPU's, `percpu_base`).

Keys (``c`` a CPU slot, ``t`` a task: ``T`` the task under study, ``O<c>``
the other task of the CPU in slot c):

* ``cpu<c>.fs``, ``.fs_base``, ``.gs``, ``.gs_base``, ``.kernel_gs_base``,
  ``.gdt_tls0..2``: the registers of the CPU in slot c and its GDT TLS slots 12..14;
  ``.fs_desc``, ``.gs_desc``: the descriptor word a MOV last loaded into the hidden part
  of the register (0 for a null selector), so an invariant can tell whether the table
  entry changed since;
* ``<t>.fsindex``, ``.gsindex``, ``.fsbase``, ``.gsbase``, ``.tls0..2``: thread_struct;
* ``mm.ldt0..`` and ``mm.ldt_n``: the process's LDT (shared by all its threads);
* ``T.cpu``, ``T.stopped``, ``T.status`` (0 running, else the fatal signal),
  ``kernel_gp`` (the kernel took a #GP loading a base: a kernel bug).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from fsgs_smt.semantics.domain import Domain, V

TASK = "T"
STATUS_RUNNING = 0
STATUS_SIGSEGV = 1
STATUS_SIGBUS = 2
STATUS_SIGILL = 3
STATUS_NAMES = {STATUS_SIGSEGV: "SIGSEGV", STATUS_SIGBUS: "SIGBUS", STATUS_SIGILL: "SIGILL"}

CPU_REG_FIELDS: dict[str, int] = {
    "fs": 16, "fs_base": 64, "gs": 16, "gs_base": 64, "kernel_gs_base": 64,
    "fs_desc": 64, "gs_desc": 64,  # the hidden descriptor cache (0 after a null load)
    "gdt_tls0": 64, "gdt_tls1": 64, "gdt_tls2": 64,
}  # fmt: skip
THREAD_KEYS: dict[str, int] = {
    "fsindex": 16, "gsindex": 16, "fsbase": 64, "gsbase": 64, "tls0": 64, "tls1": 64, "tls2": 64,
}  # fmt: skip


def other_task(cpu: int) -> str:
    """The name of the other task that runs on the CPU in slot *cpu*."""
    return f"O{cpu}"


# The kernel's per-CPU GS base (what GS.base holds while in the kernel): any canonical
# kernel-half address; the model only needs it to differ from user values.
PERCPU_BASE = 0xFFFF888000000000
PERCPU_STRIDE = 0x40000


def real_cpu(d: Domain, t_cpu: V, slot: int, ncpus: int) -> V:
    """The number (8 bits) of the CPU in *slot*: ``(T.cpu + slot) mod ncpus``."""
    result = d.bv(slot % ncpus, 8)  # T.cpu == 0 (and out of range: unreachable)
    for c in range(1, ncpus):
        result = d.ite(d.eq(t_cpu, d.bv(c, 8)), d.bv((c + slot) % ncpus, 8), result)
    return result


def percpu_base(d: Domain, t_cpu: V, slot: int, ncpus: int) -> V:
    """The kernel's per-CPU base of the CPU in *slot* (its GS base in the kernel)."""
    result = d.bv(PERCPU_BASE + (slot % ncpus) * PERCPU_STRIDE, 64)
    for c in range(1, ncpus):
        real = (c + slot) % ncpus
        base = d.bv(PERCPU_BASE + real * PERCPU_STRIDE, 64)
        result = d.ite(d.eq(t_cpu, d.bv(c, 8)), base, result)
    return result


def rotate_slots(
    d: Domain, store: Store, keys: Mapping[str, int], ncpus: int, target: V, g: V
) -> None:
    """Under *g*, the task moves to CPU *target*: slot j takes what slot ``(j + delta)
    mod n`` held, ``delta = (target - T.cpu) mod n``, for the CPUs and their other tasks
    alike, and ``T.cpu`` becomes *target*. A concrete target out of range is an error
    (a symbolic one is kept in range by the encoding's parameter constraint)."""
    t_cpu = store.get("T.cpu")
    known = d.const_value(target)
    if known is not None and known >= ncpus:
        msg = f"index out of range 0..{ncpus - 1}"
        raise ValueError(msg)
    old = dict(store.values)
    for delta in range(1, ncpus):
        moved = d.boolean(False)
        for c in range(ncpus):
            here = d.and_(d.eq(t_cpu, d.bv(c, 8)), d.eq(target, d.bv((c + delta) % ncpus, 8)))
            moved = d.or_(moved, here)
        gd = d.and_(g, moved)
        if d.const_bool(gd) is False:
            continue
        for key in keys:
            prefix, _, suffix = key.partition(".")
            for head in ("cpu", "O"):
                if prefix.startswith(head) and prefix[len(head) :].isdigit():
                    j = int(prefix[len(head) :])
                    store.set(key, old[f"{head}{(j + delta) % ncpus}.{suffix}"], gd)
    store.set("T.cpu", target, g)


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """The size of the modelled world."""

    ncpus: int = 2
    ldt_slots: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.ncpus <= 64:
            msg = f"ncpus must be 1..64, got {self.ncpus}"
            raise ValueError(msg)
        if not 1 <= self.ldt_slots <= 8192:
            msg = f"ldt_slots must be 1..8192, got {self.ldt_slots}"
            raise ValueError(msg)

    def describe(self) -> str:
        """The worlds of this size, in words ("worlds of 2 CPUs and LDTs of up to 1 entry")."""
        cpus = "1 CPU" if self.ncpus == 1 else f"{self.ncpus} CPUs"
        entries = "1 entry" if self.ldt_slots == 1 else f"{self.ldt_slots} entries"
        return f"worlds of {cpus} and LDTs of up to {entries}"


def layout(
    bounds: Bounds,
    extra_thread: Mapping[str, int] | None = None,
    extra_mm: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Every state key of a world of this size, with its width (0: boolean), in a fixed order.

    *extra_thread* and *extra_mm* are the fields a policy declares in its ``state:`` section.
    """
    keys: dict[str, int] = {}
    for c in range(bounds.ncpus):
        for name, width in CPU_REG_FIELDS.items():
            keys[f"cpu{c}.{name}"] = width
    for task in (TASK, *(other_task(c) for c in range(bounds.ncpus))):
        for name, width in {**THREAD_KEYS, **(extra_thread or {})}.items():
            keys[f"{task}.{name}"] = width
    for k in range(bounds.ldt_slots):
        keys[f"mm.ldt{k}"] = 64
    keys["mm.ldt_n"] = 16
    for name, width in (extra_mm or {}).items():
        keys[f"mm.{name}"] = width
    keys["T.cpu"] = 8
    keys["T.stopped"] = 0
    keys["T.status"] = 2
    keys["kernel_gp"] = 0
    return keys


class Store:
    """A mutable working copy of a world during one step; writes are guarded.

    ``set(key, value, guard)`` stores ``ite(guard, value, old)``, so running a
    statement under a path condition is the same code in every domain.
    """

    def __init__(self, d: Domain, values: Mapping[str, V]) -> None:
        self.d = d
        self.values: dict[str, V] = dict(values)

    def get(self, key: str) -> V:
        return self.values[key]

    def set(self, key: str, value: V, guard: V) -> None:
        g = self.d.const_bool(guard)
        if g is False:
            return
        if g is True or key not in self.values:
            self.values[key] = value
            return
        self.values[key] = self.d.ite(guard, value, self.values[key])

    def snapshot(self, keys: Mapping[str, int]) -> dict[str, V]:
        """The values of exactly *keys* (scratch keys such as a fork child's are dropped)."""
        return {k: self.values[k] for k in keys}


@dataclass(frozen=True, slots=True)
class Choice:
    """One of several objects (CPUs or tasks), each under its condition.

    Concretely exactly one alternative has condition True; symbolically the
    conditions are mutually exclusive and cover the reachable cases.
    """

    alts: tuple[tuple[V, str], ...]
    ident: V | None = None  # a CPU's number (8 bits), when it is not the slot's

    @staticmethod
    def one(d: Domain, prefix: str) -> Choice:
        return Choice(((d.boolean(True), prefix),))

    def __iter__(self) -> Iterator[tuple[V, str]]:
        return iter(self.alts)

    def read(self, store: Store, suffix: str) -> V:
        d = store.d
        alts = self.alts
        result = store.get(f"{alts[-1][1]}.{suffix}")
        for cond, prefix in reversed(alts[:-1]):
            result = d.ite(cond, store.get(f"{prefix}.{suffix}"), result)
        return result

    def write(self, store: Store, suffix: str, value: V, guard: V) -> None:
        d = store.d
        for cond, prefix in self.alts:
            store.set(f"{prefix}.{suffix}", value, d.and_(guard, cond))

    def map_int(self, d: Domain, f: dict[str, int], width: int) -> V:
        """An ite-chain selecting the int ``f[prefix]`` of the chosen alternative."""
        result = d.bv(f[self.alts[-1][1]], width)
        for cond, prefix in reversed(self.alts[:-1]):
            result = d.ite(cond, d.bv(f[prefix], width), result)
        return result


def choose_by_index(d: Domain, index: V, names: list[str], width: int) -> Choice:
    """The object ``names[index]``; alternatives known to be false are pruned."""
    alts: list[tuple[V, str]] = []
    for i, name in enumerate(names):
        cond = d.eq(index, d.bv(i, width))
        if d.const_bool(cond) is False:
            continue
        alts.append((cond, name))
    if not alts:
        msg = f"index out of range 0..{len(names) - 1}"
        raise ValueError(msg)
    return Choice(tuple(alts))


def select(d: Domain, index: V, words: list[V]) -> V:
    """``words[index]`` for a symbolic or concrete 64-bit index; 0 when out of range.

    A balanced multiplexer on the index bits (one 64-bit choice per pair at each level)
    rather than a chain of comparisons with each index: a third of the bit-blasted size
    for the 16 GDT words, and the same value in every domain.
    """
    ci = d.const_value(index)
    if ci is not None:
        return words[ci] if ci < len(words) else d.bv(0, 64)
    bits = max(1, (len(words) - 1).bit_length())
    level = list(words) + [d.bv(0, 64)] * ((1 << bits) - len(words))
    for b in range(bits):
        one = d.eq(d.extract(index, b, b), d.bv(1, 1))
        level = [d.ite(one, level[i + 1], level[i]) for i in range(0, len(level), 2)]
    return d.ite(d.ult(index, d.bv(len(words), 64)), level[0], d.bv(0, 64))


def read_array(d: Domain, store: Store, prefix: str, length: int, index: V) -> V:
    """``prefix<index>`` for a symbolic or concrete 64-bit index; 0 when out of range."""
    ci = d.const_value(index)
    if ci is not None:
        return store.get(f"{prefix}{ci}") if ci < length else d.bv(0, 64)
    return select(d, index, [store.get(f"{prefix}{k}") for k in range(length)])


def write_array(
    d: Domain, store: Store, prefix: str, length: int, index: V, value: V, guard: V
) -> None:
    """Store *value* at ``prefix<index>`` under *guard*; an out-of-range index writes nothing."""
    ci = d.const_value(index)
    if ci is not None:
        if ci < length:
            store.set(f"{prefix}{ci}", value, guard)
        return
    for k in range(length):
        store.set(f"{prefix}{k}", value, d.and_(guard, d.eq(index, d.bv(k, 64))))
