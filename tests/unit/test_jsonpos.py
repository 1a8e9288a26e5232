# SPDX-License-Identifier: MIT
"""Tests of fsgs_smt.traces.jsonpos: positions, strictness and error messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgs_smt.errors import InputError
from fsgs_smt.source import Span
from fsgs_smt.traces.jsonpos import (
    MAX_DEPTH,
    JArray,
    JBool,
    JNull,
    JNumber,
    JObject,
    JString,
    decode_utf8,
    jtype_name,
    parse_json,
    to_python,
)


def _error(text: str) -> str:
    """The one-line diagnostic parse_json raises for *text*."""
    with pytest.raises(InputError) as info:
        parse_json(text, "t.json")
    return info.value.one_line()


MALFORMED = [
    # (input, diagnostic) -- one entry per class of syntax error
    ("", "t.json:1:1: error: malformed JSON: expected a value, got end of input"),
    ("  \n  ", "t.json:2:3: error: malformed JSON: expected a value, got end of input"),
    ("{", "t.json:1:2: error: malformed JSON: expected a string key or '}', got end of input"),
    ("{\n  x: 1}", "t.json:2:3: error: malformed JSON: expected a string key or '}', got 'x'"),
    ("{'a': 1}", "t.json:1:2: error: malformed JSON: expected a string key or '}', got \"'\""),
    ('{"a" 1}', "t.json:1:6: error: malformed JSON: expected ':', got '1'"),
    ('{"a":}', "t.json:1:6: error: malformed JSON: expected a value, got '}'"),
    ('{"a": 1 x}', "t.json:1:9: error: malformed JSON: expected ',' or '}', got 'x'"),
    ('{"a": 1', "t.json:1:8: error: malformed JSON: expected ',' or '}', got end of input"),
    ('{"a": 1,\n}', "t.json:2:1: error: malformed JSON: expected a string key, got '}'"),
    ("[", "t.json:1:2: error: malformed JSON: expected a value or ']', got end of input"),
    ("[1 2]", "t.json:1:4: error: malformed JSON: expected ',' or ']', got '2'"),
    ("[1,\n ]", "t.json:2:2: error: malformed JSON: expected a value, got ']'"),
    ("[1]]", "t.json:1:4: error: malformed JSON: expected end of input, got ']'"),
    ("1 2", "t.json:1:3: error: malformed JSON: expected end of input, got '2'"),
    ("tru", "t.json:1:1: error: malformed JSON: expected a value, got 'tru'"),
    ("[True]", "t.json:1:2: error: malformed JSON: expected a value or ']', got 'True'"),
    ("NaN", "t.json:1:1: error: malformed JSON: expected a value, got 'NaN'"),
    ("[-Infinity]", "t.json:1:3: error: malformed JSON: expected a digit, got 'Infinity'"),
    ("// note\n1", "t.json:1:1: error: malformed JSON: expected a value, got '/'"),
    ("\ufeff{}", "t.json:1:1: error: malformed JSON: expected a value, got '\\ufeff'"),
    ("[+1]", "t.json:1:2: error: malformed JSON: expected a value or ']', got '+'"),
    ("-", "t.json:1:2: error: malformed JSON: expected a digit, got end of input"),
    (
        "[007]",
        ("t.json:1:2: error: malformed JSON: expected a number without leading zeros, got '007'"),
    ),
    ("1.", "t.json:1:3: error: malformed JSON: expected a digit after '.', got end of input"),
    (".5", "t.json:1:1: error: malformed JSON: expected a value, got '.'"),
    ("1e+x", "t.json:1:4: error: malformed JSON: expected a digit in the exponent, got 'x'"),
    (
        '"abc',
        ("t.json:1:5: error: malformed JSON: expected '\"' to close the string, got end of input"),
    ),
    (
        '"a\nb"',
        (
            "t.json:1:3: error: malformed JSON: expected '\"' or a character other than "
            "U+0000..U+001F, got '\\n'"
        ),
    ),
    (
        '"a\tb"',
        (
            "t.json:1:3: error: malformed JSON: expected '\"' or a character other than "
            "U+0000..U+001F, got '\\t'"
        ),
    ),
    (
        '"\\x"',
        (
            "t.json:1:3: error: malformed JSON: expected an escape character "
            "(one of \" \\ / b f n r t u), got 'x'"
        ),
    ),
    (
        '"\\u12g4"',
        ("t.json:1:4: error: malformed JSON: expected 4 hex digits after '\\u', got '12g4'"),
    ),
    (
        '"\\ud83d"',
        (
            "t.json:1:8: error: malformed JSON: expected a low surrogate "
            "\\uDC00..\\uDFFF after '\\ud83d', got '\"'"
        ),
    ),
    (
        '"\\ud83d\\u0041"',
        (
            "t.json:1:8: error: malformed JSON: expected a low surrogate "
            "\\uDC00..\\uDFFF after '\\ud83d', got '\\u0041'"
        ),
    ),
    (
        '"\\udc00"',
        (
            "t.json:1:2: error: malformed JSON: expected a \\u escape that is not a lone "
            "low surrogate, got '\\udc00'"
        ),
    ),
    (
        '{"a": 1,\n "a": 2}',
        (
            "t.json:2:2: error: malformed JSON: duplicate key 'a': expected each "
            "key at most once in an object, got it again (first at 1:2)"
        ),
    ),
    (
        "1" * 5000,
        (
            "t.json:1:1: error: malformed JSON: expected an integer of reasonable size, "
            "got 5000 characters"
        ),
    ),
]


@pytest.mark.parametrize(("text", "diagnostic"), MALFORMED)
def test_malformed_json_is_reported_at_the_offending_character(text: str, diagnostic: str) -> None:
    """Each class of syntax error names what was expected and got, at its file:line:col."""
    assert diagnostic == _error(text)


def test_nesting_deeper_than_the_limit_is_an_error() -> None:
    """Arrays nested one deeper than MAX_DEPTH are refused at the extra bracket."""
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    too_deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)

    assert json.loads(ok) == parse_json(ok, "t.json").to_python()
    assert (
        f"t.json:1:{MAX_DEPTH + 1}: error: malformed JSON: expected at most {MAX_DEPTH} nested "
        "arrays and objects, got one more"
    ) == _error(too_deep)


def test_spans_point_at_the_first_character_of_each_value() -> None:
    """Every node's span is the 1-based line and column of its first character."""
    text = '{\n  "a": [1, "x"],\n  "b": {"c": null}, "d": -2.5e1\n}'

    root = parse_json(text, "f.json")

    assert isinstance(root, JObject)
    (_, a_key, a), (_, b_key, b), (_, d_key, d) = root.items
    assert Span("f.json", 1, 1) == root.span
    assert Span("f.json", 2, 3) == a_key
    assert Span("f.json", 2, 8) == a.span
    assert isinstance(a, JArray)
    assert [Span("f.json", 2, 9), Span("f.json", 2, 12)] == [item.span for item in a.items]
    assert Span("f.json", 3, 3) == b_key
    assert isinstance(b, JObject)
    assert Span("f.json", 3, 14) == b.items[0][2].span
    assert Span("f.json", 3, 21) == d_key
    assert JNumber(span=Span("f.json", 3, 26), value=-25.0, text="-2.5e1") == d


