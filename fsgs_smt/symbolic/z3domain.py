# SPDX-License-Identifier: MIT
"""The symbolic value domain: z3 bitvector and boolean terms.

Layer: symbolic. Imports z3 and `semantics.domain` only.

Why z3 terms rather than pysmt: the engines need z3's incremental solving
with assumptions, unsat cores and Spacer on the same terms, and a pysmt term
would be converted to z3 for every query; bitwuzla is reached through
``to_smt2()`` text either way. Measured figures are in ``bench/domain_choice.py``.

Constants are folded eagerly: an operation on constant terms returns a
constant term, so running the symbolic step on concrete inputs yields
constants that compare directly with the concrete simulator's results.
"""

from __future__ import annotations

from typing import Any

import z3

from fsgs_smt.semantics.domain import CONCRETE

_C = CONCRETE


# These two run on every operation (constant folding): one C call each, not z3.py's four.
_L_TRUE, _L_FALSE = z3.Z3_L_TRUE, z3.Z3_L_FALSE


def _raw(checked: Any) -> Any:
    """The ctypes function behind a z3 C API wrapper, without the error check after each
    call: for the getters below, which cannot fail on a live term. (The builders call z3's
    C API through its checked wrappers, which raise on a sort error as z3.py would: z3.py's
    `If`, `And` and `Or` cost ten times the C call in coercions, and were most of the
    time of running the semantics symbolically.)"""
    defaults = getattr(checked, "__defaults__", None) or ()
    inner = getattr(defaults[-1], "f", None) if defaults else None
    return inner if inner is not None else checked


_IS_EQ_AST = _raw(z3.Z3_is_eq_ast)
_IS_NUMERAL = _raw(z3.Z3_is_numeral_ast)
_NUMERAL_STRING = _raw(z3.Z3_get_numeral_string)  # bytes: int() reads them
_BOOL_VALUE = _raw(z3.Z3_get_bool_value)
_AST_PAIR = z3.Ast * 2


def _bvc(term: Any) -> int | None:
    if isinstance(term, z3.ExprRef):
        ctx, ast = term.ctx_ref(), term.as_ast()
        if _IS_NUMERAL(ctx, ast):
            return int(_NUMERAL_STRING(ctx, ast))
    return None


def _boolc(term: Any) -> bool | None:
    value = _BOOL_VALUE(term.ctx_ref(), term.as_ast())
    if value == _L_TRUE:
        return True
    if value == _L_FALSE:
        return False
    return None


