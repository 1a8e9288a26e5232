# SPDX-License-Identifier: MIT
"""Source positions: where a piece of user input came from.

Layer: bottom. Imports nothing from fsgs_smt. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A 1-based line and column in a named input file."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shifted(self, offset: int) -> Span:
        """The span *offset* characters to the right on the same line."""
        return Span(self.file, self.line, self.col + offset)


UNKNOWN_SPAN = Span("<input>", 1, 1)
