# SPDX-License-Identifier: MIT
"""Tokenizer and recursive-descent parser for policy expressions and statements.

Layer: policy (front end). Imports `policy.ast`, `errors`, `source`. Expressions
are parsed into syntax trees, never evaluated as Python.

Precedence, lowest first (as in Python, so ``x & 3 == 3`` means ``(x & 3) == 3``)::

    c ? a : b      =>      ||      &&      == != < <= > >= in      |      ^      &
    << >>      + -      *      unary ! ~ -

Statements: ``return EXPR``, ``TARGET := EXPR``, ``NAME(ARGS)``.

Limits, so that no input makes this parser or the passes after it (which recurse over
the tree) exceed Python's recursion limit: at most `MAX_NESTING` levels of nesting
(parentheses, unary operators, the middle of ``?:``, call arguments, indexes, ``in [...]``
items), and at most `MAX_OPERATORS` binary operators, ``?:`` and ``in`` in one expression
(chains such as ``a + b + c``, ``a => b => c`` or ``c1 ? x : c2 ? y : z`` are parsed by
loops, but they are as deep as they are long in the tree). Numbers are at most `U64_MAX`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fsgs_smt.errors import InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.source import Span

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|=>|\|\||&&|==|!=|<=|>=|<<|>>|[<>|^&+\-*!~?:()\[\],.])
    """,
    re.VERBOSE,
)

T = TypeVar("T")

_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
# binary operators from the lowest precedence on; () marks the comparisons (never chained)
_BINARY: tuple[tuple[str, ...], ...] = (
    ("||",), ("&&",), (), ("|",), ("^",), ("&",), ("<<", ">>"), ("+", "-"), ("*",),
)  # fmt: skip
MAX_NESTING = 24
MAX_OPERATORS = 200
U64_MAX = 2**64 - 1
# more digits than any number up to U64_MAX needs in decimal (20) or hex (16): longer ones
# are refused before being converted (Python limits int() of long decimal strings)
_MAX_DIGITS = 24
_NESTING = (
    f"expression nested too deeply: expected at most {MAX_NESTING} levels of parentheses, "
    "unary operators, '?:', calls, indexes and 'in [...]'"
)

Locate = Callable[[int], Span]
"""Where the character at an offset of an expression's text is in its file."""


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num" | "ident" | "op" | "end"
    text: str
    pos: int


class Locator:
    """Maps an offset in a text that starts at *span* to a Span (columns restart at 1 after
    each newline, as the text's lines are whole lines of its file)."""

    def __init__(self, text: str, span: Span) -> None:
        self.span = span
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def at(self, pos: int) -> Span:
        """The span of the character at offset *pos*."""
        line = bisect_right(self.line_starts, pos) - 1
        if line == 0:
            return self.span.shifted(pos)
        return Span(self.span.file, self.span.line + line, pos - self.line_starts[line] + 1)


def number_value(text: str, span: Span) -> int:
    """The value of a number token: decimal digits, or 0x and hex digits; '_' may separate
    digits.

    Raises:
        InputError: no digits (``0x_``), or a value above `U64_MAX` (refused before a long
            decimal is converted).
    """
    digits = text.replace("_", "")
    hexadecimal = digits[:2].lower() == "0x"
    if hexadecimal:
        digits = digits[2:]
    if not digits:
        raise InputError(
            span, f"bad number {describe(text)}: expected decimal digits or 0x and hex digits"
        )
    significant = digits.lstrip("0")
    if len(significant) <= _MAX_DIGITS:
        value = int(digits, 16 if hexadecimal else 10)
        if value <= U64_MAX:
            return value
    shown = text if len(text) <= 40 else f"{text[:20]}... ({len(significant)} digits)"
    raise InputError(span, f"number out of range: expected at most 2**64-1, got {shown}")


