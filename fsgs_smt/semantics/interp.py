# SPDX-License-Identifier: MIT
"""The policy interpreter: runs a checked policy's hooks over any value domain.

Layer: semantics. Imports `policy.ast`/`policy.vocab` (the language), `semantics.*`.

Every statement runs under a guard (the path condition, minus "already
returned"); a write stores ``ite(guard, new, old)``. In the concrete domain a
guard is a Python bool and false branches are skipped; in the symbolic domain
the same code builds the if-then-else terms of the transition relation. This
is the only place policy statements are given meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fsgs_smt.policy import ast
from fsgs_smt.policy import vocab as voc
from fsgs_smt.semantics import x86
from fsgs_smt.semantics.cpu import CpuModel
from fsgs_smt.semantics.domain import Domain, V
from fsgs_smt.semantics.events import Seg
from fsgs_smt.semantics.state import Bounds, Choice, Store, read_array, write_array

_W64 = 64


@dataclass
class _HookState:
    ret: V
    done: V


@dataclass
class _Env:
    """Names visible at one point of a hook run."""

    threads: Mapping[str, Choice]
    cpu: Choice
    current: V
    seg: Seg | None
    args: Mapping[str, V]
    frame: dict[str, V] | None
    hook: _HookState
    locals: dict[str, V] = field(default_factory=dict)
    params: dict[str, V | Choice] = field(default_factory=dict)

    def with_seg(self, seg: Seg) -> _Env:
        return _Env(
            self.threads, self.cpu, self.current, seg, self.args, self.frame, self.hook,
            self.locals, self.params,
        )  # fmt: skip


class Machine:
    """A policy bound to a CPU model, a world size and settings, over one domain."""

    def __init__(
        self,
        d: Domain,
        policy: ast.Policy,
        model: CpuModel,
        bounds: Bounds,
        settings: Mapping[str, bool | int] | None = None,
    ) -> None:
        self.d = d
        self.policy = policy
        self.model = model
        self.bounds = bounds
        values: dict[str, bool | int] = {k: s.value for k, s in policy.settings.items()}
        values.update(settings or {})
        self.settings = values
        self.cr4_fsgsbase = bool(values["fsgsbase"]) and model.has_fsgsbase
        self.features: dict[str, bool] = {
            "null_seg_bug": model.kernel_null_seg_bug,
            "fsgsbase": self.cr4_fsgsbase,
            "ia32_emulation": bool(values["ia32_emulation"]),
        }

    # ------------------------------------------------------------------ entry point
    def run_hook(
        self,
        store: Store,
        name: str,
        pc: V,
        *,
        threads: Mapping[str, Choice],
        cpu: Choice,
        current: bool,
        seg: Seg | None = None,
        args: Mapping[str, V] | None = None,
        frame: dict[str, V] | None = None,
    ) -> V:
        """Run hook *name* under path condition *pc*; return its result (0 if none)."""
        d = self.d
        state = _HookState(ret=d.bv(0, _W64), done=d.boolean(False))
        env = _Env(threads, cpu, d.boolean(current), seg, args or {}, frame, state)
        self.block(store, self.policy.hooks[name].body, env, pc)
        return state.ret

    # ------------------------------------------------------------------ statements
    def block(self, store: Store, stmts: tuple[ast.Stmt, ...], env: _Env, pc: V) -> None:
        for stmt in stmts:
            if self.d.const_bool(pc) is False:
                return
            self.stmt(store, stmt, env, pc)

    def stmt(self, store: Store, stmt: ast.Stmt, env: _Env, pc: V) -> None:
        d = self.d
        guard = d.and_(pc, d.not_(env.hook.done))
        if d.const_bool(guard) is False:
            return
        match stmt:
            case ast.Assign(target=target, value=value):
                self.assign(store, target, self.eval(store, value, env), env, guard)
            case ast.CallStmt(call=call, into=into):
                result = self.call_stmt(store, call, env, guard)
                if into is not None:
                    self.assign(store, into, result, env, guard)
            case ast.If(cond=cond, then=then, other=other):
                c = self.eval(store, cond, env)
                self.block(store, then, env, d.and_(guard, c))
                if other:
                    self.block(store, other, env, d.and_(guard, d.not_(c)))
            case ast.EachSeg(body=body):
                for seg in (Seg.FS, Seg.GS):
                    self.block(store, body, env.with_seg(seg), guard)
            case ast.Return(value=value):
                env.hook.ret = d.ite(guard, self.eval(store, value, env), env.hook.ret)
                env.hook.done = d.or_(env.hook.done, guard)

    def assign(self, store: Store, target: ast.Name, value: V, env: _Env, guard: V) -> None:
        d = self.d
        if len(target.parts) == 1 and target.index is None:
            name = target.parts[0]
            old = env.locals.get(name)
            if old is None:
                old = d.boolean(False) if d.is_bool(value) else d.bv(0, _W64)
            env.locals[name] = d.ite(guard, value, old)
            return
        root, fld = target.parts[0], target.parts[1]
        if root == "mm":
            if fld == "ldt":
                assert target.index is not None  # noqa: S101 - checked
                idx = self.eval(store, target.index, env)
                write_array(d, store, "mm.ldt", self.bounds.ldt_slots, idx, value, guard)
            else:
                width = voc.MM_FIELDS.get(fld) or self.policy.extra_mm[fld]
                store.set(
                    f"mm.{fld}", d.extract(value, width - 1, 0) if width < _W64 else value, guard
                )
            return
        if root == "frame":
            assert env.frame is not None  # noqa: S101 - checked
            narrowed = d.extract(value, 15, 0)
            env.frame[fld] = d.ite(guard, narrowed, env.frame[fld])
            return
        task = self.thread(env, root)
        if fld in voc.THREAD_ARRAYS:
            assert target.index is not None  # noqa: S101 - checked
            idx = self.eval(store, target.index, env)
            for i in range(voc.THREAD_ARRAYS[fld][0]):
                hit = d.and_(guard, d.eq(idx, d.bv(i, _W64)))
                task.write(store, f"{fld}{i}", value, hit)
            return
        key, width = self.thread_key(target, env)
        task.write(store, key, d.extract(value, width - 1, 0) if width < _W64 else value, guard)

    def call_stmt(self, store: Store, call: ast.Call, env: _Env, guard: V) -> V:
        d = self.d
        proc = self.policy.procedures.get(call.func)
        if proc is not None:
            # A procedure is a C function: its `return` ends the procedure and gives its value.
            state = _HookState(ret=d.bv(0, _W64), done=d.boolean(False))
            inner = _Env(env.threads, env.cpu, env.current, env.seg, env.args, env.frame, state)
            for pname, arg in zip(proc.params, call.args, strict=True):
                inner.params[pname] = self.arg_value(store, arg, env)
            self.block(store, proc.body, inner, guard)
            return state.ret
        builtin = voc.BUILTINS.get(call.func)
        if call.func in self.policy.functions or (builtin is not None and not builtin.effectful):
            return self.eval(store, call, env)
        return self.effect(store, call, env, guard)

    def effect(self, store: Store, call: ast.Call, env: _Env, guard: V) -> V:
        d = self.d
        cpu = env.cpu
        func = call.func
        if func == "load_seg":
            seg = _need_seg(env)
            sel16 = d.extract(self.eval(store, call.args[0], env), 15, 0)
            if seg is Seg.GS:  # load_gs_index(): swapgs; mov sel,%gs; swapgs (entry_64.S)
                x86.swapgs(d, store, cpu, guard)
            fault = x86.mov_seg(d, self.model, store, self.bounds, cpu, seg, sel16, 0, guard)
            if seg is Seg.GS:
                x86.swapgs(d, store, cpu, guard)
            return d.eq(fault, d.bv(x86.FAULT_NONE, 2))
        if func == "wrbase":
            seg = _need_seg(env)
            value = self.eval(store, call.args[0], env)
            ok = x86.canonical(d, value, self.model.va_bits)
            # WRMSR of a non-canonical base is #GP(0) in the kernel (SDM WRMSR; AMD APM 4.5.3).
            store.set("kernel_gp", d.boolean(True), d.and_(guard, d.not_(ok)))
            cpu.write(store, _live_base_key(seg), value, d.and_(guard, ok))
            return d.boolean(True)
        if func == "load_tls":
            task = self.arg_value(store, call.args[0], env)
            assert isinstance(task, Choice)  # noqa: S101 - checked
            for i in range(3):
                cpu.write(store, f"gdt_tls{i}", task.read(store, f"tls{i}"), guard)
            return d.boolean(True)
        if func == "ldt_reset":
            for k in range(self.bounds.ldt_slots):
                store.set(f"mm.ldt{k}", d.bv(0, 64), guard)
            store.set("mm.ldt_n", d.bv(0, 16), guard)
            return d.boolean(True)
        raise AssertionError(func)  # pragma: no cover - the checker admits no other

    def arg_value(self, store: Store, arg: ast.Expr, env: _Env) -> V | Choice:
        if isinstance(arg, ast.Name) and arg.index is None and len(arg.parts) == 1:
            name = arg.parts[0]
            if name in env.threads:
                return env.threads[name]
            param = env.params.get(name)
            if isinstance(param, Choice):
                return param
        return self.eval(store, arg, env)

    # ------------------------------------------------------------------ expressions
    def eval(self, store: Store, e: ast.Expr, env: _Env) -> V:
        d = self.d
        match e:
            case ast.Num(value=value):
                return d.bv(value, _W64)
            case ast.Bool(value=value):
                return d.boolean(value)
            case ast.Name():
                return self.name(store, e, env)
            case ast.Unary(op=op, operand=operand):
                v = self.eval(store, operand, env)
                if op == "!":
                    return d.not_(v)
                if op == "~":
                    return d.bvnot(v, _W64)
                return d.sub(d.bv(0, _W64), v, _W64)
            case ast.Binary(op=op, left=left, right=right):
                if op == "&&":
                    lv = self.eval(store, left, env)
                    if d.const_bool(lv) is False:
                        return lv
                    return d.and_(lv, self.eval(store, right, env))
                if op == "||":
                    lv = self.eval(store, left, env)
                    if d.const_bool(lv) is True:
                        return lv
                    return d.or_(lv, self.eval(store, right, env))
                if op == "=>":
                    lv = self.eval(store, left, env)
                    if d.const_bool(lv) is False:
                        return d.boolean(True)
                    return d.or_(d.not_(lv), self.eval(store, right, env))
                return self.binary(op, self.eval(store, left, env), self.eval(store, right, env))
            case ast.Cond(cond=cond, then=then, other=other):
                c = self.eval(store, cond, env)
                cc = d.const_bool(c)
                if cc is True:
                    return self.eval(store, then, env)
                if cc is False:
                    return self.eval(store, other, env)
                return d.ite(c, self.eval(store, then, env), self.eval(store, other, env))
            case ast.InSet(operand=operand, items=items):
                v = self.eval(store, operand, env)
                result = d.boolean(False)
                for item in items:
                    result = d.or_(result, self._eq(v, self.eval(store, item, env)))
                return result
            case ast.Call(func=func, args=args):
                fn = self.policy.functions.get(func)
                values = [self.eval(store, a, env) for a in args]
                if fn is not None:
                    inner = _Env(env.threads, env.cpu, env.current, None, {}, None, env.hook)
                    inner.params = dict(zip(fn.params, values, strict=True))
                    return self.eval(store, fn.body, inner)
                return self.pure_builtin(store, func, values, args, env)
        raise AssertionError(e)  # pragma: no cover

    def _eq(self, a: V, b: V) -> V:
        if isinstance(a, Seg) or isinstance(b, Seg):
            return self.d.boolean(a is b)
        return self.d.eq(a, b)

    def binary(self, op: str, a: V, b: V) -> V:
        d = self.d
        match op:
            case "==":
                return self._eq(a, b)
            case "!=":
                return d.not_(self._eq(a, b))
            case "<":
                return d.ult(a, b)
            case "<=":
                return d.ule(a, b)
            case ">":
                return d.ult(b, a)
            case ">=":
                return d.ule(b, a)
            case "|":
                return d.bvor(a, b)
            case "^":
                return d.bvxor(a, b)
            case "&":
                return d.bvand(a, b)
            case "<<":
                return d.shl(a, b, _W64)
            case ">>":
                return d.lshr(a, b, _W64)
            case "+":
                return d.add(a, b, _W64)
            case "-":
                return d.sub(a, b, _W64)
            case "*":
                return d.mul(a, b, _W64)
        raise AssertionError(op)  # pragma: no cover

    def pure_builtin(
        self, store: Store, func: str, v: list[V], args: tuple[ast.Expr, ...], env: _Env
    ) -> V:
        d = self.d
        match func:
            case "desc_base":
                return x86.desc_base(d, v[0])
            case "desc_limit":
                return x86.desc_limit(d, v[0])
            case "desc_type":
                return x86.desc_type(d, v[0])
            case "desc_dpl":
                return x86.desc_dpl(d, v[0])
            case "desc_s":
                return x86.desc_s(d, v[0])
            case "desc_present":
                return x86.desc_present(d, v[0])
            case "null_sel":
                return x86.null_sel(d, d.extract(v[0], 15, 0))
            case "canonical":
                return x86.canonical(d, v[0], self.model.va_bits)
            case "loadable":
                sel16 = d.extract(v[0], 15, 0)
                return x86.would_load(d, store, self.bounds, env.cpu, sel16, 3)
            case "bits":
                hi, lo = args[1], args[2]
                assert isinstance(hi, ast.Num) and isinstance(lo, ast.Num)  # noqa: S101
                return d.zext(d.extract(v[0], hi.value, lo.value), hi.value - lo.value + 1, 64)
            case "min":
                return d.ite(d.ult(v[0], v[1]), v[0], v[1])
            case "max":
                return d.ite(d.ult(v[0], v[1]), v[1], v[0])
        raise AssertionError(func)  # pragma: no cover

    # ------------------------------------------------------------------ names
    def thread(self, env: _Env, root: str) -> Choice:
        choice = env.threads.get(root)
        if choice is None:
            param = env.params.get(root)
            assert isinstance(param, Choice)  # noqa: S101 - checked
            return param
        return choice

    def thread_key(self, e: ast.Name, env: _Env) -> tuple[str, int]:
        fld = e.parts[1]
        if fld in voc.THREAD_SEG_ALIASES:
            seg = _need_seg(env)
            fld = voc.THREAD_SEG_ALIASES[fld][0 if seg is Seg.FS else 1]
        width = voc.THREAD_FIELDS.get(fld) or self.policy.extra_thread[fld]
        return fld, width

    def name(self, store: Store, e: ast.Name, env: _Env) -> V:
        d = self.d
        parts = e.parts
        head = parts[0]
        if len(parts) == 1 and e.index is None:
            if head in env.params:
                return env.params[head]
            if head in env.locals:
                return env.locals[head]
            if head in self.policy.constants:
                return d.bv(self.policy.constants[head][0], _W64)
            if head == "fs":
                return Seg.FS
            if head == "gs":
                return Seg.GS
            if head == "seg":
                return _need_seg(env)
            if head == "current":
                return env.current
            raise AssertionError(head)  # pragma: no cover - checked
        fld = parts[1]
        if head in env.threads or isinstance(env.params.get(head), Choice):
            task = self.thread(env, head)
            if fld in voc.THREAD_ARRAYS:
                assert e.index is not None  # noqa: S101 - checked
                idx = self.eval(store, e.index, env)
                result = d.bv(0, _W64)
                for i in reversed(range(voc.THREAD_ARRAYS[fld][0])):
                    hit = d.eq(idx, d.bv(i, _W64))
                    if d.const_bool(hit) is not False:
                        result = d.ite(hit, task.read(store, f"{fld}{i}"), result)
                return result
            key, width = self.thread_key(e, env)
            return d.zext(task.read(store, key), width, _W64)
        if head == "cpu":
            cpu = env.cpu
            if fld == "id":
                if cpu.ident is not None:
                    return d.zext(cpu.ident, 8, _W64)
                return cpu.map_int(d, {p: int(p[3:]) for _, p in cpu}, _W64)
            if fld == "gdt_tls":
                assert e.index is not None  # noqa: S101
                idx = self.eval(store, e.index, env)
                return _cpu_array(d, store, cpu, "gdt_tls", 3, idx)
            width = voc.CPU_FIELDS[fld]
            return d.zext(cpu.read(store, fld), width, _W64)
        if head == "live":
            seg = _need_seg(env)
            if fld == "sel":
                return d.zext(env.cpu.read(store, x86.seg_keys(seg)[0]), 16, _W64)
            return env.cpu.read(store, _live_base_key(seg))
        if head == "mm":
            if fld == "ldt":
                assert e.index is not None  # noqa: S101
                idx = self.eval(store, e.index, env)
                return read_array(d, store, "mm.ldt", self.bounds.ldt_slots, idx)
            width = voc.MM_FIELDS.get(fld) or self.policy.extra_mm[fld]
            return d.zext(store.get(f"mm.{fld}"), width, _W64)
        if head == "frame":
            assert env.frame is not None  # noqa: S101
            return d.zext(env.frame[fld], 16, _W64)
        if head == "arg":
            return env.args[fld]
        if head == "setting":
            value = self.settings[fld]
            return d.boolean(value) if isinstance(value, bool) else d.bv(value, _W64)
        if head == "feature":
            return d.boolean(self.features[fld])
        raise AssertionError(e.dotted)  # pragma: no cover - checked


def _cpu_array(d: Domain, store: Store, cpu: Choice, prefix: str, length: int, idx: V) -> V:
    result = d.bv(0, 64)
    for k in reversed(range(length)):
        result = d.ite(d.eq(idx, d.bv(k, 64)), cpu.read(store, f"{prefix}{k}"), result)
    return result


def _live_base_key(seg: Seg) -> str:
    # In the kernel the user's GS base is the inactive one, in MSR_KERNEL_GS_BASE (SWAPGS).
    return "fs_base" if seg is Seg.FS else "kernel_gs_base"


def _need_seg(env: _Env) -> Seg:
    assert env.seg is not None  # noqa: S101 - the checker requires a segment context
    return env.seg