def test_crlf_and_lone_cr_each_end_one_line() -> None:
    """Lines end at CR LF, LF or a lone CR, and CR LF counts once."""
    root = parse_json("[\r\n1,\r2,\n3\r\n]", "f.json")

    assert isinstance(root, JArray)
    assert [(2, 1), (3, 1), (4, 1)] == [(n.span.line, n.span.col) for n in root.items]


def test_columns_count_code_points() -> None:
    """A character outside the BMP counts as one column."""
    root = parse_json('["\U0001f600", 1]', "f.json")

    assert isinstance(root, JArray)
    assert 7 == root.items[1].span.col


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'{"a":\n  "\xe9"}', "2:4"),
        (b'\xef\xbb\xbf[1,\r\n\r"\xc3\xa9\xf0\x9f\x98\x80\xff"]', "3:4"),  # BOM, CR LF, CR
        (b"\xff", "1:1"),
        (b'["\xc3"]', "1:3"),  # a sequence cut short
    ],
    ids=["second-line", "bom-crlf-cr-multibyte", "first-byte", "truncated-sequence"],
)
def test_bytes_that_are_not_utf8_are_located_where_the_parser_counts(
    data: bytes, where: str
) -> None:
    """The first bad byte is at the line and column `parse_json` would give it (code points;
    CR LF, LF and lone CR end lines; a byte-order mark is not counted), not at 1:1."""
    with pytest.raises(InputError) as info:
        decode_utf8(data, "f.json", "trace file")

    line = info.value.one_line()
    assert line.startswith(f"f.json:{where}: error: trace file is not UTF-8: expected UTF-8 "
                           "text, got byte 0x"), line  # fmt: skip


