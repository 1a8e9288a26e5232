"""Hypothesis strategies for fsgs-trace/1 events, biased toward the interesting corners.

Selectors: null 0..3, LDT selectors with every RPL, the GDT's user, kernel, system and
TLS entries, beyond the GDT. Bases: 0, small, kernel-half, the TASK_SIZE_MAX edge and
non-canonical values. Descriptors: present/not present, code/data, 16/32-bit.
"""

from __future__ import annotations

from hypothesis import strategies as st

from fsgs_smt.semantics import events as ev

SELECTORS = (
    0, 1, 2, 3, 4, 5, 6, 7, 0xC, 0xF, 0x14, 0x17, 0x1F, 0x08, 0x10, 0x13, 0x18, 0x23, 0x29,
    0x2A, 0x2B, 0x33, 0x3B, 0x43, 0x53, 0x60, 0x63, 0x6B, 0x73, 0x7B, 0x80, 0xFFFF,
)  # fmt: skip
BASES = (
    0, 1, 0x7000, 0x8000, 0x9999000, 0xBAADF00D, 0xFFFFFFFF, 0x200000000, 0x7FFFFFFFEFFF,
    0x7FFFFFFFF000, 0x7FFFFFFFFFFF, 0x800000000000, 0xFFFF800000000000, 0xFFFF800000001000,
    0x00FF000000000000, 0xFFFFFFFFFFFFFFFF,
)  # fmt: skip

selectors = st.one_of(st.sampled_from(SELECTORS), st.integers(0, 0xFFFF))
bases = st.one_of(st.sampled_from(BASES), st.integers(0, 2**64 - 1))
segs = st.sampled_from(list(ev.Seg))
bits1 = st.integers(0, 1)


@st.composite
def user_descs(draw: st.DrawFn) -> ev.UserDesc:
    """A struct user_desc: mostly valid 32-bit data, sometimes code, 16-bit, absent or empty."""
    if draw(st.integers(0, 9)) == 0:  # LDT_empty: the deletion form
        return ev.UserDesc(read_exec_only=1, seg_not_present=1)
    return ev.UserDesc(
        base_addr=draw(st.sampled_from((0, 0x7000, 0x8000, 0xBAADF00D, 0x1337F00D))),
        limit=draw(st.sampled_from((0, 0xFFFFF, 0x10))),
        seg_32bit=draw(st.sampled_from((1, 1, 1, 0))),
        contents=draw(st.sampled_from((0, 0, 1, 2, 3))),
        read_exec_only=draw(st.sampled_from((0, 0, 1))),
        limit_in_pages=draw(bits1),
        seg_not_present=draw(st.sampled_from((0, 0, 0, 1))),
        useable=draw(bits1),
    )


def other_task_events() -> st.SearchStrategy[ev.Event]:
    """What the other task may do while the task is switched out."""
    return st.one_of(
        st.builds(ev.MovSeg, seg=segs, selector=selectors),
        st.builds(ev.WrBase, seg=segs, value=bases),
        st.builds(
            ev.ArchPrctl,
            code=st.sampled_from([ev.ArchCode.SET_FS, ev.ArchCode.SET_GS]),
            value=bases,
        ),
        st.builds(ev.ModifyLdt, entry=st.integers(0, 3), desc=user_descs()),
    )


def events(ncpus: int = 2) -> st.SearchStrategy[ev.Event]:
    """Any fsgs-trace/1 event (including the extensions)."""
    ptrace_fields = st.sampled_from(list(ev.PtraceField))
    setregs_fields = st.lists(
        st.tuples(st.sampled_from(ev.USER_REGS_SLOTS), st.one_of(bases, selectors)),
        max_size=3,
        unique_by=lambda kv: kv[0],
    ).map(tuple)
    return st.one_of(
        st.builds(ev.MovSeg, seg=segs, selector=selectors),
        st.builds(ev.WrBase, seg=segs, value=bases),
        st.builds(ev.ArchPrctl, code=st.sampled_from(list(ev.ArchCode)), value=bases).map(
            lambda e: e if e.code.is_set else ev.ArchPrctl(code=e.code)
        ),
        st.builds(ev.ModifyLdt, entry=st.sampled_from((0, 1, 2, 3, 8192)), desc=user_descs()),
        st.builds(
            ev.SetThreadArea,
            entry_number=st.sampled_from((-1, 12, 13, 14, 11, 15)),
            desc=user_descs(),
            abi=st.sampled_from([ev.Abi.IA32, ev.Abi.IA32, ev.Abi.X64]),
        ),
        st.builds(ev.Yield, other=st.lists(other_task_events(), max_size=2).map(tuple)),
        st.just(ev.Interrupt()),
        st.builds(ev.Migrate, cpu=st.integers(0, ncpus - 1)),
        st.builds(ev.Observe, via=st.sampled_from([None, *ev.ObserveVia])),
        st.builds(ev.PtracePeek, field=ptrace_fields),
        st.builds(ev.PtracePoke, field=ptrace_fields, value=st.one_of(bases, selectors)),
        st.builds(ev.PtraceSetregs, fields=setregs_fields),
        st.just(ev.Signal()),
        st.just(ev.Fork()),
        st.just(ev.Exec()),
    )


def traces(max_events: int = 8, ncpus: int = 2) -> st.SearchStrategy[tuple[ev.Event, ...]]:
    """A short sequence of events."""
    return st.lists(events(ncpus), min_size=1, max_size=max_events).map(tuple)
