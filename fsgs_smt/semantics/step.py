# SPDX-License-Identifier: MIT
"""One event of fsgs-trace/1 as a transition of the world, over any value domain.

Layer: semantics. Imports `semantics.*` and `policy.ast` (through `interp`).

This module says *which* hardware transitions and *which* policy hooks an
event consists of, in which order (kernel entry, hooks, the return path); what
a hook does is the policy's business (`interp`), what an instruction does is
the hardware's (`x86`). The return path matters: a system-call return (SYSRET)
keeps a null selector 1..3, an IRET zeroes it (trace-format.md).

The task under study is ``T``. Each CPU has its own other task, another thread
of the same process, which runs on that CPU whenever T is not running there. The
CPUs are in task-relative slots (`state`): T's CPU is always slot 0 (``cpu0``,
its other task ``O0``), and a migration rotates the slots. A stopped task
(ptrace) stays switched out until the next event that is not a tracer operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fsgs_smt.semantics import x86
from fsgs_smt.semantics.domain import Domain, V
from fsgs_smt.semantics.events import (
    USER_REGS_SLOTS,
    Abi,
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
    UserDesc,
    WrBase,
    Yield,
    slot_offset,
)
from fsgs_smt.semantics.interp import Machine
from fsgs_smt.semantics.state import (
    PERCPU_BASE,
    PERCPU_STRIDE,
    STATUS_RUNNING,
    TASK,
    THREAD_KEYS,
    Choice,
    Store,
    layout,
    other_task,
    rotate_slots,
)

# Default thread state of the other tasks (a glibc-like TLS base in FS).
OTHER_FS_BASE = 0x7F0000000000
OTHER_FS_STRIDE = 0x10000

CHILD = "C"  # the transient child of a fork


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """The world after an event and the event's named result values."""

    world: dict[str, V]
    result: dict[str, V]


_FIELD_HOOK = {
    PtraceField.FS: ("sel", Seg.FS),
    PtraceField.GS: ("sel", Seg.GS),
    PtraceField.FS_BASE: ("base", Seg.FS),
    PtraceField.GS_BASE: ("base", Seg.GS),
}
_SLOT_FIELD = {
    "fs": PtraceField.FS, "gs": PtraceField.GS,
    "fs_base": PtraceField.FS_BASE, "gs_base": PtraceField.GS_BASE,
}  # fmt: skip


