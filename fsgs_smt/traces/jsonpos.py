# SPDX-License-Identifier: MIT
r"""A strict RFC 8259 JSON parser that keeps the source position of every value.

Layer: traces; imports errors and source only (and the standard library).

Python's `json` module reports no positions for values, but every diagnostic
about a trace must name ``file:line:col``. `parse_json` is a small recursive-
descent parser that returns a tree of frozen nodes, each carrying the `Span` of
its first character (1-based line and column; columns count Unicode code
points, and ``\n``, ``\r\n`` and a lone ``\r`` each end a line).

Strictness: exactly the RFC 8259 grammar, with no extensions: no comments,
no trailing commas, no single quotes, no ``NaN``/``Infinity``, no leading
zeros, no raw control characters in strings, no byte-order mark (callers that
read files strip one), no lone surrogate escapes, and no duplicate object keys.
Arrays and objects nest at most `MAX_DEPTH` deep (RFC 8259 section 9 allows
the limit).

Every syntax error is an `InputError` located at the offending character with
the message ``malformed JSON: expected <what>, got <what>``, where the span
points at the thing after "got".
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from typing import TypeAlias

from fsgs_smt.errors import InputError
from fsgs_smt.source import Span

MAX_DEPTH = 200
"""The deepest nesting of arrays and objects `parse_json` accepts."""

JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"


@dataclass(frozen=True, slots=True, kw_only=True)
class JObject:
    """A JSON object: (key, span of the key, value) in document order; keys are unique."""

    span: Span
    items: tuple[tuple[str, Span, JNode], ...]

    def get(self, key: str) -> JNode | None:
        """The value of *key*, or None if the object has no such key."""
        for name, _, value in self.items:
            if name == key:
                return value
        return None

    def to_python(self) -> dict[str, JSONValue]:
        """The plain Python value (as `json.loads` would return it)."""
        return {key: value.to_python() for key, _, value in self.items}


@dataclass(frozen=True, slots=True, kw_only=True)
class JArray:
    """A JSON array."""

    span: Span
    items: tuple[JNode, ...]

    def to_python(self) -> list[JSONValue]:
        """The plain Python value (as `json.loads` would return it)."""
        return [item.to_python() for item in self.items]


@dataclass(frozen=True, slots=True, kw_only=True)
class JString:
    """A JSON string, escapes decoded."""

    span: Span
    value: str

    def to_python(self) -> str:
        """The plain Python value (as `json.loads` would return it)."""
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class JNumber:
    """A JSON number: an int if *text* has no fraction or exponent, else a float."""

    span: Span
    value: int | float
    text: str

    def to_python(self) -> int | float:
        """The plain Python value (as `json.loads` would return it)."""
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class JBool:
    """``true`` or ``false``."""

    span: Span
    value: bool

    def to_python(self) -> bool:
        """The plain Python value (as `json.loads` would return it)."""
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class JNull:
    """``null``."""

    span: Span

    def to_python(self) -> None:
        """The plain Python value (as `json.loads` would return it)."""


JNode: TypeAlias = JObject | JArray | JString | JNumber | JBool | JNull


def to_python(node: JNode) -> JSONValue:
    """The plain Python value of *node*, as `json.loads` would return it."""
    return node.to_python()


def jtype_name(node: JNode) -> str:
    """The JSON type of *node* for messages: "an object", "an integer", "null", ...

    A number written with a fraction or an exponent (``1.0``, ``1e3``) is "a float".
    """
    match node:
        case JObject():
            return "an object"
        case JArray():
            return "an array"
        case JString():
            return "a string"
        case JNumber(value=int()):
            return "an integer"
        case JNumber():
            return "a float"
        case JBool():
            return "a boolean"
        case JNull():
            return "null"


def parse_json(text: str, filename: str) -> JNode:
    """Parse one JSON document.

    Args:
        text: the whole document.
        filename: the name that spans report.

    Returns:
        The root node.

    Raises:
        InputError: the text is not exactly one JSON value (surrounded by whitespace
            at most), located at the first offending character.
    """
    return _Parser(text, filename).document()


def decode_utf8(data: bytes, filename: str, what: str) -> str:
    """The text of a file's bytes: UTF-8, a leading byte-order mark skipped.

    Args:
        data: the file's bytes.
        filename: the name that spans report.
        what: the kind of file, for the message ("trace file").

    Raises:
        InputError: the bytes are not UTF-8, located at the first bad byte (with the
            lines and columns `parse_json` counts).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        body = exc.object  # without the byte-order mark, which exc.start is relative to
        before = body[: exc.start].decode("utf-8")
        breaks = [m.end() for m in _LINE_BREAK.finditer(before)]
        span = Span(filename, len(breaks) + 1, len(before) - (breaks[-1] if breaks else 0) + 1)
        raise InputError(
            span, f"{what} is not UTF-8: expected UTF-8 text, got byte 0x{body[exc.start]:02x}"
        ) from None


