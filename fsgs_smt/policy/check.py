# SPDX-License-Identifier: MIT
"""Check a loaded policy: every name resolves, every type fits, every hook is there.

Layer: policy (front end). Imports `policy.ast`, `policy.vocab`, `errors`.

After `check_policy` succeeds the interpreter may assume a well-formed policy:
names resolve in their hook's context, expressions are bool or u64 where
expected (segment names only in comparisons), effectful builtins appear only as
statements, a local is read only where every path to it assigned it, a hook or
procedure whose value is used returns on every path, functions and procedures are
neither recursive nor named like a builtin, and every required hook and setting exists.

Functions and procedures are inlined where they are called (by the interpreter, and so
by the SMT encoding): their expansion is bounded (`MAX_INLINED_NODES`,
`MAX_INLINED_DEPTH`) so that no policy makes a run exponential or recurse too deep. Each
function is checked once; each procedure once per context it is called in (its hook, the
segment, its arguments' types), and once on its own if it is called nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from fsgs_smt.errors import InputError
from fsgs_smt.policy import ast
from fsgs_smt.policy import vocab as V  # noqa: N812 - the vocabulary, read like a namespace
from fsgs_smt.source import Span

MAX_INLINED_NODES = 20_000
"""The most syntax-tree nodes a hook, function or procedure may run once the functions and
procedures it calls are inlined (each ``each_seg`` body counts twice): the interpreter
visits every one, per event and per symbolic step."""
MAX_INLINED_DEPTH = 256
"""The deepest a hook, function or procedure may nest once inlined (expression and
statement levels, plus one per call): every pass over it recurses that deep."""

_ANY = "any"  # the type of a parameter of a procedure checked on its own, until first used
# a procedure called nowhere is checked in the most permissive context: every thread root,
# every hook argument, the signal frame, a bound segment (and each_seg allowed)
_ANY_HOOK = V.HookSpec(
    V.THREAD_ROOTS, seg_bound=True,
    args=tuple({n: t for spec in V.HOOKS.values() for n, t in spec.args}.items()), frame=True,
)  # fmt: skip


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
    assigned: set[str] = field(default_factory=set)  # locals assigned on every path to here
    alone: bool = False  # a procedure checked on its own, in the `_ANY_HOOK` context

    def child(self, *, seg: bool | None = None) -> _Ctx:
        return _Ctx(
            self.hook, self.spec, self.seg if seg is None else seg, self.locals, self.params,
            self.in_function, self.proc_stack, self.assigned, self.alone,
        )  # fmt: skip


def check_bits(call: ast.Call) -> None:
    """``bits(x, hi, lo)``: *hi* and *lo* literal bit numbers, ``63 >= hi >= lo``.

    Shared with the invariant checker (`policy.invariants`), whose expressions have ``bits`` too.

    Raises:
        InputError: at the bound that is not a literal in 0..63, or at the call if hi < lo.
    """
    for arg in call.args[1:]:
        if not isinstance(arg, ast.Num) or arg.value > 63:
            raise InputError(_span_of(arg), "bits(): expected a literal bit number 0..63")
    hi, lo = call.args[1], call.args[2]
    assert isinstance(hi, ast.Num) and isinstance(lo, ast.Num)  # noqa: S101 - checked above
    if hi.value < lo.value:
        raise InputError(call.span, "bits(x, hi, lo): expected hi >= lo")


class _Checker:
    def __init__(self, policy: ast.Policy) -> None:
        self.p = policy
        self.fn_types: dict[str, str] = {}  # function -> the type of its body
        # (procedure, hook, segment bound, checked alone, argument types) -> returns on
        # every path: a procedure is checked once per context it is expanded in
        self.procs: dict[tuple[str, str, bool, bool, tuple[str, ...]], bool] = {}
        self.checked: set[str] = set()  # procedures checked in some context

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
        self.definitions()
        for name, hook in self.p.hooks.items():
            if name not in V.HOOKS:
                raise InputError(
                    hook.span, f"unknown hook {name!r}: expected one of {', '.join(V.HOOKS)}"
                )
        # no recursion, and bounded expansions, before any pass follows a call
        _Inlining(self.p).run()
        for fn in self.p.functions.values():
            self.function_type(fn)
        for name, spec in V.HOOKS.items():
            if name not in self.p.hooks:
                raise InputError(
                    self.p.span, f"missing hook {name!r} ({spec.doc}): expected a statement list"
                )
            hook = self.p.hooks[name]
            returns = self.block(hook.body, _Ctx(name, spec, seg=spec.seg_bound))
            if spec.returns and not returns:
                raise InputError(
                    hook.span,
                    f"hook {name!r} may end without a value: expected a return at the end "
                    "of every path",
                )
        for proc in self.p.procedures.values():  # those called nowhere: on their own
            if proc.name not in self.checked:
                ctx = _Ctx("", _ANY_HOOK, seg=True, proc_stack=(proc.name,), alone=True)
                ctx.params = dict.fromkeys(proc.params, _ANY)
                self.block(proc.body, ctx)

    def definitions(self) -> None:
        """Functions and procedures have names of their own."""
        defs: list[tuple[str, ast.Function | ast.Procedure]] = [
            *(("function", f) for f in self.p.functions.values()),
            *(("procedure", p) for p in self.p.procedures.values()),
        ]
        for kind, d in defs:
            if d.name in V.BUILTINS:
                raise InputError(
                    d.span,
                    f"{kind} {d.name!r} has the name of a builtin: expected another name "
                    f"(the builtins are {', '.join(V.BUILTINS)})",
                )
            if kind == "procedure" and d.name in self.p.functions:
                raise InputError(
                    d.span,
                    f"procedure {d.name!r} has the name of a function (at "
                    f"{self.p.functions[d.name].span}): expected another name",
                )

    # ------------------------------------------------------------------ statements
    def block(self, stmts: tuple[ast.Stmt, ...], ctx: _Ctx) -> bool:
        """Check *stmts*; whether every path through them returns.

        Statements after a return are checked like any others, and for definite assignment
        a path that returned goes on: a local that one branch of an ``if`` assigns is not
        assigned after it, even where the other branch returned. The symbolic interpreter
        runs what follows a return too, under a guard that constant folding may not show
        to be false (while a constant condition skips an assignment)."""
        returns = False
        for stmt in stmts:
            returns = self.stmt(stmt, ctx) or returns
        return returns

    def stmt(self, stmt: ast.Stmt, ctx: _Ctx) -> bool:
        match stmt:
            case ast.Assign(target=target, value=value):
                typ = self.expr(value, ctx)
                self.assign(target, typ, ctx, value)
            case ast.CallStmt(call=call, into=into):
                ctyp = self.call_stmt(call, ctx, into is not None)
                if into is not None:
                    if ctyp is None:
                        raise InputError(
                            call.span,
                            f"{call.func}() returns nothing: expected a value on the right of ':='",
                        )
                    self.assign(into, ctyp, ctx)
            case ast.If(cond=cond, then=then, other=other):
                self.expect(cond, ctx, V.BOOL, "if condition")
                before = ctx.assigned
                ctx.assigned = set(before)
                then_returns = self.block(then, ctx)
                after_then, ctx.assigned = ctx.assigned, set(before)
                other_returns = self.block(other, ctx)
                ctx.assigned &= after_then
                return then_returns and other_returns
            case ast.EachSeg(body=body, span=span):
                if ctx.seg and not ctx.alone:
                    raise InputError(span, "each_seg inside a segment context: already bound")
                inner = ctx.child(seg=True)
                returns = self.block(body, inner)
                ctx.assigned = inner.assigned
                return returns
            case ast.Return(value=value, span=span):
                if not ctx.proc_stack and not ctx.spec.returns:
                    raise InputError(span, f"hook {ctx.hook!r} returns nothing: unexpected return")
                self.expect(value, ctx, V.U64, "return value")
                return True
        return False

    def assign(self, target: ast.Name, typ: str, ctx: _Ctx, value: ast.Expr | None = None) -> None:
        parts = target.parts
        where = target.span
        if len(parts) == 1 and target.index is None:
            name = parts[0]
            if name in ctx.params or self.is_global_name(name) or name in ("current", "seg"):
                raise InputError(where, f"cannot assign to {name!r}: it is not a local variable")
            if typ == V.SEG:
                raise InputError(
                    where,
                    f"local {name!r} gets a segment name: expected a bool or a u64 (fs and gs "
                    "are only compared)",
                )
            old = ctx.locals.get(name)
            if old is not None and old != typ and _ANY not in (old, typ):
                raise InputError(where, f"local {name!r} is a {old}: expected a {old}, got a {typ}")
            if old is None or old == _ANY:
                ctx.locals[name] = typ
            ctx.assigned.add(name)
            return
        ftype, writable = self.field_type(target, ctx)
        if not writable:
            raise InputError(
                where,
                f"cannot assign to {target.dotted!r}: read-only (CPU registers change only "
                "through load_seg, wrbase and load_tls)",
            )
        if typ not in (ftype, _ANY):
            raise InputError(
                where, f"{target.dotted!r} is a {ftype}: expected a {ftype}, got a {typ}"
            )
        if value is not None:
            self.bind(value, ftype, ctx)

    def call_stmt(self, call: ast.Call, ctx: _Ctx, value: bool) -> str | None:
        """Check a call statement; the type of its value (None: it has none). *value*: the
        value is used (``x := call``)."""
        if call.func in self.p.procedures:
            proc = self.p.procedures[call.func]
            if len(call.args) != len(proc.params):
                raise InputError(
                    call.span,
                    f"{call.func}() takes {len(proc.params)} arguments, got {len(call.args)}",
                )
            types = tuple(self.arg_type(arg, ctx) for arg in call.args)
            if not self.procedure(proc, ctx, types) and value:
                raise InputError(
                    call.span,
                    f"{call.func}() may end without a value: expected a procedure that "
                    "returns on every path on the right of ':='",
                )
            return V.U64
        builtin = V.BUILTINS.get(call.func)
        if builtin is None:
            if call.func in self.p.functions:
                return self.expr(call, ctx)
            raise InputError(call.span, f"unknown procedure {call.func!r}")
        return self.builtin_call(call, builtin, ctx)

    def procedure(self, proc: ast.Procedure, ctx: _Ctx, types: tuple[str, ...]) -> bool:
        """Check *proc* expanded in *ctx* with arguments of *types* (once per such context);
        whether it returns on every path."""
        key = (proc.name, ctx.hook, ctx.seg, ctx.alone, types)
        if key not in self.procs:
            inner = _Ctx(
                ctx.hook, ctx.spec, ctx.seg, proc_stack=(*ctx.proc_stack, proc.name),
                alone=ctx.alone,
            )  # fmt: skip
            inner.params = dict(zip(proc.params, types, strict=True))
            self.procs[key] = self.block(proc.body, inner)
            self.checked.add(proc.name)
        return self.procs[key]

    def arg_type(self, arg: ast.Expr, ctx: _Ctx) -> str:
        if isinstance(arg, ast.Name) and arg.index is None and len(arg.parts) == 1:
            if arg.parts[0] in ctx.spec.threads:
                return V.TASK
            if ctx.params.get(arg.parts[0]) in (V.TASK, _ANY):  # _ANY: bound by the caller
                return ctx.params[arg.parts[0]]
        return self.expr(arg, ctx)

    # ------------------------------------------------------------------ expressions
    def expect(self, e: ast.Expr, ctx: _Ctx, typ: str, what: str) -> str:
        got = self.expr(e, ctx)
        if got != typ and _ANY not in (got, typ):
            raise InputError(_span_of(e), f"{what}: expected a {typ}, got a {got}")
        self.bind(e, typ, ctx)
        return got

    @staticmethod
    def bind(e: ast.Expr, typ: str, ctx: _Ctx) -> None:
        """A parameter of a procedure checked on its own (`_ANY`) takes the type of its first
        use as a *typ*."""
        if (
            isinstance(e, ast.Name) and e.index is None and len(e.parts) == 1
            and ctx.params.get(e.parts[0]) == _ANY and typ != _ANY
        ):  # fmt: skip
            ctx.params[e.parts[0]] = typ

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
            if got not in (ptype, _ANY):
                raise InputError(
                    _span_of(arg), f"argument of {call.func}(): expected a {ptype}, got a {got}"
                )
            self.bind(arg, ptype, ctx)
        if call.func == "bits":
            check_bits(call)
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
                    if lt != rt and _ANY not in (lt, rt):
                        raise InputError(
                            span, f"'{op}' compares a {lt} with a {rt}: expected equal types"
                        )
                    self.bind(left, rt, ctx)
                    self.bind(right, lt, ctx)
                    return V.BOOL
                self.expect(left, ctx, V.U64, f"left of '{op}'")
                self.expect(right, ctx, V.U64, f"right of '{op}'")
                return V.BOOL if op in ("<", "<=", ">", ">=") else V.U64
            case ast.Cond(cond=cond, then=then, other=other, span=span):
                self.expect(cond, ctx, V.BOOL, "condition of '?:'")
                tt = self.expr(then, ctx)
                ot = self.expr(other, ctx)
                if tt != ot and _ANY not in (tt, ot):
                    raise InputError(span, f"'?:' branches differ: a {tt} and a {ot}")
                if V.SEG in (tt, ot):
                    raise InputError(
                        span, "'?:' chooses a segment name: expected bool or u64 branches "
                        "(fs and gs are only compared)",
                    )  # fmt: skip
                return ot if tt == _ANY else tt
            case ast.InSet(operand=operand, items=items):
                typ = self.expr(operand, ctx)
                for item in items:
                    got = self.expect(item, ctx, typ, "item of 'in [...]'")
                    if typ == _ANY:
                        self.bind(operand, got, ctx)
                        typ = got
                return V.BOOL
            case ast.Call(func=func, args=args, span=span):
                if func in self.p.functions:
                    fn = self.p.functions[func]
                    if len(args) != len(fn.params):
                        raise InputError(
                            span, f"{func}() takes {len(fn.params)} arguments, got {len(args)}"
                        )
                    for arg in args:
                        self.expect(arg, ctx, V.U64, f"argument of {func}()")
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
        """The type of *fn*'s body (its parameters are u64), checked once."""
        if fn.name not in self.fn_types:
            ctx = _Ctx("", V.HookSpec(()), seg=False, in_function=True)
            ctx.params = dict.fromkeys(fn.params, V.U64)
            self.fn_types[fn.name] = self.expr(fn.body, ctx)
        return self.fn_types[fn.name]

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
                if head not in ctx.assigned:
                    raise InputError(
                        e.span,
                        f"local {head!r} may be unassigned here: expected an assignment to it "
                        "on every path before this use",
                    )
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
        if ctx.params.get(head) == _ANY:
            ctx.params[head] = V.TASK
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
                hook = f"hook {ctx.hook!r}" if ctx.hook else "any hook"
                raise self.unknown_field(e, f"arg of {hook}", tuple(args))
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