class Semantics:
    """The transition function of one policy on one CPU model, over the machine's domain."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.d = machine.d
        pol = machine.policy
        self.layout = layout(machine.bounds, pol.extra_thread, pol.extra_mm)
        self.thread_keys = {**THREAD_KEYS, **pol.extra_thread}
        self.cpus = [f"cpu{c}" for c in range(machine.bounds.ncpus)]
        self.others = [other_task(c) for c in range(machine.bounds.ncpus)]

    # ------------------------------------------------------------------ worlds
    def initial_world(self) -> dict[str, V]:
        """The default concrete world: the task on CPU 0 as after exec, the others idle."""
        d = self.d
        values: dict[str, V] = {
            k: (d.boolean(False) if w == 0 else d.bv(0, w)) for k, w in self.layout.items()
        }
        for c, cpu in enumerate(self.cpus):
            values[f"{cpu}.kernel_gs_base"] = d.bv(PERCPU_BASE + c * PERCPU_STRIDE, 64)
            fs_base = d.bv(OTHER_FS_BASE + (c + 1) * OTHER_FS_STRIDE, 64)
            values[f"{other_task(c)}.fsbase"] = fs_base
            if c != 0:
                values[f"{cpu}.fs_base"] = fs_base
        return self.step(values, Exec()).world

    # ------------------------------------------------------------------ helpers
    def _t_cpu(self, store: Store) -> Choice:
        """The task's CPU: slot 0, whose number is ``T.cpu``."""
        return Choice(((self.d.boolean(True), self.cpus[0]),), ident=store.get("T.cpu"))

    def _other(self, store: Store) -> Choice:
        """The other task of the task's CPU."""
        return Choice.one(self.d, self.others[0])

    def _enter(self, store: Store, cpu: Choice, g: V) -> None:
        x86.swapgs(self.d, store, cpu, g)  # entry from user mode

    def _exit_sysret(self, store: Store, cpu: Choice, g: V) -> None:
        x86.swapgs(self.d, store, cpu, g)

    def _exit_iret(self, store: Store, cpu: Choice, g: V) -> None:
        x86.swapgs(self.d, store, cpu, g)
        x86.iret_to_user(self.d, self.m.model, store, cpu, g)

    def _switch(self, store: Store, cpu: Choice, prev: Choice, nxt: Choice, g: V) -> None:
        self.m.run_hook(store, "switch_out", g, threads={"prev": prev}, cpu=cpu, current=True)
        self.m.run_hook(
            store, "switch_in", g, threads={"prev": prev, "next": nxt}, cpu=cpu, current=True
        )

    def _resume(self, store: Store, g: V) -> None:
        """If the task is stopped: its CPU's other task enters the kernel and switches to it."""
        d = self.d
        gg = d.and_(g, store.get("T.stopped"))
        if d.const_bool(gg) is False:
            return
        cpu = self._t_cpu(store)
        self._enter(store, cpu, gg)
        self._switch(store, cpu, self._other(store), Choice.one(d, TASK), gg)
        self._exit_sysret(store, cpu, gg)
        store.set("T.stopped", d.boolean(False), gg)

    def _stop(self, store: Store, g: V) -> None:
        """If the task runs: it enters the kernel and its CPU switches to the other task."""
        d = self.d
        gg = d.and_(g, d.not_(store.get("T.stopped")))
        if d.const_bool(gg) is False:
            return
        cpu = self._t_cpu(store)
        self._enter(store, cpu, gg)
        self._switch(store, cpu, Choice.one(d, TASK), self._other(store), gg)
        self._exit_sysret(store, cpu, gg)
        store.set("T.stopped", d.boolean(True), gg)

    def _syscall(
        self, store: Store, task: Choice, cpu: Choice, g: V, hook: str, *,
        seg: Seg | None = None, args: Mapping[str, V] | None = None, iret: bool = False,
    ) -> V:  # fmt: skip
        """A system call: entry, the policy's hook, and the return (SYSRET, or IRET for
        ``int $0x80``, whose compat entry always returns through IRET)."""
        self._enter(store, cpu, g)
        ret = self.m.run_hook(
            store, hook, g, threads={"task": task}, cpu=cpu, current=True, seg=seg, args=args
        )
        (self._exit_iret if iret else self._exit_sysret)(store, cpu, g)
        return ret

    def _desc_args(self, desc: UserDesc) -> dict[str, V]:
        d = self.d
        return {
            name: d.zext(d.lift(getattr(desc, name), 32), 32, 64)
            for name in (
                "base_addr", "limit", "seg_32bit", "contents", "read_exec_only",
                "limit_in_pages", "seg_not_present", "useable",
            )
        }  # fmt: skip

    def _observe(
        self, store: Store, task: Choice, cpu: Choice, g: V, via: ObserveVia | None
    ) -> dict[str, V]:
        d = self.d
        if via is None:
            via = ObserveVia.RDBASE if self.m.cr4_fsgsbase else ObserveVia.ARCH_PRCTL
        out: dict[str, V] = {
            "fs": cpu.read(store, "fs"), "gs": cpu.read(store, "gs"), "fault": d.bv(0, 2),
        }  # fmt: skip
        if via is ObserveVia.ARCH_PRCTL:
            for seg in (Seg.FS, Seg.GS):
                out[f"{seg.value}_base"] = self._syscall(
                    store, task, cpu, g, "arch_prctl_get", seg=seg
                )
            return out
        out["fs_base"] = cpu.read(store, "fs_base")
        out["gs_base"] = cpu.read(store, "gs_base")
        if via is ObserveVia.RDBASE and not self.m.cr4_fsgsbase:
            out["fault"] = d.bv(3, 2)  # RDFSBASE #UD -> SIGILL
        if via is ObserveVia.FAULT:
            # fsgsbase.c read_base(): the base shows in si_addr of a SIGSEGV, whose handler
            # returns through rt_sigreturn: a full signal round trip after the read.
            self._signal_roundtrip(store, task, cpu, g, handler_observes=False)
        return out

    def _signal_roundtrip(
        self, store: Store, task: Choice, cpu: Choice, g: V, *, handler_observes: bool
    ) -> tuple[dict[str, V] | None, dict[str, V]]:
        d = self.d
        frame: dict[str, V] = {"fs": d.bv(0, 16), "gs": d.bv(0, 16)}
        self._enter(store, cpu, g)
        self.m.run_hook(
            store, "signal_deliver", g, threads={"task": task}, cpu=cpu, current=True, frame=frame
        )
        self._exit_iret(store, cpu, g)
        seen = self._observe(store, task, cpu, g, None) if handler_observes else None
        self._enter(store, cpu, g)  # rt_sigreturn
        self.m.run_hook(
            store, "sigreturn", g, threads={"task": task}, cpu=cpu, current=True, frame=frame
        )
        self._exit_iret(store, cpu, g)
        return seen, frame

    def _fault_status(self, store: Store, fault: V, g: V) -> None:
        d = self.d
        store.set("T.status", fault, d.and_(g, d.not_(d.eq(fault, d.bv(0, 2)))))

    # ------------------------------------------------------------------ user-mode actions
    def _user_op(self, store: Store, event: Event, task: Choice, cpu: Choice, g: V) -> dict[str, V]:
        """An event a running thread performs itself (the task, or the other task)."""
        d = self.d
        m = self.m
        match event:
            case MovSeg(seg=seg, selector=selector):
                sel = d.lift(selector, 16)
                fault = x86.mov_seg(d, m.model, store, m.bounds, cpu, seg, sel, 3, g)
                return {"fault": fault}
            case WrBase(seg=seg, value=value):
                v = d.lift(value, 64)
                fault = x86.wrbase_user(d, m.model, store, cpu, seg, v, m.cr4_fsgsbase, g)
                return {"fault": fault}
            case ArchPrctl(code=code, value=value):
                hook = "arch_prctl_set" if code.is_set else "arch_prctl_get"
                args = {"value": d.lift(value, 64)} if code.is_set else {}
                return {"ret": self._syscall(store, task, cpu, g, hook, seg=code.seg, args=args)}
            case ModifyLdt(entry=entry, desc=desc):
                args = self._desc_args(desc)
                args["entry"] = d.zext(d.lift(entry, 32), 32, 64)
                return {"ret": self._syscall(store, task, cpu, g, "modify_ldt", args=args)}
            case SetThreadArea(entry_number=entry, desc=desc, abi=abi):
                args = self._desc_args(desc)
                args["entry_number"] = d.zext(d.lift(entry, 32), 32, 64)  # -1: 0xffffffff
                args["abi_ia32"] = d.boolean(abi.value == "ia32")
                # int $0x80 (abi ia32) returns through IRET, measured natively (a null
                # selector 3 became 0); the 64-bit syscall 205 returns through SYSRET.
                ret = self._syscall(
                    store, task, cpu, g, "set_thread_area", args=args, iret=abi is Abi.IA32
                )
                return {"ret": ret}
            case Observe(via=via):
                return self._observe(store, task, cpu, g, via)
        msg = f"{type(event).__name__} is not a user-mode action"
        raise TypeError(msg)

    # ------------------------------------------------------------------ the step
    def step(self, world: Mapping[str, V], event: Event) -> StepOutcome:
        """Apply *event* to *world*. A task killed by an earlier fault does nothing ("not-run")."""
        return self.step_any(world, ((self.d.boolean(True), event),))

    def step_any(
        self, world: Mapping[str, V], alternatives: Sequence[tuple[V, Event]]
    ) -> StepOutcome:
        """Apply one of several events, each under its condition (exactly one holds; the
        last is taken when none does).

        An event runs in three phases: the prologue (a stopped task resumes, or, for a
        tracer operation, the running task stops), the event's own work, and the epilogue
        (the task that a yield or a migration switched out is switched back in). `step` is
        this with one alternative; the SMT encoding passes every event variant of a step
        at once, so the prologue and the epilogue, whole context switches, are built once
        and not once per variant. Concretely the phases are exactly one event, in order.
        """
        d = self.d
        g = d.eq(world["T.status"], d.bv(STATUS_RUNNING, 2))
        begun: dict[bool, dict[str, V]] = {}
        worlds: list[tuple[V, dict[str, V]]] = []
        results: list[dict[str, V]] = []
        tails: list[V] = []
        for cond, event in alternatives:
            tracer = isinstance(event, PtracePeek | PtracePoke | PtraceSetregs)
            if tracer not in begun:
                store = Store(d, world)
                (self._stop if tracer else self._resume)(store, g)
                begun[tracer] = store.values
            store = Store(d, begun[tracer])
            result = self._body(store, event, g)
            worlds.append((cond, store.values))
            results.append(result)
            tails.append(d.boolean(isinstance(event, Yield | Migrate)))
        tail = tails[-1]
        for (cond, _), flag in zip(reversed(alternatives[:-1]), reversed(tails[:-1]), strict=True):
            tail = d.ite(cond, flag, tail)
        merged = Store(d, _merge(d, worlds, self.layout))
        self._resume(merged, d.and_(g, tail))
        return StepOutcome(merged.snapshot(self.layout), _merge_results(d, alternatives, results))

    def _body(self, store: Store, event: Event, g: V) -> dict[str, V]:
        """The event's own work, after the prologue; its named results."""
        d = self.d
        m = self.m
        result: dict[str, V] = {"ran": g}
        task = Choice.one(d, TASK)
        cpu = self._t_cpu(store)
        match event:
            case MovSeg() | WrBase() | ArchPrctl() | ModifyLdt() | SetThreadArea() | Observe():
                out = self._user_op(store, event, task, cpu, g)
                result.update(out)
                if "fault" in out:
                    self._fault_status(store, out["fault"], g)
            case Yield(other=other):
                self._stop(store, g)
                other_task_ = self._other(store)
                for action in other:
                    self._user_op(store, action, other_task_, cpu, g)
                # the epilogue switches the task back in
            case Interrupt():
                self._enter(store, cpu, g)
                self._exit_iret(store, cpu, g)
            case Migrate(cpu=target):
                self._stop(store, g)
                rotate_slots(d, store, self.layout, len(self.cpus), d.lift(target, 8), g)
                # the epilogue switches the task back in, on its new CPU
            case Signal():
                seen, frame = self._signal_roundtrip(store, task, cpu, g, handler_observes=True)
                assert seen is not None  # noqa: S101
                result.update({f"handler.{k}": v for k, v in seen.items()})
                result["sigcontext_fs"] = frame["fs"]
                result["sigcontext_gs"] = frame["gs"]
                self._fault_status(store, seen["fault"], g)
            case Fork():
                result.update(self._fork(store, task, cpu, g))
            case Exec():
                self._enter(store, cpu, g)
                m.run_hook(store, "exec", g, threads={"task": task}, cpu=cpu, current=True)
                self._exit_iret(store, cpu, g)  # execve returns through IRET (RCX != RIP)
            case PtracePeek(field=fld):
                kind, seg = _FIELD_HOOK[fld]
                result["ret"] = m.run_hook(
                    store, f"ptrace_peek_{kind}", g, threads={"task": task}, cpu=cpu,
                    current=False, seg=seg,
                )  # fmt: skip
            case PtracePoke(field=fld, value=value):
                result["ret"] = self._poke(store, fld.value, d.lift(value, 64), cpu, g)
            case PtraceSetregs(fields=fields):
                result["ret"] = self._setregs(store, dict(fields), cpu, g)
        return result

    def _fork(self, store: Store, task: Choice, cpu: Choice, g: V) -> dict[str, V]:
        d = self.d
        m = self.m
        child = Choice.one(d, CHILD)
        for key, width in self.thread_keys.items():
            store.values[f"{CHILD}.{key}"] = d.bv(0, width)
        self._enter(store, cpu, g)
        m.run_hook(store, "fork", g, threads={"task": task, "child": child}, cpu=cpu, current=True)
        self._switch(store, cpu, task, child, g)
        self._exit_iret(store, cpu, g)  # ret_from_fork returns through IRET
        seen = self._observe(store, child, cpu, g, None)
        self._enter(store, cpu, g)  # the child exits
        self._switch(store, cpu, child, task, g)
        self._exit_sysret(store, cpu, g)
        self._enter(store, cpu, g)  # the parent's first copy-on-write fault
        self._exit_iret(store, cpu, g)
        return seen

    def _poke(self, store: Store, slot: str, value: V, cpu: Choice, g: V) -> V:
        task = Choice.one(self.d, TASK)
        if slot in _SLOT_FIELD:
            kind, seg = _FIELD_HOOK[_SLOT_FIELD[slot]]
            return self.m.run_hook(
                store, f"ptrace_poke_{kind}", g, threads={"task": task}, cpu=cpu, current=False,
                seg=seg, args={"value": value},
            )  # fmt: skip
        args = {"slot": self.d.bv(slot_offset(slot), 64), "value": value}
        return self.m.run_hook(
            store, "ptrace_poke_other", g, threads={"task": task}, cpu=cpu, current=False, args=args
        )

    def _setregs(self, store: Store, fields: dict[str, V], cpu: Choice, g: V) -> V:
        """PTRACE_GETREGS, replace *fields*, PTRACE_SETREGS (genregs_set: putreg per slot)."""
        d = self.d
        m = self.m
        task = Choice.one(d, TASK)
        regs: dict[str, V] = {}
        for slot in USER_REGS_SLOTS:  # genregs_get(): getreg() of every slot
            if slot in fields:
                regs[slot] = d.lift(fields[slot], 64)
            elif slot in _SLOT_FIELD:
                kind, seg = _FIELD_HOOK[_SLOT_FIELD[slot]]
                regs[slot] = m.run_hook(
                    store, f"ptrace_peek_{kind}", g, threads={"task": task}, cpu=cpu,
                    current=False, seg=seg,
                )  # fmt: skip
            else:
                regs[slot] = m.run_hook(
                    store, "ptrace_peek_other", g, threads={"task": task}, cpu=cpu,
                    current=False, args={"slot": d.bv(slot_offset(slot), 64)},
                )  # fmt: skip
        ret = d.bv(0, 64)
        failed = d.boolean(False)
        stop = m.policy.setregs.stop_at_first_error
        for slot in m.policy.setregs.order:
            gg = d.and_(g, d.not_(failed)) if stop else g
            if d.const_bool(gg) is False:
                break
            r = self._poke(store, slot, regs[slot], cpu, gg)
            err = d.and_(gg, d.not_(d.eq(r, d.bv(0, 64))))
            ret = d.ite(d.and_(err, d.not_(failed)), r, ret)
            failed = d.or_(failed, err)
        return ret


def _merge(
    d: Domain, worlds: Sequence[tuple[V, dict[str, V]]], keys: Mapping[str, int]
) -> dict[str, V]:
    """``ite(c0, w0, ite(c1, w1, ... wn))`` per key (the last world is the default)."""
    merged = dict(worlds[-1][1])
    for cond, world in reversed(worlds[:-1]):
        for k in keys:
            merged[k] = d.ite(cond, world[k], merged[k])
    return merged


def _merge_results(
    d: Domain, alternatives: Sequence[tuple[V, Event]], results: Sequence[dict[str, V]]
) -> dict[str, V]:
    """The named results every alternative has, merged like the worlds."""
    common = [k for k in results[-1] if all(k in r for r in results)]
    merged = {k: results[-1][k] for k in common}
    for (cond, _), result in zip(reversed(alternatives[:-1]), reversed(results[:-1]), strict=True):
        for k in common:
            merged[k] = d.ite(cond, result[k], merged[k])
    return merged