_WS = re.compile(r"[ \t\n\r]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_STRING_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_DIGITS = re.compile(r"[0-9]*")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HIGH_FIRST, _HIGH_LAST = 0xD800, 0xDBFF  # UTF-16 surrogates (RFC 8259 section 7)
_LOW_FIRST, _LOW_LAST = 0xDC00, 0xDFFF
_GOT_MAX = 20  # characters of a word quoted after "got"


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """The end of the match of *pattern* at *pos* (*pos* itself if there is none)."""
    match = pattern.match(text, pos)
    return pos if match is None else match.end()


def _quote(raw: str) -> str:
    """*raw* in single quotes, escaped as Python would only where needed."""
    if raw.isprintable() and "'" not in raw:
        return f"'{raw}'"
    return repr(raw)


class _Parser:
    """One parse: the text, a cursor, and the line starts for turning offsets into spans."""

    __slots__ = ("_line_starts", "filename", "pos", "text")

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]

    # -- positions and errors ---------------------------------------------------------------

    def span(self, pos: int) -> Span:
        """The span of offset *pos*."""
        line = bisect_right(self._line_starts, pos)
        return Span(self.filename, line, pos - self._line_starts[line - 1] + 1)

    def got(self, pos: int) -> str:
        """What the text holds at *pos*, for "got ...": a word, a character, or the end."""
        if pos >= len(self.text):
            return "end of input"
        word = _WORD.match(self.text, pos)
        if word is not None:
            return _quote(word.group()[:_GOT_MAX])
        return _quote(self.text[pos])

    def error(self, pos: int, expected: str, got: str | None = None) -> InputError:
        """A syntax error at *pos*; *got* defaults to what the text holds there."""
        found = self.got(pos) if got is None else got
        return InputError(self.span(pos), f"malformed JSON: expected {expected}, got {found}")

    def skip_ws(self) -> None:
        """Move the cursor past whitespace."""
        self.pos = _end(_WS, self.text, self.pos)

    # -- grammar ----------------------------------------------------------------------------

    def document(self) -> JNode:
        """JSON-text = ws value ws."""
        self.skip_ws()
        node = self.value(0, "a value")
        self.skip_ws()
        if self.pos < len(self.text):
            raise self.error(self.pos, "end of input")
        return node

    def value(self, depth: int, expected: str) -> JNode:
        """One value at the cursor; *expected* names what the caller allows here."""
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.error(pos, expected)
        ch = text[pos]
        if ch == "{":
            return self.object(depth + 1)
        if ch == "[":
            return self.array(depth + 1)
        if ch == '"':
            return JString(span=self.span(pos), value=self.string())
        if ch == "-" or "0" <= ch <= "9":
            return self.number()
        word = _WORD.match(text, pos)
        if word is not None and word.group() in _LITERALS:
            self.pos = word.end()
            literal = _LITERALS[word.group()]
            if literal is None:
                return JNull(span=self.span(pos))
            return JBool(span=self.span(pos), value=literal)
        raise self.error(pos, expected)

    def enter(self, depth: int) -> None:
        """Refuse nesting deeper than MAX_DEPTH."""
        if depth > MAX_DEPTH:
            raise self.error(self.pos, f"at most {MAX_DEPTH} nested arrays and objects", "one more")

    def object(self, depth: int) -> JObject:
        """Parse an object at the cursor (RFC 8259 section 4)."""
        self.enter(depth)
        start = self.pos
        self.pos += 1
        items: list[tuple[str, Span, JNode]] = []
        seen: dict[str, Span] = {}
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "}":
            self.pos += 1
            return JObject(span=self.span(start), items=())
        expected_key = "a string key or '}'"
        while True:
            key_pos = self.pos
            if key_pos >= len(self.text) or self.text[key_pos] != '"':
                raise self.error(key_pos, expected_key)
            key = self.string()
            key_span = self.span(key_pos)
            if key in seen:
                first = seen[key]
                raise InputError(
                    key_span,
                    f"malformed JSON: duplicate key {_quote(key)}: expected each key at most "
                    f"once in an object, got it again (first at {first.line}:{first.col})",
                )
            seen[key] = key_span
            self.skip_ws()
            if self.pos >= len(self.text) or self.text[self.pos] != ":":
                raise self.error(self.pos, "':'")
            self.pos += 1
            self.skip_ws()
            items.append((key, key_span, self.value(depth, "a value")))
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                self.skip_ws()
                expected_key = "a string key"
                continue
            if self.pos < len(self.text) and self.text[self.pos] == "}":
                self.pos += 1
                return JObject(span=self.span(start), items=tuple(items))
            raise self.error(self.pos, "',' or '}'")

    def array(self, depth: int) -> JArray:
        """Parse an array at the cursor (RFC 8259 section 5)."""
        self.enter(depth)
        start = self.pos
        self.pos += 1
        items: list[JNode] = []
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "]":
            self.pos += 1
            return JArray(span=self.span(start), items=())
        expected = "a value or ']'"
        while True:
            items.append(self.value(depth, expected))
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                self.skip_ws()
                expected = "a value"
                continue
            if self.pos < len(self.text) and self.text[self.pos] == "]":
                self.pos += 1
                return JArray(span=self.span(start), items=tuple(items))
            raise self.error(self.pos, "',' or ']'")

    def number(self) -> JNumber:
        """Parse a number at the cursor (RFC 8259 section 6)."""
        text, start = self.text, self.pos
        pos = start + 1 if text[start] == "-" else start
        if text.startswith("0", pos):
            after = _end(_DIGITS, text, pos + 1)
            if after > pos + 1:
                raise self.error(start, "a number without leading zeros", _quote(text[start:after]))
            pos += 1
        else:
            pos = self.digits(pos, "a digit")
        is_int = True
        if text.startswith(".", pos):
            pos = self.digits(pos + 1, "a digit after '.'")
            is_int = False
        if pos < len(text) and text[pos] in "eE":
            pos += 1
            if pos < len(text) and text[pos] in "+-":
                pos += 1
            pos = self.digits(pos, "a digit in the exponent")
            is_int = False
        literal = text[start:pos]
        value: int | float
        if is_int:
            try:
                value = int(literal)
            except ValueError:  # more digits than sys.get_int_max_str_digits() allows
                raise self.error(
                    start, "an integer of reasonable size", f"{len(literal)} characters"
                ) from None
        else:
            value = float(literal)
        self.pos = pos
        return JNumber(span=self.span(start), value=value, text=literal)

    def digits(self, pos: int, expected: str) -> int:
        """The end of a non-empty run of digits at *pos*."""
        end = _end(_DIGITS, self.text, pos)
        if end == pos:
            raise self.error(pos, expected)
        return end

    def string(self) -> str:
        """Parse a string at the cursor, which is on the opening quote (RFC 8259 section 7)."""
        text = self.text
        pos = self.pos + 1
        parts: list[str] = []
        while True:
            chunk_end = _end(_STRING_CHUNK, text, pos)
            parts.append(text[pos:chunk_end])
            pos = chunk_end
            if pos >= len(text):
                raise self.error(pos, "'\"' to close the string")
            ch = text[pos]
            if ch == '"':
                self.pos = pos + 1
                return "".join(parts)
            if ch != "\\":
                raise self.error(pos, "'\"' or a character other than U+0000..U+001F")
            char, pos = self.escape(pos)
            parts.append(char)

    def escape(self, pos: int) -> tuple[str, int]:
        """The character an escape at *pos* (on the backslash) stands for, and the end."""
        text = self.text
        code = text[pos + 1 : pos + 2]
        if code in _ESCAPES:
            return _ESCAPES[code], pos + 2
        if code != "u":
            raise self.error(pos + 1, 'an escape character (one of " \\ / b f n r t u)')
        unit = self.hex4(pos + 2)
        end = pos + 6
        if _LOW_FIRST <= unit <= _LOW_LAST:
            raise self.error(
                pos, "a \\u escape that is not a lone low surrogate", _quote(text[pos:end])
            )
        if not _HIGH_FIRST <= unit <= _HIGH_LAST:
            return chr(unit), end
        low_pos = end
        low = _HEX4.match(text, low_pos + 2)
        if (
            not text.startswith("\\u", low_pos)
            or low is None
            or not (_LOW_FIRST <= int(low.group(), 16) <= _LOW_LAST)
        ):
            got = _quote(text[low_pos : low_pos + 6]) if low_pos < len(text) else None
            raise self.error(
                low_pos, f"a low surrogate \\uDC00..\\uDFFF after {_quote(text[pos:end])}", got
            )
        low_unit = int(low.group(), 16)
        return chr(0x10000 + ((unit - _HIGH_FIRST) << 10) + (low_unit - _LOW_FIRST)), low_pos + 6

    def hex4(self, pos: int) -> int:
        r"""The value of the four hex digits at *pos* (after ``\u``)."""
        match = _HEX4.match(self.text, pos)
        if match is None:
            got = _quote(self.text[pos : pos + 4]) if pos < len(self.text) else None
            raise self.error(pos, "4 hex digits after '\\u'", got)
        return int(match.group(), 16)
