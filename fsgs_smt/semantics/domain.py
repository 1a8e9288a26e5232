# SPDX-License-Identifier: MIT
"""Value domains: the one interface every rule of the semantics is written against.

Layer: semantics. Imports only the standard library (never a solver).

A domain supplies bitvector and boolean values and the operations on them.
`ConcreteDomain` uses Python ints and bools and backs the simulator; the
symbolic domain (``fsgs_smt.symbolic.z3domain``) builds SMT terms. Widths are
passed explicitly where a concrete int needs them; a symbolic domain may
ignore them because its terms carry their own widths.

Bitvector comparisons are unsigned; the name says so (`ult`, `ule`).
"""

from __future__ import annotations

from typing import Any, Protocol

V = Any  # a domain value: an int/bool in the concrete domain, a term in a symbolic one


class Domain(Protocol):
    """Operations the semantics may perform on values."""

    def bv(self, value: int, width: int) -> V:
        """The constant *value* (taken modulo 2**width) as a *width*-bit vector."""

    def boolean(self, value: bool) -> V:
        """The boolean constant *value*."""

    def lift(self, value: V, width: int) -> V:
        """*value* as a *width*-bit vector: an int is made a constant, a term is kept."""

    def const_value(self, value: V) -> int | None:
        """The int a bitvector value is known to equal, or None if it is symbolic."""

    def const_bool(self, value: V) -> bool | None:
        """The bool a boolean value is known to equal, or None if it is symbolic."""

    def is_bool(self, value: V) -> bool:
        """True if *value* is a boolean (not a bitvector) of this domain."""

    def add(self, a: V, b: V, width: int) -> V: ...
    def sub(self, a: V, b: V, width: int) -> V: ...
    def mul(self, a: V, b: V, width: int) -> V: ...
    def bvand(self, a: V, b: V) -> V: ...
    def bvor(self, a: V, b: V) -> V: ...
    def bvxor(self, a: V, b: V) -> V: ...
    def bvnot(self, a: V, width: int) -> V: ...
    def shl(self, a: V, b: V, width: int) -> V: ...
    def lshr(self, a: V, b: V, width: int) -> V: ...
    def udiv(self, a: V, b: V, width: int) -> V: ...
    def urem(self, a: V, b: V, width: int) -> V: ...
    def extract(self, a: V, hi: int, lo: int) -> V:
        """Bits hi..lo of *a*, as a (hi-lo+1)-bit vector."""

    def zext(self, a: V, from_width: int, to_width: int) -> V:
        """*a* zero-extended from *from_width* to *to_width* bits."""

    def sext(self, a: V, from_width: int, to_width: int) -> V:
        """*a* sign-extended from *from_width* to *to_width* bits."""

    def eq(self, a: V, b: V) -> V: ...
    def ult(self, a: V, b: V) -> V: ...
    def ule(self, a: V, b: V) -> V: ...
    def slt(self, a: V, b: V, width: int) -> V: ...
    def sle(self, a: V, b: V, width: int) -> V: ...
    def and_(self, a: V, b: V) -> V: ...
    def or_(self, a: V, b: V) -> V: ...
    def not_(self, a: V) -> V: ...
    def ite(self, cond: V, a: V, b: V) -> V:
        """*a* if *cond* else *b*; *a* and *b* are both booleans or both of one width."""


def _mask(width: int) -> int:
    return (1 << width) - 1


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


class ConcreteDomain:
    """Python ints (always in 0..2**width-1) and bools. Total: x/0 is 2**w-1, x%0 is x (SMT-LIB)."""

    def bv(self, value: int, width: int) -> int:
        return value & _mask(width)

    def boolean(self, value: bool) -> bool:
        return bool(value)

    def lift(self, value: V, width: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            msg = f"concrete domain got a non-integer value {value!r}"
            raise TypeError(msg)
        return value & _mask(width)

    def const_value(self, value: V) -> int | None:
        return int(value)

    def const_bool(self, value: V) -> bool | None:
        return bool(value)

    def is_bool(self, value: V) -> bool:
        return isinstance(value, bool)

    def add(self, a: int, b: int, width: int) -> int:
        return (a + b) & _mask(width)

    def sub(self, a: int, b: int, width: int) -> int:
        return (a - b) & _mask(width)

    def mul(self, a: int, b: int, width: int) -> int:
        return (a * b) & _mask(width)

    def bvand(self, a: int, b: int) -> int:
        return a & b

    def bvor(self, a: int, b: int) -> int:
        return a | b

    def bvxor(self, a: int, b: int) -> int:
        return a ^ b

    def bvnot(self, a: int, width: int) -> int:
        return ~a & _mask(width)

    def shl(self, a: int, b: int, width: int) -> int:
        return (a << b) & _mask(width) if b < width else 0

    def lshr(self, a: int, b: int, width: int) -> int:
        return a >> b if b < width else 0

    def udiv(self, a: int, b: int, width: int) -> int:
        return a // b if b else _mask(width)

    def urem(self, a: int, b: int, width: int) -> int:
        return a % b if b else a

    def extract(self, a: int, hi: int, lo: int) -> int:
        return (a >> lo) & _mask(hi - lo + 1)

    def zext(self, a: int, from_width: int, to_width: int) -> int:
        return a & _mask(from_width)

    def sext(self, a: int, from_width: int, to_width: int) -> int:
        return _signed(a & _mask(from_width), from_width) & _mask(to_width)

    def eq(self, a: V, b: V) -> bool:
        return bool(a == b)

    def ult(self, a: int, b: int) -> bool:
        return a < b

    def ule(self, a: int, b: int) -> bool:
        return a <= b

    def slt(self, a: int, b: int, width: int) -> bool:
        return _signed(a, width) < _signed(b, width)

    def sle(self, a: int, b: int, width: int) -> bool:
        return _signed(a, width) <= _signed(b, width)

    def and_(self, a: bool, b: bool) -> bool:
        return a and b

    def or_(self, a: bool, b: bool) -> bool:
        return a or b

    def not_(self, a: bool) -> bool:
        return not a

    def ite(self, cond: bool, a: V, b: V) -> V:
        return a if cond else b


CONCRETE = ConcreteDomain()
