# SPDX-License-Identifier: MIT
"""The policy language's syntax tree: frozen dataclasses, each node with its source span.

Layer: policy (front end). Imports `source` only. Never a solver or the terminal.

Expressions have two types: ``bool`` and ``u64`` (every number is a 64-bit
unsigned value; state fields narrower than 64 bits are zero-extended when read
and truncated when written, as the kernel's C does). Segment names ``fs`` and
``gs`` are a third, comparison-only type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fsgs_smt.source import Span

# ----------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Num:
    """An integer literal (decimal or 0x hex)."""

    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    """``true`` or ``false``."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A dotted name such as ``task.gsindex`` or ``ok``, with an optional ``[index]``."""

    parts: tuple[str, ...]
    span: Span
    index: Expr | None = None

    @property
    def dotted(self) -> str:
        """The name as written, without the index."""
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Unary:
    """``!e`` (bool), ``~e`` or ``-e`` (u64)."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Binary:
    """A binary operator; comparisons on u64 are unsigned."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Cond:
    """``c ? a : b``."""

    cond: Expr
    then: Expr
    other: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """``f(a, b)``: a builtin, a policy function, or (as a statement) a procedure."""

    func: str
    args: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class InSet:
    """``e in [a, b, c]``."""

    operand: Expr
    items: tuple[Expr, ...]
    span: Span


Expr = Num | Bool | Name | Unary | Binary | Cond | Call | InSet

# ------------------------------------------------------------------------------ statements


@dataclass(frozen=True, slots=True)
class Assign:
    """``target := value``; *target* is a state field, a frame field or a local."""

    target: Name
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class CallStmt:
    """``proc(args)`` or ``x := effectful_builtin(args)``."""

    call: Call
    into: Name | None
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """``{if: cond, then: [...], else: [...]}``: the guarded statement."""

    cond: Expr
    then: tuple[Stmt, ...]
    other: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class EachSeg:
    """``{each_seg: [...]}``: the body runs for FS, then for GS, with ``seg`` bound."""

    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Return:
    """``return e``: the hook's result; later statements of the hook do not run."""

    value: Expr
    span: Span


Stmt = Assign | CallStmt | If | EachSeg | Return

# ------------------------------------------------------------------------------ top level


@dataclass(frozen=True, slots=True)
class Function:
    """A pure function: ``name: {params: [...], body: EXPR}``."""

    name: str
    params: tuple[str, ...]
    body: Expr
    span: Span
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Procedure:
    """A statement list with parameters, expanded at each call in the caller's context."""

    name: str
    params: tuple[str, ...]
    body: tuple[Stmt, ...]
    span: Span
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Setting:
    """A named policy parameter (bool or u64) that expressions read as ``setting.NAME``."""

    name: str
    value: bool | int
    span: Span
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Hook:
    """What the kernel does at one hook."""

    name: str
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Setregs:
    """PTRACE_SETREGS: the order putreg() is applied in, and whether it stops at an error."""

    order: tuple[str, ...]
    stop_at_first_error: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded (not yet checked) policy, includes already merged."""

    name: str
    title: str
    description: str
    path: str
    settings: dict[str, Setting]
    constants: dict[str, tuple[int, Span]]
    functions: dict[str, Function]
    procedures: dict[str, Procedure]
    hooks: dict[str, Hook]
    setregs: Setregs
    span: Span
    extra_thread: dict[str, int] = field(default_factory=dict)  # policy-declared thread fields
    extra_mm: dict[str, int] = field(default_factory=dict)  # policy-declared mm fields
    text_hash: str = field(default="")
