# SPDX-License-Identifier: MIT
"""The error tree of fsgs-smt.

Layer: bottom (imports only `source`). Every error a user can cause is an
`InputError` carrying a `Span`; the CLI prints it as one line
``file:line:col: error: <message>`` and exits with code 2.
"""

from __future__ import annotations

from fsgs_smt.source import UNKNOWN_SPAN, Span


class FsgsError(Exception):
    """Root of every exception fsgs-smt raises on purpose."""


class InputError(FsgsError):
    """Bad user input: a YAML policy, a trace, an option.

    The message should say what was expected and what was found, e.g.
    ``selector out of range: expected an integer in 0..0xffff, got 0x10000``.
    """

    def __init__(self, span: Span | None, message: str) -> None:
        self.span = span if span is not None else UNKNOWN_SPAN
        self.message = message
        super().__init__(f"{self.span}: error: {message}")

    def __reduce__(self) -> tuple[type[InputError], tuple[Span, str]]:
        # raised in a worker process (``prove --jobs``), it comes back pickled
        return (type(self), (self.span, self.message))

    def one_line(self) -> str:
        """The diagnostic as the single line the CLI prints."""
        text = " ".join(self.message.split())
        return f"{self.span}: error: {text}"


def describe(value: object) -> str:
    """A short, user-facing rendering of a value found in input, for 'got ...'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, int):
        return hex(value) if value > 9 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class InternalError(FsgsError):
    """A bug in fsgs-smt itself (an invariant of the implementation broke)."""


class CannotReplayError(FsgsError):
    """This machine cannot run the trace natively (exit code 5); the message is one line.

    Here rather than in `native.run`, which raises it, so that the CLI can catch it without
    importing the native replay (and gcc's flags, the C generator) on every command."""