def _tokenize(text: str, loc: Locate) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InputError(
                loc(pos),
                f"unexpected character {text[pos]!r} in expression: expected a name, a number "
                "or an operator",
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


class _Parser:
    def __init__(self, text: str, span: Span, locate: Locate | None = None) -> None:
        self.loc = locate or Locator(text, span).at
        self.toks = _tokenize(text, self.loc)
        self.i = 0
        self.depth = 0
        self.operators = 0

    # -- token helpers --------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def span(self, tok: _Tok | None = None) -> Span:
        return self.loc((tok or self.tok).pos)

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def take(self) -> _Tok:
        tok = self.tok
        self.i += 1
        return tok

    def expect_op(self, op: str) -> _Tok:
        if not self.at_op(op):
            raise self.error(f"'{op}'")
        return self.take()

    def error(self, expected: str) -> InputError:
        got = "end of expression" if self.tok.kind == "end" else repr(self.tok.text)
        return InputError(self.span(), f"syntax error: expected {expected}, got {got}")

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise self.error("an operator or end of expression")

    def operator(self) -> str:
        """Take a binary operator, '?' or 'in', counting it against `MAX_OPERATORS`."""
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise InputError(
                self.span(), f"expression too long: expected at most {MAX_OPERATORS} operators"
            )
        return self.take().text

    def nested(self, parse: Callable[[], T]) -> T:
        """*parse* one level deeper, refused beyond `MAX_NESTING` levels."""
        if self.depth >= MAX_NESTING:
            raise InputError(self.span(), _NESTING)
        self.depth += 1
        result = parse()
        self.depth -= 1
        return result

    # -- grammar --------------------------------------------------------------------------
    def expr(self) -> ast.Expr:
        # c1 ? a : c2 ? b : z, right-associative: a loop over the conditions
        branches: list[tuple[_Tok, ast.Expr, ast.Expr]] = []
        while True:
            start = self.tok
            cond = self.implies()
            if not self.at_op("?"):
                break
            self.operator()
            then = self.nested(self.expr)
            self.expect_op(":")
            branches.append((start, cond, then))
        result = cond
        for start, c, then in reversed(branches):
            result = ast.Cond(c, then, result, self.span(start))
        return result

    def implies(self) -> ast.Expr:
        # a => b => c, right-associative: a loop over the operands
        operands = [(self.tok, self.binary())]
        while self.at_op("=>"):
            self.operator()
            operands.append((self.tok, self.binary()))
        result = operands[-1][1]
        for start, left in reversed(operands[:-1]):
            result = ast.Binary("=>", left, result, self.span(start))
        return result

    def binary(self, level: int = 0) -> ast.Expr:
        """The binary operators of `_BINARY` from *level* on; each level's chain is a loop."""
        if level == len(_BINARY):
            return self.unary()
        ops = _BINARY[level]
        if not ops:
            return self.compare(level + 1)
        start = self.tok
        left = self.binary(level + 1)
        while self.at_op(*ops):
            op = self.operator()
            left = ast.Binary(op, left, self.binary(level + 1), self.span(start))
        return left

    def compare(self, level: int) -> ast.Expr:
        start = self.tok
        left = self.binary(level)
        if self.at_op(*_COMPARE):
            op = self.operator()
            right = self.binary(level)
            left = ast.Binary(op, left, right, self.span(start))
            if self.at_op(*_COMPARE):
                raise self.error("'&&' or '||' between comparisons (chains are not allowed)")
        elif self.tok.kind == "ident" and self.tok.text == "in":
            self.operator()
            items = self.nested(self.in_items)
            left = ast.InSet(left, items, self.span(start))
        return left

    def in_items(self) -> tuple[ast.Expr, ...]:
        self.expect_op("[")
        items = [self.expr()]
        while self.at_op(","):
            self.take()
            items.append(self.expr())
        self.expect_op("]")
        return tuple(items)

    def unary(self) -> ast.Expr:
        # ! ~ - prefixes: a loop, each one a level of nesting (a level of the tree)
        ops: list[_Tok] = []
        while self.at_op("!", "~", "-"):
            if self.depth >= MAX_NESTING:
                raise InputError(self.span(), _NESTING)
            self.depth += 1
            ops.append(self.take())
        result = self.primary()
        self.depth -= len(ops)
        for tok in reversed(ops):
            result = ast.Unary(tok.text, result, self.span(tok))
        return result

    def primary(self) -> ast.Expr:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            return ast.Num(number_value(tok.text, self.span(tok)), self.span(tok))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                self.take()
                return ast.Bool(tok.text == "true", self.span(tok))
            return self.name_or_call()
        if self.at_op("("):
            return self.nested(self.parenthesized)
        raise self.error("a number, a name, '(' or a unary operator")

    def parenthesized(self) -> ast.Expr:
        self.expect_op("(")
        inner = self.expr()
        self.expect_op(")")
        return inner

    def call_args(self) -> tuple[ast.Expr, ...]:
        self.expect_op("(")
        args: list[ast.Expr] = []
        if not self.at_op(")"):
            args.append(self.expr())
            while self.at_op(","):
                self.take()
                args.append(self.expr())
        self.expect_op(")")
        return tuple(args)

    def bracketed(self) -> ast.Expr:
        self.expect_op("[")
        index = self.expr()
        self.expect_op("]")
        return index

    def name_or_call(self) -> ast.Expr:
        start = self.take()
        parts = [start.text]
        if self.at_op("("):
            return ast.Call(start.text, self.nested(self.call_args), self.span(start))
        while self.at_op("."):
            self.take()
            if self.tok.kind != "ident":
                raise self.error("a field name after '.'")
            parts.append(self.take().text)
        index = self.nested(self.bracketed) if self.at_op("[") else None
        return ast.Name(tuple(parts), self.span(start), index)

    def statement(self) -> ast.Stmt:
        start = self.tok
        if start.kind == "ident" and start.text == "return":
            self.take()
            value = self.expr()
            self.expect_end()
            return ast.Return(value, self.span(start))
        first = self.expr()
        if self.at_op(":="):
            self.take()
            if not isinstance(first, ast.Name):
                raise InputError(
                    self.span(start),
                    "bad assignment target: expected a field or variable name before ':='",
                )
            value = self.expr()
            self.expect_end()
            if isinstance(value, ast.Call):
                return ast.CallStmt(value, first, self.span(start))
            return ast.Assign(first, value, self.span(start))
        self.expect_end()
        if isinstance(first, ast.Call):
            return ast.CallStmt(first, None, self.span(start))
        raise InputError(
            self.span(start),
            "not a statement: expected 'return EXPR', 'NAME := EXPR' or a procedure call",
        )


def parse_expr(text: str, span: Span, locate: Locate | None = None) -> ast.Expr:
    """Parse *text* (found at *span*) as an expression.

    *locate* maps an offset in *text* to its place in the file, where the text is not the
    file's characters from *span* on (a quoted YAML scalar's value, escapes decoded).

    Raises:
        InputError: on a syntax error, a number out of range, nesting deeper than
            `MAX_NESTING` or more than `MAX_OPERATORS` operators, located at the token.
    """
    parser = _Parser(text, span, locate)
    if parser.tok.kind == "end":
        raise InputError(span, "empty expression: expected an expression")
    result = parser.expr()
    parser.expect_end()
    return result


def parse_stmt(text: str, span: Span, locate: Locate | None = None) -> ast.Stmt:
    """Parse *text* (found at *span*) as a one-line statement (*locate* as in `parse_expr`).

    Raises:
        InputError: as `parse_expr`.
    """
    parser = _Parser(text, span, locate)
    if parser.tok.kind == "end":
        raise InputError(span, "empty statement: expected a statement")
    return parser.statement()