class Z3Domain:
    """z3 terms; every operation folds when all its operands are constants."""

    def __init__(self, ctx: z3.Context | None = None) -> None:
        self.ctx = ctx
        # constants, made once: the interpreter asks for the same few values many times
        self._consts: dict[tuple[int, int], Any] = {}
        self._bools = (z3.BoolVal(False, ctx), z3.BoolVal(True, ctx))

    # -- constants and variables ------------------------------------------------------------
    def bv(self, value: int, width: int) -> Any:
        key = (value & ((1 << width) - 1), width)
        term = self._consts.get(key)
        if term is None:
            if len(self._consts) > 100_000:  # bases and selectors are few; keep it bounded
                self._consts.clear()
            term = self._consts[key] = z3.BitVecVal(key[0], width, self.ctx)
        return term

    def boolean(self, value: bool) -> Any:
        return self._bools[bool(value)]

    def lift(self, value: Any, width: int) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.bv(value, width)
        if z3.is_bv(value):
            if value.size() != width:
                msg = f"width mismatch: expected {width} bits, got {value.size()}"
                raise TypeError(msg)
            return value
        msg = f"z3 domain cannot lift {value!r}"
        raise TypeError(msg)

    def var(self, name: str, width: int) -> Any:
        """A fresh bitvector variable (width 0 means a boolean)."""
        if width == 0:
            return z3.Bool(name, self.ctx)
        return z3.BitVec(name, width, self.ctx)

    def const_value(self, value: Any) -> int | None:
        return _bvc(value)

    def const_bool(self, value: Any) -> bool | None:
        return _boolc(value)

    def is_bool(self, value: Any) -> bool:
        return bool(z3.is_bool(value))

    # -- helpers ------------------------------------------------------------------------------
    def _fold2(self, a: Any, b: Any, width: int, concrete: Any, symbolic: Any) -> Any:
        ca, cb = _bvc(a), _bvc(b)
        if ca is not None and cb is not None:
            return self.bv(concrete(ca, cb), width)
        return symbolic(a, b)

    def _cmp(self, a: Any, b: Any, concrete: Any, symbolic: Any) -> Any:
        ca, cb = _bvc(a), _bvc(b)
        if ca is not None and cb is not None:
            return self.boolean(concrete(ca, cb))
        return symbolic(a, b)

    # -- bitvector arithmetic -----------------------------------------------------------------
    def add(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.add(x, y, width), lambda x, y: x + y)

    def sub(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.sub(x, y, width), lambda x, y: x - y)

    def mul(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.mul(x, y, width), lambda x, y: x * y)

    def bvand(self, a: Any, b: Any) -> Any:
        return self._fold2(a, b, a.size(), _C.bvand, lambda x, y: x & y)

    def bvor(self, a: Any, b: Any) -> Any:
        return self._fold2(a, b, a.size(), _C.bvor, lambda x, y: x | y)

    def bvxor(self, a: Any, b: Any) -> Any:
        return self._fold2(a, b, a.size(), _C.bvxor, lambda x, y: x ^ y)

    def bvnot(self, a: Any, width: int) -> Any:
        ca = _bvc(a)
        return self.bv(_C.bvnot(ca, width), width) if ca is not None else ~a

    def shl(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.shl(x, y, width), lambda x, y: x << y)

    def lshr(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.lshr(x, y, width), z3.LShR)

    def udiv(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.udiv(x, y, width), z3.UDiv)

    def urem(self, a: Any, b: Any, width: int) -> Any:
        return self._fold2(a, b, width, lambda x, y: _C.urem(x, y, width), z3.URem)

    def extract(self, a: Any, hi: int, lo: int) -> Any:
        ca = _bvc(a)
        if ca is not None:
            return self.bv(_C.extract(ca, hi, lo), hi - lo + 1)
        return z3.Extract(hi, lo, a)

    def zext(self, a: Any, from_width: int, to_width: int) -> Any:
        if to_width == from_width:
            return a
        ca = _bvc(a)
        if ca is not None:
            return self.bv(ca, to_width)
        return z3.ZeroExt(to_width - from_width, a)

    def sext(self, a: Any, from_width: int, to_width: int) -> Any:
        if to_width == from_width:
            return a
        ca = _bvc(a)
        if ca is not None:
            return self.bv(_C.sext(ca, from_width, to_width), to_width)
        return z3.SignExt(to_width - from_width, a)

    # -- predicates ---------------------------------------------------------------------------
    def eq(self, a: Any, b: Any) -> Any:
        if z3.is_bool(a):
            ca, cb = _boolc(a), _boolc(b)
            if ca is not None and cb is not None:
                return self.boolean(ca == cb)
            return a == b
        return self._cmp(a, b, lambda x, y: x == y, lambda x, y: x == y)

    def ult(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda x, y: x < y, z3.ULT)

    def ule(self, a: Any, b: Any) -> Any:
        return self._cmp(a, b, lambda x, y: x <= y, z3.ULE)

    def slt(self, a: Any, b: Any, width: int) -> Any:
        return self._cmp(a, b, lambda x, y: _C.slt(x, y, width), lambda x, y: x < y)

    def sle(self, a: Any, b: Any, width: int) -> Any:
        return self._cmp(a, b, lambda x, y: _C.sle(x, y, width), lambda x, y: x <= y)

    # -- booleans -----------------------------------------------------------------------------
    def and_(self, a: Any, b: Any) -> Any:
        ca, cb = _boolc(a), _boolc(b)
        if ca is False or cb is False:
            return self.boolean(False)
        if ca is True:
            return b
        if cb is True:
            return a
        ctx = a.ctx
        return z3.BoolRef(z3.Z3_mk_and(ctx.ref(), 2, _AST_PAIR(a.as_ast(), b.as_ast())), ctx)

    def or_(self, a: Any, b: Any) -> Any:
        ca, cb = _boolc(a), _boolc(b)
        if ca is True or cb is True:
            return self.boolean(True)
        if ca is False:
            return b
        if cb is False:
            return a
        ctx = a.ctx
        return z3.BoolRef(z3.Z3_mk_or(ctx.ref(), 2, _AST_PAIR(a.as_ast(), b.as_ast())), ctx)

    def not_(self, a: Any) -> Any:
        ca = _boolc(a)
        if ca is not None:
            return self.boolean(not ca)
        return z3.BoolRef(z3.Z3_mk_not(a.ctx.ref(), a.as_ast()), a.ctx)

    def ite(self, cond: Any, a: Any, b: Any) -> Any:
        cc = _boolc(cond)
        if cc is True:
            return a
        if cc is False:
            return b
        ctx = a.ctx
        ref = ctx.ref()
        if _IS_EQ_AST(ref, a.as_ast(), b.as_ast()):
            return a
        # z3's checked call: a condition that is not boolean, or branches of two sorts,
        # raise there (`Z3Exception`) as they would in `z3.If`
        kind = z3.BoolRef if isinstance(a, z3.BoolRef) else z3.BitVecRef
        return kind(z3.Z3_mk_ite(ref, cond.as_ast(), a.as_ast(), b.as_ast()), ctx)