_Key = tuple[str, str]  # ("function" | "procedure" | "hook", name)
_Call = tuple[_Key, int, int, Span]  # (callee, times, depth of the call, where)


@dataclass
class _Body:
    """One definition's own syntax: its nodes (each_seg bodies twice), its depth, and its
    calls of functions and procedures: (callee, times, depth of the call, where)."""

    nodes: int = 0
    depth: int = 0
    calls: list[_Call] = field(default_factory=list)


class _Inlining:
    """The call graph of a policy's functions, procedures and hooks: no recursion, and each
    one's size and depth once its calls are inlined within `MAX_INLINED_NODES` and
    `MAX_INLINED_DEPTH`. Computed bottom-up, each definition once, and walked without
    recursion through calls (a chain of calls may be long)."""

    def __init__(self, policy: ast.Policy) -> None:
        self.p = policy
        self.size: dict[_Key, int] = {}
        self.depth: dict[_Key, int] = {}

    def run(self) -> None:
        roots: list[_Key] = [
            *(("function", n) for n in self.p.functions),
            *(("procedure", n) for n in self.p.procedures),
            *(("hook", n) for n in self.p.hooks),
        ]
        bodies: dict[_Key, _Body] = {}
        for root in roots:
            if root in self.size:
                continue
            path: list[_Key] = [root]  # the definitions being done, each calling the next
            todo: list[Iterator[_Call]] = [iter(self.body(root, bodies).calls)]
            while todo:
                call = next(todo[-1], None)
                if call is None:
                    self.done(path[-1], bodies[path[-1]])
                    path.pop()
                    todo.pop()
                    continue
                callee, _, _, span = call
                if callee in self.size:
                    continue
                if callee in path:
                    chain = " -> ".join(n for _, n in (*path[path.index(callee) :], callee))
                    raise InputError(
                        span, f"{callee[0]} {callee[1]!r} is recursive ({chain}): expected no "
                        "recursion",
                    )  # fmt: skip
                path.append(callee)
                todo.append(iter(self.body(callee, bodies).calls))

    def body(self, key: _Key, bodies: dict[_Key, _Body]) -> _Body:
        if key not in bodies:
            out = _Body()
            kind, name = key
            if kind == "function":
                self.expr(self.p.functions[name].body, 1, 1, out)
            else:
                defn = self.p.procedures[name] if kind == "procedure" else self.p.hooks[name]
                self.stmts(defn.body, 1, 1, out)
            bodies[key] = out
        return bodies[key]

    def done(self, key: _Key, body: _Body) -> None:
        """Size and depth of *key*, whose callees are done: refused if too large."""
        size = body.nodes + sum(times * self.size[callee] for callee, times, _, _ in body.calls)
        depth = max([body.depth, *(at + self.depth[callee] for callee, _, at, _ in body.calls)])
        kind, name = key
        defn: ast.Function | ast.Procedure | ast.Hook = (
            self.p.functions[name] if kind == "function"
            else self.p.procedures[name] if kind == "procedure" else self.p.hooks[name]
        )  # fmt: skip
        if size > MAX_INLINED_NODES:
            raise InputError(
                defn.span,
                f"{kind} {name!r} is too large once the functions and procedures it calls "
                f"are inlined ({size} nodes): expected at most {MAX_INLINED_NODES}",
            )
        if depth > MAX_INLINED_DEPTH:
            raise InputError(
                defn.span,
                f"{kind} {name!r} nests too deeply once the functions and procedures it calls "
                f"are inlined ({depth} levels): expected at most {MAX_INLINED_DEPTH}",
            )
        self.size[key], self.depth[key] = size, depth

    def stmts(self, stmts: tuple[ast.Stmt, ...], depth: int, times: int, out: _Body) -> None:
        for stmt in stmts:
            out.nodes += times
            out.depth = max(out.depth, depth)
            match stmt:
                case ast.Assign(target=target, value=value):
                    self.expr(target, depth + 1, times, out)
                    self.expr(value, depth + 1, times, out)
                case ast.CallStmt(call=call, into=into):
                    if into is not None:
                        self.expr(into, depth + 1, times, out)
                    if call.func in self.p.procedures:
                        for arg in call.args:
                            self.expr(arg, depth + 1, times, out)
                        # two levels: a call runs deeper in the passes than an if
                        out.calls.append((("procedure", call.func), times, depth + 1, call.span))
                    else:
                        self.expr(call, depth + 1, times, out)
                case ast.If(cond=cond, then=then, other=other):
                    self.expr(cond, depth + 1, times, out)
                    self.stmts(then, depth + 1, times, out)
                    self.stmts(other, depth + 1, times, out)
                case ast.EachSeg(body=body):
                    self.stmts(body, depth + 1, 2 * times, out)  # for FS, then for GS
                case ast.Return(value=value):
                    self.expr(value, depth + 1, times, out)

    def expr(self, e: ast.Expr, depth: int, times: int, out: _Body) -> None:
        out.nodes += times
        out.depth = max(out.depth, depth)
        match e:
            case ast.Name(index=index) if index is not None:
                self.expr(index, depth + 1, times, out)
            case ast.Unary(operand=operand):
                self.expr(operand, depth + 1, times, out)
            case ast.Binary(left=left, right=right):
                self.expr(left, depth + 1, times, out)
                self.expr(right, depth + 1, times, out)
            case ast.Cond(cond=cond, then=then, other=other):
                for part in (cond, then, other):
                    self.expr(part, depth + 1, times, out)
            case ast.InSet(operand=operand, items=items):
                for part in (operand, *items):
                    self.expr(part, depth + 1, times, out)
            case ast.Call(func=func, args=args, span=span):
                for arg in args:
                    self.expr(arg, depth + 1, times, out)
                if func in self.p.functions:
                    out.calls.append((("function", func), times, depth, span))


def check_policy(policy: ast.Policy) -> ast.Policy:
    """Validate *policy*; return it unchanged if it is well formed.

    Raises:
        InputError: the first problem found, located in the policy or library file.
    """
    _Checker(policy).run()
    return policy
