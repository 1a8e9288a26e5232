# SPDX-License-Identifier: MIT
"""Check a loaded policy: every name resolves, every type fits, every hook is there.

Layer: policy (front end). Imports `policy.ast`, `policy.vocab`, `errors`.

After `check_policy` succeeds the interpreter may assume a well-formed policy:
names resolve in their hook's context, expressions are bool or u64 where
expected, effectful builtins appear only as statements, procedures are not
recursive, and every required hook and setting exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fsgs_smt.errors import InputError
from fsgs_smt.policy import ast
from fsgs_smt.policy import vocab as V  # noqa: N812 - the vocabulary, read like a namespace
from fsgs_smt.source import Span


@dataclass
class _Ctx:
    """What names mean at one point of a hook (or procedure expansion)."""

    hook: str
    spec: V.HookSpec
    seg: bool
    locals: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    in_function: bool = False
    proc_stack: tuple[str, ...] = ()

    def child(self, *, seg: bool | None = None) -> _Ctx:
        return _Ctx(
            self.hook, self.spec, self.seg if seg is None else seg, self.locals, self.params,
            self.in_function, self.proc_stack,
        )  # fmt: skip


class _Checker:
    def __init__(self, policy: ast.Policy) -> None:
        self.p = policy
        self.fn_stack: list[str] = []

    # ------------------------------------------------------------------ top level
    def run(self) -> None:
        for fname in self.p.extra_thread:
            if (
                fname in V.THREAD_FIELDS
                or fname in V.THREAD_ARRAYS
                or fname in V.THREAD_SEG_ALIASES
            ):
                raise InputError(
                    self.p.span, f"state.thread.{fname}: clashes with a built-in field"
                )
        for fname in self.p.extra_mm:
            if fname in V.MM_FIELDS or fname in V.MM_ARRAYS:
                raise InputError(self.p.span, f"state.mm.{fname}: clashes with a built-in field")
        for name, typ in V.REQUIRED_SETTINGS.items():
            setting = self.p.settings.get(name)
            if setting is None:
                raise InputError(self.p.span, f"missing setting {name!r}: expected a {typ}")
            if (typ == V.BOOL) != isinstance(setting.value, bool):
                raise InputError(setting.span, f"setting {name!r}: expected a {typ}")
        for fn in self.p.functions.values():
            self.function_type(fn)
        for name, hook in self.p.hooks.items():
            if name not in V.HOOKS:
                raise InputError(
                    hook.span, f"unknown hook {name!r}: expected one of {', '.join(V.HOOKS)}"
                )
        for name, spec in V.HOOKS.items():
            if name not in self.p.hooks:
                raise InputError(
                    self.p.span, f"missing hook {name!r} ({spec.doc}): expected a statement list"
                )
            self.block(self.p.hooks[name].body, _Ctx(name, spec, seg=spec.seg_bound))

    # ------------------------------------------------------------------ statements
    def block(self, stmts: tuple[ast.Stmt, ...], ctx: _Ctx) -> None:
        for stmt in stmts:
            self.stmt(stmt, ctx)

    def stmt(self, stmt: ast.Stmt, ctx: _Ctx) -> None:
        match stmt:
            case ast.Assign(target=target, value=value):
                typ = self.expr(value, ctx)
                self.assign(target, typ, ctx)
            case ast.CallStmt(call=call, into=into):
                ctyp = self.call_stmt(call, ctx)
                if into is not None:
                    if ctyp is None:
                        raise InputError(
                            call.span,
                            f"{call.func}() returns nothing: expected a value on the right of ':='",
                        )
                    self.assign(into, ctyp, ctx)
            case ast.If(cond=cond, then=then, other=other):
                self.expect(cond, ctx, V.BOOL, "if condition")
                self.block(then, ctx)
                self.block(other, ctx)
            case ast.EachSeg(body=body, span=span):
                if ctx.seg:
                    raise InputError(span, "each_seg inside a segment context: already bound")
                self.block(body, ctx.child(seg=True))
            case ast.Return(value=value, span=span):
                if not ctx.proc_stack and not ctx.spec.returns:
                    raise InputError(span, f"hook {ctx.hook!r} returns nothing: unexpected return")
                self.expect(value, ctx, V.U64, "return value")

    def assign(self, target: ast.Name, typ: str, ctx: _Ctx) -> None:
        parts = target.parts
        where = target.span
        if len(parts) == 1 and target.index is None:
            name = parts[0]
            if name in ctx.params or self.is_global_name(name) or name in ("current", "seg"):
                raise InputError(where, f"cannot assign to {name!r}: it is not a local variable")
            old = ctx.locals.get(name)
            if old is not None and old != typ:
                raise InputError(where, f"local {name!r} is a {old}: expected a {old}, got a {typ}")
            ctx.locals[name] = typ
            return
        ftype, writable = self.field_type(target, ctx)
        if not writable:
            raise InputError(
                where,
                f"cannot assign to {target.dotted!r}: read-only (CPU registers change only "
                "through load_seg, wrbase and load_tls)",
            )
        if ftype != typ:
            raise InputError(
                where, f"{target.dotted!r} is a {ftype}: expected a {ftype}, got a {typ}"
            )

    def call_stmt(self, call: ast.Call, ctx: _Ctx) -> str | None:
        if call.func in self.p.procedures:
            proc = self.p.procedures[call.func]
            if call.func in ctx.proc_stack:
                chain = " -> ".join((*ctx.proc_stack[ctx.proc_stack.index(call.func) :], call.func))
                raise InputError(
                    call.span,
                    f"procedure {call.func!r} is recursive ({chain}): expected no recursion",
                )
            if len(call.args) != len(proc.params):
                raise InputError(
                    call.span,
                    f"{call.func}() takes {len(proc.params)} arguments, got {len(call.args)}",
                )
            inner = _Ctx(ctx.hook, ctx.spec, ctx.seg, {}, {}, False, (*ctx.proc_stack, call.func))
            for pname, arg in zip(proc.params, call.args, strict=True):
                inner.params[pname] = self.arg_type(arg, ctx)
            self.block(proc.body, inner)
            return V.U64
        builtin = V.BUILTINS.get(call.func)
        if builtin is None:
            if call.func in self.p.functions:
                return self.expr(call, ctx)
            raise InputError(call.span, f"unknown procedure {call.func!r}")
        return self.builtin_call(call, builtin, ctx)

    def arg_type(self, arg: ast.Expr, ctx: _Ctx) -> str:
        if isinstance(arg, ast.Name) and arg.index is None and len(arg.parts) == 1:
            if arg.parts[0] in ctx.spec.threads:
                return V.TASK
            if ctx.params.get(arg.parts[0]) == V.TASK:
                return V.TASK
        return self.expr(arg, ctx)

    # ------------------------------------------------------------------ expressions
    def expect(
        self, e: ast.Expr, ctx: _Ctx, typ: str, what: str, *, allow_bool: bool = False
    ) -> str:
        got = self.expr(e, ctx)
        if got != typ and not (allow_bool and got == V.BOOL):
            raise InputError(_span_of(e), f"{what}: expected a {typ}, got a {got}")
        return got

    def builtin_call(self, call: ast.Call, b: V.Builtin, ctx: _Ctx) -> str | None:
        if ctx.in_function and (b.effectful or call.func == "loadable"):
            raise InputError(call.span, f"{call.func}() cannot be used in a pure function")
        if b.seg_bound and not ctx.seg:
            raise InputError(
                call.span,
                f"{call.func}() needs a segment: use it inside each_seg or a segment hook",
            )
        if len(call.args) != len(b.params):
            raise InputError(
                call.span, f"{call.func}() takes {len(b.params)} arguments, got {len(call.args)}"
            )
        for arg, ptype in zip(call.args, b.params, strict=True):
            got = self.arg_type(arg, ctx)
            if got != ptype:
                raise InputError(
                    _span_of(arg), f"argument of {call.func}(): expected a {ptype}, got a {got}"
                )
        if call.func == "bits":
            for arg in call.args[1:]:
                if not isinstance(arg, ast.Num) or arg.value > 63:
                    raise InputError(_span_of(arg), "bits(): expected a literal bit number 0..63")
            hi, lo = call.args[1], call.args[2]
            assert isinstance(hi, ast.Num) and isinstance(lo, ast.Num)  # noqa: S101 - checked above
            if hi.value < lo.value:
                raise InputError(call.span, "bits(x, hi, lo): expected hi >= lo")
        return b.returns

    def expr(self, e: ast.Expr, ctx: _Ctx) -> str:
        match e:
            case ast.Num(value=value, span=span):
                if value >= 2**64:
                    raise InputError(span, f"number too large: expected < 2**64, got {value:#x}")
                return V.U64
            case ast.Bool():
                return V.BOOL
            case ast.Name():
                return self.name(e, ctx)
            case ast.Unary(op=op, operand=operand):
                if op == "!":
                    self.expect(operand, ctx, V.BOOL, "operand of '!'")
                    return V.BOOL
                self.expect(operand, ctx, V.U64, f"operand of '{op}'")
                return V.U64
            case ast.Binary(op=op, left=left, right=right, span=span):
                if op in ("||", "&&", "=>"):
                    self.expect(left, ctx, V.BOOL, f"left of '{op}'")
                    self.expect(right, ctx, V.BOOL, f"right of '{op}'")
                    return V.BOOL
                if op in ("==", "!="):
                    lt = self.expr(left, ctx)
                    rt = self.expr(right, ctx)
                    if lt != rt:
                        raise InputError(
                            span, f"'{op}' compares a {lt} with a {rt}: expected equal types"
                        )
                    return V.BOOL
                self.expect(left, ctx, V.U64, f"left of '{op}'")
                self.expect(right, ctx, V.U64, f"right of '{op}'")
                return V.BOOL if op in ("<", "<=", ">", ">=") else V.U64
            case ast.Cond(cond=cond, then=then, other=other, span=span):
                self.expect(cond, ctx, V.BOOL, "condition of '?:'")
                tt = self.expr(then, ctx)
                ot = self.expr(other, ctx)
                if tt != ot:
                    raise InputError(span, f"'?:' branches differ: a {tt} and a {ot}")
                return tt
            case ast.InSet(operand=operand, items=items):
                typ = self.expr(operand, ctx)
                for item in items:
                    self.expect(item, ctx, typ, "item of 'in [...]'")
                return V.BOOL
            case ast.Call(func=func, args=args, span=span):
                if func in self.p.functions:
                    fn = self.p.functions[func]
                    if len(args) != len(fn.params):
                        raise InputError(
                            span, f"{func}() takes {len(fn.params)} arguments, got {len(args)}"
                        )
                    for arg in args:
                        self.expect(arg, ctx, V.U64, f"argument of {func}()", allow_bool=True)
                    if func in self.fn_stack:
                        chain = " -> ".join((*self.fn_stack[self.fn_stack.index(func) :], func))
                        raise InputError(
                            span, f"function {func!r} is recursive ({chain}): expected no recursion"
                        )
                    return self.function_type(fn)
                b = V.BUILTINS.get(func)
                if b is None:
                    if func in self.p.procedures:
                        raise InputError(
                            span, f"procedure {func}() used as a value: expected a function"
                        )
                    raise InputError(span, f"unknown function {func!r}")
                if b.effectful:
                    raise InputError(
                        span,
                        f"{func}() changes state: expected it as a statement "
                        f"('{func}(...)' or 'x := {func}(...)')",
                    )
                btyp = self.builtin_call(e, b, ctx)
                assert btyp is not None  # noqa: S101 - pure builtins return a value
                return btyp
        raise AssertionError(e)  # pragma: no cover

    def function_type(self, fn: ast.Function) -> str:
        self.fn_stack.append(fn.name)
        try:
            ctx = _Ctx("", V.HookSpec(()), seg=False, in_function=True)
            ctx.params = dict.fromkeys(fn.params, V.U64)
            return self.expr(fn.body, ctx)
        finally:
            self.fn_stack.pop()

    def is_global_name(self, name: str) -> bool:
        return name in self.p.constants or name in ("fs", "gs")

    def name(self, e: ast.Name, ctx: _Ctx) -> str:
        parts = e.parts
        head = parts[0]
        if len(parts) == 1 and e.index is None:
            if head in ctx.params:
                if ctx.params[head] == V.TASK:
                    raise InputError(e.span, f"{head!r} is a task: expected a value")
                return ctx.params[head]
            if head in ctx.locals:
                return ctx.locals[head]
            if head in self.p.constants:
                return V.U64
            if head in ("fs", "gs"):
                return V.SEG
            if not ctx.in_function:
                if head == "seg":
                    if not ctx.seg:
                        raise InputError(e.span, "'seg' outside a segment context: use each_seg")
                    return V.SEG
                if head == "current":
                    return V.BOOL
            raise InputError(e.span, f"unknown name {head!r}: not a local, parameter or constant")
        if ctx.in_function:
            raise InputError(
                e.span, f"{e.dotted!r} in a pure function: functions see only their parameters"
            )
        typ, _ = self.field_type(e, ctx)
        return typ

    def field_type(self, e: ast.Name, ctx: _Ctx) -> tuple[str, bool]:
        """The type of a dotted state name and whether it may be assigned."""
        parts = e.parts
        head = parts[0]
        task_param = ctx.params.get(head) == V.TASK
        if head in V.THREAD_ROOTS or task_param:
            if head not in ctx.spec.threads and not task_param:
                raise InputError(
                    e.span,
                    f"{head!r} is not available in hook {ctx.hook!r}: expected one of "
                    f"{', '.join(ctx.spec.threads)}",
                )
            return self.thread_field(e, ctx), True
        if len(parts) != 2:
            raise InputError(e.span, f"unknown name {e.dotted!r}: expected ROOT.FIELD")
        fld = parts[1]
        if head == "cpu":
            if fld in V.CPU_ARRAYS:
                self.index(e, ctx, required=True)
                return V.U64, False
            self.index(e, ctx, required=False)
            if fld not in V.CPU_FIELDS:
                raise self.unknown_field(e, "cpu", (*V.CPU_FIELDS, *V.CPU_ARRAYS))
            return V.U64, False
        if head == "live":
            if not ctx.seg:
                raise InputError(e.span, "'live' needs a segment: use it inside each_seg")
            self.index(e, ctx, required=False)
            if fld not in V.LIVE_FIELDS:
                raise self.unknown_field(e, "live", V.LIVE_FIELDS)
            return V.U64, False
        if head == "mm":
            if fld in V.MM_ARRAYS:
                self.index(e, ctx, required=True)
                return V.U64, True
            self.index(e, ctx, required=False)
            if fld not in V.MM_FIELDS and fld not in self.p.extra_mm:
                raise self.unknown_field(e, "mm", (*V.MM_FIELDS, *V.MM_ARRAYS, *self.p.extra_mm))
            return V.U64, True
        self.index(e, ctx, required=False)
        if head == "frame":
            if not ctx.spec.frame:
                raise InputError(e.span, f"'frame' is not available in hook {ctx.hook!r}")
            if fld not in V.FRAME_FIELDS:
                raise self.unknown_field(e, "frame", tuple(V.FRAME_FIELDS))
            return V.U64, True
        if head == "arg":
            args = dict(ctx.spec.args)
            if fld not in args:
                raise self.unknown_field(e, f"arg of hook {ctx.hook!r}", tuple(args))
            return args[fld], False
        if head == "setting":
            setting = self.p.settings.get(fld)
            if setting is None:
                raise self.unknown_field(e, "setting", tuple(self.p.settings))
            return (V.BOOL if isinstance(setting.value, bool) else V.U64), False
        if head == "feature":
            if fld not in V.FEATURES:
                raise self.unknown_field(e, "feature", V.FEATURES)
            return V.BOOL, False
        raise InputError(
            e.span,
            f"unknown name {e.dotted!r}: expected a local, a constant or one of the roots "
            "task, prev, next, child, cpu, live, mm, frame, arg, setting, feature",
        )

    def thread_field(self, e: ast.Name, ctx: _Ctx) -> str:
        if len(e.parts) != 2:
            raise InputError(e.span, f"unknown name {e.dotted!r}: expected THREAD.FIELD")
        fld = e.parts[1]
        if fld in V.THREAD_ARRAYS:
            self.index(e, ctx, required=True)
            return V.U64
        self.index(e, ctx, required=False)
        if fld in V.THREAD_SEG_ALIASES:
            if not ctx.seg:
                raise InputError(
                    e.span,
                    f"{e.dotted!r} needs a segment: use it inside each_seg, or name "
                    f"{'/'.join(V.THREAD_SEG_ALIASES[fld])}",
                )
            return V.U64
        if fld not in V.THREAD_FIELDS and fld not in self.p.extra_thread:
            raise self.unknown_field(
                e,
                "thread",
                (*V.THREAD_FIELDS, *V.THREAD_ARRAYS, *V.THREAD_SEG_ALIASES, *self.p.extra_thread),
            )
        return V.U64

    def index(self, e: ast.Name, ctx: _Ctx, *, required: bool) -> None:
        if e.index is None:
            if required:
                raise InputError(e.span, f"{e.dotted!r} is an array: expected {e.dotted}[INDEX]")
            return
        if not required:
            raise InputError(e.span, f"{e.dotted!r} is not an array: unexpected '[...]'")
        self.expect(e.index, ctx, V.U64, "array index")

    @staticmethod
    def unknown_field(e: ast.Name, what: str, allowed: tuple[str, ...]) -> InputError:
        return InputError(
            e.span, f"unknown field {e.parts[-1]!r} of {what}: expected one of {', '.join(allowed)}"
        )


def _span_of(e: ast.Expr) -> Span:
    return e.span


def check_policy(policy: ast.Policy) -> ast.Policy:
    """Validate *policy*; return it unchanged if it is well formed.

    Raises:
        InputError: the first problem found, located in the policy or library file.
    """
    _Checker(policy).run()
    return policy