def test_decode_utf8_skips_a_byte_order_mark() -> None:
    assert "[1]" == decode_utf8(b"\xef\xbb\xbf[1]", "f.json", "trace file")


def test_string_escapes_are_decoded() -> None:
    r"""All RFC 8259 escapes decode, including \u escapes and surrogate pairs."""
    text = r'"\" \\ \/ \b \f \n \r \t \u0041\u00e9 \ud83D\uDE00"'

    node = parse_json(text, "f.json")

    assert JString(span=Span("f.json", 1, 1), value='" \\ / \b \f \n \r \t Aé \U0001f600') == node


def test_numbers_are_ints_unless_written_with_a_fraction_or_exponent() -> None:
    """Integers stay exact ints; a fraction or an exponent makes a float; text is kept."""
    root = parse_json("[0, -0, 18446744073709551616, 1.0, 1e3, -0.5E-2]", "f.json")

    assert isinstance(root, JArray)
    values = [(n.value, type(n.value), n.text) for n in root.items if isinstance(n, JNumber)]
    assert [
        (0, int, "0"),
        (0, int, "-0"),
        (2**64, int, "18446744073709551616"),
        (1.0, float, "1.0"),
        (1000.0, float, "1e3"),
        (-0.005, float, "-0.5E-2"),
    ] == values


def test_literals_parse_to_bool_and_null_nodes() -> None:
    """true, false and null become JBool and JNull."""
    root = parse_json("[true, false, null]", "f.json")

    assert (
        JArray(
            span=Span("f.json", 1, 1),
            items=(
                JBool(span=Span("f.json", 1, 2), value=True),
                JBool(span=Span("f.json", 1, 8), value=False),
                JNull(span=Span("f.json", 1, 15)),
            ),
        )
        == root
    )


def test_object_get_finds_a_member_by_key() -> None:
    """JObject.get returns the value of a key, or None."""
    root = parse_json('{"a": 1}', "f.json")

    assert isinstance(root, JObject)
    assert JNumber(span=Span("f.json", 1, 7), value=1, text="1") == root.get("a")
    assert None is root.get("b")


def test_to_python_matches_json_loads() -> None:
    """to_python gives what json.loads gives, keeping key order."""
    text = '{"z": [1, 2.5, "s", true, false, null, {}], "a": {"b": []}}'

    value = to_python(parse_json(text, "f.json"))

    assert json.loads(text) == value
    assert isinstance(value, dict)
    assert ["z", "a"] == list(value)


def test_jtype_name_names_each_json_type() -> None:
    """jtype_name gives the article and type used in messages."""
    root = parse_json('[{}, [], "s", 1, 1.5, 1e2, true, null]', "f.json")

    assert isinstance(root, JArray)
    assert [
        "an object",
        "an array",
        "a string",
        "an integer",
        "a float",
        "a float",
        "a boolean",
        "null",
    ] == [jtype_name(node) for node in root.items]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, derandomize=True)
@given(value=JSON_VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 0, 2]))
def test_parse_agrees_with_the_json_module(
    value: object, *, ensure_ascii: bool, indent: int | None
) -> None:
    """Any document json.dumps writes parses to the same value."""
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent)

    assert json.loads(text) == parse_json(text, "f.json").to_python()
