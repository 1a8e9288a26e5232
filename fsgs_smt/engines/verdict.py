# SPDX-License-Identifier: MIT
"""Verdicts: what an engine may conclude, as data.

Layer: engines. Imports `semantics.events` only.

PROVED needs a certificate that was re-checked; VIOLATED needs a trace that the
concrete simulator replayed; BOUNDED(k) is never a pass unless the user accepts
bounded results; VACUOUS is an error; UNKNOWN carries its reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fsgs_smt.semantics.events import Event


class Status(enum.Enum):
    """The verdict kinds, in the order of how bad they are for a user who wanted a proof."""

    PROVED = "PROVED"
    BOUNDED = "BOUNDED"
    VIOLATED = "VIOLATED"
    VACUOUS = "VACUOUS"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The result of checking one invariant on one policy and CPU model."""

    status: Status
    depth: int
    engine: str
    reason: str = ""
    trace: tuple[Event, ...] = ()  # VIOLATED: the events, replayed by the simulator
    certificate: str = ""  # PROVED: the inductive invariant (and its k)
    seconds: float = 0.0
    details: dict[str, object] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``PROVED``, ``BOUNDED(12)``, ``VIOLATED`` ..."""
        if self.status is Status.BOUNDED:
            return f"BOUNDED({self.depth})"
        return str(self.status.value)
