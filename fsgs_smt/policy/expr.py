# SPDX-License-Identifier: MIT
"""Tokenizer and recursive-descent parser for policy expressions and statements.

Layer: policy (front end). Imports `policy.ast`, `errors`, `source`. Expressions
are parsed into syntax trees, never evaluated as Python.

Precedence, lowest first (as in Python, so ``x & 3 == 3`` means ``(x & 3) == 3``)::

    c ? a : b      =>      ||      &&      == != < <= > >= in      |      ^      &
    << >>      + -      *      unary ! ~ -

Statements: ``return EXPR``, ``TARGET := EXPR``, ``NAME(ARGS)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fsgs_smt.errors import InputError
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

_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
MAX_NESTING = 24


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num" | "ident" | "op" | "end"
    text: str
    pos: int


class _Locator:
    """Maps an offset in the source string to a Span."""

    def __init__(self, text: str, span: Span) -> None:
        self.text = text
        self.span = span

    def at(self, pos: int) -> Span:
        before = self.text[:pos]
        newlines = before.count("\n")
        if newlines == 0:
            return self.span.shifted(pos)
        col = pos - before.rfind("\n")
        return Span(self.span.file, self.span.line + newlines, col)


def _tokenize(text: str, loc: _Locator) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InputError(
                loc.at(pos),
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
    def __init__(self, text: str, span: Span) -> None:
        self.loc = _Locator(text, span)
        self.toks = _tokenize(text, self.loc)
        self.i = 0
        self.depth = 0

    # -- token helpers --------------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def span(self, tok: _Tok | None = None) -> Span:
        return self.loc.at((tok or self.tok).pos)

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

    # -- grammar --------------------------------------------------------------------------
    def expr(self) -> ast.Expr:
        start = self.tok
        cond = self.implies()
        if self.at_op("?"):
            self.take()
            then = self.expr()
            self.expect_op(":")
            other = self.expr()
            return ast.Cond(cond, then, other, self.span(start))
        return cond

    def implies(self) -> ast.Expr:
        start = self.tok
        left = self.or_()
        if self.at_op("=>"):
            self.take()
            return ast.Binary("=>", left, self.implies(), self.span(start))
        return left

    def _left_assoc(self, ops: tuple[str, ...], sub: str) -> ast.Expr:
        start = self.tok
        left: ast.Expr = getattr(self, sub)()
        while self.at_op(*ops):
            op = self.take().text
            right: ast.Expr = getattr(self, sub)()
            left = ast.Binary(op, left, right, self.span(start))
        return left

    def or_(self) -> ast.Expr:
        return self._left_assoc(("||",), "and_")

    def and_(self) -> ast.Expr:
        return self._left_assoc(("&&",), "compare")

    def compare(self) -> ast.Expr:
        start = self.tok
        left = self.bitor()
        if self.at_op(*_COMPARE):
            op = self.take().text
            right = self.bitor()
            left = ast.Binary(op, left, right, self.span(start))
            if self.at_op(*_COMPARE):
                raise self.error("'&&' or '||' between comparisons (chains are not allowed)")
        elif self.tok.kind == "ident" and self.tok.text == "in":
            self.take()
            self.expect_op("[")
            items = [self.expr()]
            while self.at_op(","):
                self.take()
                items.append(self.expr())
            self.expect_op("]")
            left = ast.InSet(left, tuple(items), self.span(start))
        return left

    def bitor(self) -> ast.Expr:
        return self._left_assoc(("|",), "bitxor")

    def bitxor(self) -> ast.Expr:
        return self._left_assoc(("^",), "bitand")

    def bitand(self) -> ast.Expr:
        return self._left_assoc(("&",), "shift")

    def shift(self) -> ast.Expr:
        return self._left_assoc(("<<", ">>"), "additive")

    def additive(self) -> ast.Expr:
        return self._left_assoc(("+", "-"), "term")

    def term(self) -> ast.Expr:
        return self._left_assoc(("*",), "unary")

    def unary(self) -> ast.Expr:
        if self.at_op("!", "~", "-"):
            tok = self.take()
            return ast.Unary(tok.text, self.unary(), self.span(tok))
        return self.primary()

    def primary(self) -> ast.Expr:
        tok = self.tok
        if tok.kind == "num":
            self.take()
            text = tok.text.replace("_", "")
            try:
                value = int(text, 16) if text[:2].lower() == "0x" else int(text, 10)
            except ValueError:
                raise InputError(
                    self.span(tok),
                    f"bad number {tok.text!r}: expected decimal digits or 0x and hex digits",
                ) from None
            return ast.Num(value, self.span(tok))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                self.take()
                return ast.Bool(tok.text == "true", self.span(tok))
            return self.name_or_call()
        if self.at_op("("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise InputError(
                    self.span(),
                    f"expression nested too deeply: expected at most {MAX_NESTING} "
                    "levels of parentheses",
                )
            self.take()
            inner = self.expr()
            self.expect_op(")")
            self.depth -= 1
            return inner
        raise self.error("a number, a name, '(' or a unary operator")

    def name_or_call(self) -> ast.Expr:
        start = self.take()
        parts = [start.text]
        if self.at_op("("):
            self.take()
            args: list[ast.Expr] = []
            if not self.at_op(")"):
                args.append(self.expr())
                while self.at_op(","):
                    self.take()
                    args.append(self.expr())
            self.expect_op(")")
            return ast.Call(start.text, tuple(args), self.span(start))
        while self.at_op("."):
            self.take()
            if self.tok.kind != "ident":
                raise self.error("a field name after '.'")
            parts.append(self.take().text)
        index = None
        if self.at_op("["):
            self.take()
            index = self.expr()
            self.expect_op("]")
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


def parse_expr(text: str, span: Span) -> ast.Expr:
    """Parse *text* (found at *span*) as an expression.

    Raises:
        InputError: on a syntax error, located at the offending token.
    """
    parser = _Parser(text, span)
    if parser.tok.kind == "end":
        raise InputError(span, "empty expression: expected an expression")
    result = parser.expr()
    parser.expect_end()
    return result


def parse_stmt(text: str, span: Span) -> ast.Stmt:
    """Parse *text* (found at *span*) as a one-line statement.

    Raises:
        InputError: on a syntax error, located at the offending token.
    """
    parser = _Parser(text, span)
    if parser.tok.kind == "end":
        raise InputError(span, "empty statement: expected a statement")
    return parser.statement()
