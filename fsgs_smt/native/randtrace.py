# SPDX-License-Identifier: MIT
"""Random fsgs-trace/1 traces biased toward the corners, for conformance runs.

Layer: native. Imports `semantics.events` and the standard library (``random``); prints
nothing. Deterministic: trace *k* of seed *s* depends on (s, k) only, so a longer run
starts with the same traces and one trace can be made again alone.

A trace is a sequence of *motifs* (short scenarios around one corner) and single events,
cut to its length:

* an LDT descriptor changed under a loaded selector (by the task, or by the other task of
  the CPU while the task is switched out), then something that reloads or reports it;
* a null selector 0..3 over a nonzero base, in either order;
* kernel-half and non-canonical bases, through WRxBASE, ``arch_prctl`` and POKEUSER;
* ptrace round trips (GETREGS/SETREGS of the same values, or of FS/GS slots, PEEK/POKE);
* TLS entries by ``set_thread_area`` and their GDT selectors;
* a signal before and after any of these.

Only traces the native replay can execute are made (`fsgs_smt.native.cgen.unsupported`
is "" for every one): CPUs 0 and 1, and PTRACE_SETREGS of FS/GS, DS and ES slots only;
and only LDTs of one page (`LDT_ENTRIES` says why).
`Features` turns off what the machine lacks (IA32 emulation, ``modify_ldt``, ptrace).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from fsgs_smt.semantics.events import (
    Abi,
    ArchCode,
    ArchPrctl,
    Event,
    Exec,
    Fork,
    Interrupt,
    Migrate,
    ModifyLdt,
    MovSeg,
    Observe,
    ObserveVia,
    PtraceField,
    PtracePeek,
    PtracePoke,
    PtraceSetregs,
    Seg,
    SetThreadArea,
    Signal,
    Trace,
    UserDesc,
    WrBase,
    Yield,
)

NCPUS: Final = 2
NULL_SELECTORS: Final = (0, 1, 2, 3)
# GDT: kernel CS/DS, user32 CS, user DS, user CS, TSS, LDT descriptor, TLS 12..14, CPU number.
GDT_SELECTORS: Final = (0x08, 0x10, 0x13, 0x18, 0x1B, 0x23, 0x2B, 0x33, 0x40, 0x43, 0x50,
                        0x53, 0x60, 0x63, 0x68, 0x6B, 0x70, 0x73, 0x7B)  # fmt: skip
BEYOND_SELECTORS: Final = (0x80, 0x83, 0xFB, 0x3FF, 0xFFFB, 0xFFFF, 0x1004, 0x1007)
USER_BASES: Final = (0x1000, 0x7000, 0x8000, 0x9999000, 0xBAADF00D, 0xFFFFFFFF, 0x200000000,
                     0x7FFFFFFFEFFF, 0x7FFFFFFFF000, 0x7FFFFFFFFFF9, 0x7FFFFFFFFFFF)  # fmt: skip
KERNEL_BASES: Final = (0xFFFF800000000000, 0xFFFF800000001000, 0xFFFFFFFF81000000,
                       0xFFFFFFFFFF600000, 0xFFFFFFFFFFFFFFFF)  # fmt: skip
NONCANONICAL_BASES: Final = (0x800000000000, 0x00FF000000000000, 0x8000000000000000,
                             0xFFFF7FFFFFFFFFFF)  # fmt: skip
LDT_BASES: Final = (0, 0x7000, 0x8000, 0xBAADF00D, 0x1337F00D)
# LDT entries: the first ones; 511, the last of a one-page LDT; 8192, one too many (EINVAL).
# Not 512..8191: an LDT bigger than a page makes every later modify_ldt free the old one
# through vfree_atomic(), whose kworker usually preempts the task inside the system call,
# a context switch the model does not have (it reloads FS/GS from the new LDT); measured:
# the model's outcome in 3 to 5 runs of 20.
LDT_ENTRIES: Final = (0, 0, 1, 2, 3, 511, 8192)
TLS_ENTRIES: Final = (-1, -1, 12, 13, 14, 11, 15)
SETREGS_SLOTS: Final = ("fs", "gs", "fs_base", "gs_base", "ds", "es")
OTHER_SELECTORS: Final = (0x2B, 0x33, 0x10)  # for DS/ES: user data, user code, kernel


@dataclass(frozen=True, slots=True)
class Features:
    """What the machine lets a trace use."""

    ia32: bool = True  # int $0x80 (set_thread_area abi ia32)
    modify_ldt: bool = True
    ptrace: bool = True
    exec: bool = True


class _Gen:
    """The drawing of one trace (one `random.Random`)."""

    def __init__(self, rng: random.Random, features: Features) -> None:
        self.r = rng
        self.f = features

    # -- values ----------------------------------------------------------------------------
    def seg(self) -> Seg:
        return self.r.choice((Seg.FS, Seg.GS))

    def ldt_selector(self, entry: int | None = None) -> int:
        entry = self.r.choice((0, 0, 1, 2, 3)) if entry is None else entry
        rpl = self.r.choice((3, 3, 3, 0, 1, 2))
        return entry << 3 | 4 | rpl

    def tls_selector(self, entry: int | None = None) -> int:
        entry = self.r.choice((12, 13, 14)) if entry is None or entry < 0 else entry
        return entry << 3 | self.r.choice((3, 3, 3, 0))

    def selector(self) -> int:
        pick = self.r.random()
        if pick < 0.3:
            return self.r.choice(NULL_SELECTORS)
        if pick < 0.55:
            return self.ldt_selector()
        if pick < 0.65:
            return self.tls_selector()
        if pick < 0.85:
            return self.r.choice(GDT_SELECTORS)
        if pick < 0.95:
            return self.r.choice(BEYOND_SELECTORS)
        return self.r.randrange(0x10000)

    def base(self, *, noncanonical: float = 0.1) -> int:
        pick = self.r.random()
        if pick < noncanonical:
            return self.r.choice(NONCANONICAL_BASES)
        if pick < 0.2:
            return 0
        if pick < 0.4:
            return self.r.choice(KERNEL_BASES)
        if pick < 0.85:
            return self.r.choice(USER_BASES)
        return self.r.randrange(1, 1 << 47)

    def desc(self) -> UserDesc:
        """A struct user_desc: mostly valid 32-bit data; code, 16-bit, absent or empty too."""
        r = self.r
        if r.random() < 0.1:  # LDT_empty: the deletion form
            return UserDesc(read_exec_only=1, seg_not_present=1)
        return UserDesc(
            base_addr=r.choice(LDT_BASES),
            limit=r.choice((0xFFFFF, 0xFFFFF, 0, 0x10)),
            seg_32bit=r.choice((1, 1, 1, 0)),
            contents=r.choice((0, 0, 0, 1, 2, 3)),
            read_exec_only=r.choice((0, 0, 0, 1)),
            limit_in_pages=r.choice((1, 1, 0)),
            seg_not_present=r.choice((0, 0, 0, 0, 1)),
            useable=r.choice((0, 1)),
        )

    def via(self) -> ObserveVia | None:
        return self.r.choice((None, None, ObserveVia.RDBASE, ObserveVia.ARCH_PRCTL,
                              ObserveVia.FAULT, ObserveVia.FAULT))  # fmt: skip

    def abi(self) -> Abi:
        return self.r.choice((Abi.IA32, Abi.IA32, Abi.IA32, Abi.X64)) if self.f.ia32 else Abi.X64

    # -- single events -----------------------------------------------------------------------
    def mov_seg(self) -> Event:
        return MovSeg(seg=self.seg(), selector=self.selector())

    def wrbase(self) -> Event:
        return WrBase(seg=self.seg(), value=self.base(noncanonical=0.04))

    def arch_prctl(self) -> Event:
        code = self.r.choice(list(ArchCode))
        return ArchPrctl(code=code, value=self.base() if code.is_set else 0)

    def modify_ldt(self, entry: int | None = None) -> Event:
        if entry is None:
            entry = self.r.choice(LDT_ENTRIES)
        return ModifyLdt(entry=entry, desc=self.desc())

    def set_thread_area(self, entry: int | None = None) -> Event:
        entry = self.r.choice(TLS_ENTRIES) if entry is None else entry
        return SetThreadArea(entry_number=entry, desc=self.desc(), abi=self.abi())

    def other(self) -> Event:
        """What the other task does while the task is switched out."""
        makers: list[Callable[[], Event]] = [self.mov_seg, self.wrbase, self.observe]
        makers.append(lambda: ArchPrctl(code=self.r.choice((ArchCode.SET_FS, ArchCode.SET_GS)),
                                        value=self.base()))  # fmt: skip
        if self.f.modify_ldt:
            makers += [self.modify_ldt, self.modify_ldt]
        if self.f.ia32:
            makers.append(self.set_thread_area)
        return self.r.choice(makers)()

    def yield_(self) -> Event:
        n = self.r.choice((0, 0, 1, 1, 2))
        return Yield(other=tuple(self.other() for _ in range(n)))

    def migrate(self) -> Event:
        return Migrate(cpu=self.r.randrange(NCPUS))  # the same CPU, or the other one

    def observe(self) -> Event:
        return Observe(via=self.via())

    def peek(self) -> Event:
        return PtracePeek(field=self.r.choice(list(PtraceField)))

    def poke(self) -> Event:
        fld = self.r.choice(list(PtraceField))
        value = self.selector() if fld in (PtraceField.FS, PtraceField.GS) else self.base()
        return PtracePoke(field=fld, value=value)

    def setregs(self) -> Event:
        if self.r.random() < 0.5:
            return PtraceSetregs(fields=())  # GETREGS + SETREGS of the same values
        slots = self.r.sample(SETREGS_SLOTS, self.r.choice((1, 1, 2)))
        fields = []
        for slot in slots:
            if slot in ("fs", "gs"):
                value = self.selector()
            elif slot in ("ds", "es"):
                value = self.r.choice((0, *OTHER_SELECTORS, *NULL_SELECTORS[1:]))
            else:
                value = self.base()
            fields.append((slot, value))
        return PtraceSetregs(fields=tuple(fields))

    def single(self) -> Event:
        table: list[tuple[float, Callable[[], Event]]] = [
            (12, self.mov_seg), (8, self.wrbase), (6, self.arch_prctl), (10, self.yield_),
            (4, Interrupt), (5, self.migrate), (10, self.observe), (5, Signal), (3, Fork),
        ]  # fmt: skip
        if self.f.modify_ldt:
            table.append((7, self.modify_ldt))
        table.append((4 if self.f.ia32 else 1, self.set_thread_area))
        if self.f.ptrace:
            table += [(3, self.peek), (3, self.poke), (4, self.setregs)]
        if self.f.exec:
            table.append((1.5, Exec))
        weights = [w for w, _ in table]
        return self.r.choices([m for _, m in table], weights)[0]()

    def reload(self) -> Event:
        """An event after which the task's FS/GS state is reloaded, saved or reported."""
        makers: list[Callable[[], Event]] = [
            Yield, self.yield_, self.migrate, Signal, Interrupt, Fork, self.observe,
            lambda: ArchPrctl(code=self.r.choice((ArchCode.GET_FS, ArchCode.GET_GS))),
        ]  # fmt: skip
        if self.f.ptrace:
            makers += [lambda: PtraceSetregs(fields=()), self.peek]
        return self.r.choice(makers)()

    # -- motifs --------------------------------------------------------------------------
    def ldt_change(self) -> list[Event]:
        entry = self.r.choice((0, 0, 1))
        seg = self.seg()
        d1 = UserDesc(base_addr=self.r.choice(LDT_BASES[1:]), limit=0xFFFFF, seg_32bit=1,
                      limit_in_pages=1, useable=self.r.choice((0, 1)))  # fmt: skip
        change = ModifyLdt(entry=entry, desc=self.desc())
        changer = self.r.choice(([change], [Yield(other=(change,))], [change, self.reload()]))
        return [
            ModifyLdt(entry=entry, desc=d1), MovSeg(seg=seg, selector=self.ldt_selector(entry)),
            *changer, self.reload(),
        ]  # fmt: skip

    def null_base(self) -> list[Event]:
        seg = self.seg()
        null = MovSeg(seg=seg, selector=self.r.choice(NULL_SELECTORS))
        base = self.r.choice((
            WrBase(seg=seg, value=self.base(noncanonical=0)),
            ArchPrctl(code=ArchCode.SET_FS if seg is Seg.FS else ArchCode.SET_GS,
                      value=self.base(noncanonical=0)),
        ))  # fmt: skip
        pair = [base, null] if self.r.random() < 0.5 else [null, base]
        return [*pair, self.reload(), self.observe()]

    def kernel_base(self) -> list[Event]:
        seg = self.seg()
        value = self.r.choice(KERNEL_BASES + NONCANONICAL_BASES[:1])
        fld = PtraceField.FS_BASE if seg is Seg.FS else PtraceField.GS_BASE
        setters: list[Event] = [WrBase(seg=seg, value=self.r.choice(KERNEL_BASES))]
        setters.append(ArchPrctl(code=ArchCode.SET_FS if seg is Seg.FS else ArchCode.SET_GS,
                                 value=value))  # fmt: skip
        if self.f.ptrace:
            setters.append(PtracePoke(field=fld, value=value))
        return [self.r.choice(setters), self.reload(), self.observe()]

    def ptrace_round_trip(self) -> list[Event]:
        null = MovSeg(seg=self.seg(), selector=self.r.choice(NULL_SELECTORS))
        before = self.r.choice(([self.mov_seg()], [self.wrbase()], [], [null]))
        trip: list[Event] = [PtraceSetregs(fields=())]
        if self.r.random() < 0.5:
            trip = [self.peek(), self.r.choice((self.poke(), self.setregs())), self.peek()]
        return [*before, *trip, self.observe()]

    def tls(self) -> list[Event]:
        entry = self.r.choice(TLS_ENTRIES)
        return [self.set_thread_area(entry), MovSeg(seg=self.seg(), selector=self.tls_selector(
            entry)), self.reload()]  # fmt: skip

    def motif(self) -> list[Event]:
        makers: list[Callable[[], list[Event]]] = [self.null_base, self.kernel_base]
        if self.f.modify_ldt:
            makers += [self.ldt_change, self.ldt_change]
        if self.f.ptrace:
            makers.append(self.ptrace_round_trip)
        if self.f.ia32:
            makers.append(self.tls)
        events = self.r.choice(makers)()
        if self.r.random() < 0.3:  # signals around it
            where = self.r.randrange(len(events) + 1)
            events.insert(where, Signal())
        return events

    def trace(self, max_events: int) -> Trace:
        length = self.r.randint(1, max_events)
        events: list[Event] = []
        while len(events) < length:
            if self.r.random() < 0.45:
                events += self.motif()
            else:
                events.append(self.single())
        return Trace(events=tuple(events[:length]))


def random_trace(seed: int, index: int, *, max_events: int = 8,
                 features: Features | None = None) -> Trace:  # fmt: skip
    """Trace *index* of *seed*: 1 to *max_events* events (see the module docstring)."""
    if max_events < 1:
        msg = f"max_events must be >= 1, got {max_events}"
        raise ValueError(msg)
    rng = random.Random(f"fsgs-conform/{seed}/{index}")  # noqa: S311 - not cryptography
    return _Gen(rng, features or Features()).trace(max_events)


def random_traces(count: int, seed: int, *, max_events: int = 8,
                  features: Features | None = None) -> list[Trace]:  # fmt: skip
    """Traces 0 .. *count* - 1 of *seed*."""
    return [random_trace(seed, k, max_events=max_events, features=features) for k in range(count)]
