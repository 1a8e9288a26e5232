# SPDX-License-Identifier: MIT
"""Hostile policy and invariant files: each is one located line and exit code 2.

These are the findings of a fuzzing pass over the YAML loader and the expression parser
(policy/load.py, policy/expr.py, policy/invariants.py): each input below was a Python
exception (exit 70), a hang, a silently wrapped number or a wrong position. Policies are
mutated copies of linux-5.9 (the helpers of test_policy_lang); each runs through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import Result

from fsgs_smt.policy.expr import MAX_NESTING, MAX_OPERATORS
from fsgs_smt.policy.load import MAX_YAML_DEPTH
from tests.cli.test_cli_errors import CLI, error_line, invoke, trace_text, write
from tests.unit.test_policy_lang import (
    BASE_TEXT,
    INCLUDE,
    PEEK_SEL,
    SETREGS,
    SIGRETURN,
    Mutant,
    mutate,
    write_policy,
)

CONSTANT = "\nconstants:\n  K: {}\n" + SETREGS.lstrip("\n")
EXTRA_SETTING = "\nsettings:\n  extra: {}\n"
INVARIANT = """\
fsgs-invariants: 1
invariants:
  - id: x
    statement: s
    source: t
    params: {{v: 64}}
    events:
      - {{op: wrbase, seg: gs, value: {value}}}
    expect: {expect}
"""
TOO_DEEP = (
    f"expression nested too deeply: expected at most {MAX_NESTING} levels of parentheses, "
    "unary operators, '?:', calls, indexes and 'in [...]'"
)
TOO_LONG = f"expression too long: expected at most {MAX_OPERATORS} operators"


# -- helpers -----------------------------------------------------------------------------------


def simulate(m: Mutant, *events: str) -> Result:
    """``simulate`` the mutated policy on a trace of *events* (default: one observe)."""
    trace = write(m.path.parent, trace_text(*(events or ('{"op": "observe"}',))))
    return invoke("simulate", str(m.path), str(trace))


def prove(path: Path) -> Result:
    """``prove`` linux-5.9 with the invariants file *path* (depth 1, intel)."""
    return invoke("prove", "linux-5.9", "--invariants", str(path), "--cpu", "intel",
                  "--depth", "1")  # fmt: skip


def invariants(tmp_path: Path, value: str = "0", expect: str = '"after.gs == 0"') -> Path:
    """An invariants file with one transition invariant (a wrbase of *value*)."""
    return write(tmp_path, INVARIANT.format(value=value, expect=expect), "inv.yaml")


def place(path: Path, pos: int) -> str:
    """``path:line:col`` of offset *pos* in the file *path*."""
    text = path.read_text(encoding="utf-8")
    line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    return f"{path}:{line}:{col}"


def nth(text: str, needle: str, n: int) -> int:
    """The offset of the *n*-th (1-based) occurrence of *needle* in *text*."""
    pos = -1
    for _ in range(n):
        pos = text.index(needle, pos + 1)
    return pos


def peek_line(expr: str) -> str:
    """ptrace_peek_sel's statement, returning *expr*."""
    return f'    - "return {expr}"\n'


# -- explicit tags, odd integers ---------------------------------------------------------------

BAD_INT = "expected digits, 0x and hex digits, 0b and binary"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int x", f"bad integer 'x': {BAD_INT}"),
        ('!!int ""', f"bad integer '': {BAD_INT}"),
        ('!!int "-"', f"bad integer '-': {BAD_INT}"),
        ("!!float x", "bad float 'x': expected digits with a '.' or an exponent, or .inf"),
        ("!!bool maybe", "bad boolean 'maybe': expected true or false"),
        ("0x_", f"bad integer '0x_': {BAD_INT}"),
        ("0b_", f"bad integer '0b_': {BAD_INT}"),
        ("!!int 0o9", f"bad integer '0o9': {BAD_INT}"),
    ],
)
def test_a_scalar_that_does_not_convert_is_located(
    tmp_path: Path, value: str, message: str
) -> None:
    """A tagged or integer-looking scalar that PyYAML cannot convert is refused at it."""
    m = mutate(tmp_path, SETREGS, CONSTANT.format(value))
    assert message == error_line(simulate(m), m.where(f"K: {value}", 3))


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (PEEK_SEL, "    - if: !!int x\n      then: []\n" + PEEK_SEL, "!!int x"),
        (PEEK_SEL, "    - !!bool maybe\n", "!!bool maybe"),
        ("  x86_16bit:\n    value: true\n", "  x86_16bit:\n    value: !!int x\n", "!!int x"),
        ("fsgs-policy: 1\n", "fsgs-policy: !!float x\n", "!!float x"),
    ],
    ids=["hook-if", "statement", "setting", "version"],
)
def test_a_bad_scalar_is_located_wherever_it_is(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    """Every scalar of a policy is checked when it is read, wherever it is."""
    m = mutate(tmp_path, old, new)
    assert error_line(simulate(m), m.where(needle)).startswith("bad ")


def test_a_bad_scalar_in_a_library_is_located_there(tmp_path: Path) -> None:
    """A library constant ``!!int x`` is refused in the library file."""
    m = write_policy(tmp_path, BASE_TEXT)
    lib = tmp_path / "lib" / "linux-common.yaml"
    text = lib.read_text(encoding="utf-8").replace("  EPERM: 1\n", "  EPERM: !!int x\n")
    lib.write_text(text, encoding="utf-8")
    lib_mutant = Mutant(lib, text)
    assert f"bad integer 'x': {BAD_INT}" == error_line(simulate(m), lib_mutant.where("!!int x"))


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [("fsgs-policy-lib: 1\n", "fsgs-policy-lib: 2\n", "lib: 2",
      "fsgs-policy-lib: expected 1, got 2"),
     ("fsgs-policy-lib: 1\n", "fsgs-policy-lib: x\n", "lib: x",
      "fsgs-policy-lib: expected 1, got the string 'x'"),
     ("\ntitle: ", "\ntitle: [a]  # ", "[a]", "title: expected a string, got a list")],
    ids=["version-2", "version-string", "title-list"],
)  # fmt: skip
def test_a_library_says_its_version_and_title_right(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    """A library's version must be 1 and its title a string (both were never read)."""
    m = write_policy(tmp_path, BASE_TEXT)
    lib = tmp_path / "lib" / "linux-common.yaml"
    text = lib.read_text(encoding="utf-8").replace(old, new, 1)
    lib.write_text(text, encoding="utf-8")
    offset = 5 if needle.startswith("lib: ") else 0
    assert message == error_line(simulate(m), Mutant(lib, text).where(needle, offset))


@pytest.mark.parametrize("value", ["!!int x", "0x_", "!!bool maybe"])
def test_a_bad_scalar_in_an_invariants_file_is_located(tmp_path: Path, value: str) -> None:
    """The same in an invariants file's event."""
    path = invariants(tmp_path, value=value)
    where = place(path, path.read_text(encoding="utf-8").index(value))
    assert error_line(prove(path), where).startswith("bad ")


@pytest.mark.parametrize(
    "digits", ["1" * 4301, "0x" + "f" * 5000, "0b" + "1" * 65, "1:" * 20 + "0"]
)
def test_a_huge_yaml_integer_is_refused_unconverted(tmp_path: Path, digits: str) -> None:
    """Integers of more digits than 64 bits need are a range error (never converted:
    Python refuses to convert decimals of 4301 digits)."""
    m = mutate(tmp_path, SETREGS, CONSTANT.format(digits))
    message = error_line(simulate(m), m.where(f"K: {digits[:10]}", 3))
    assert message.startswith("integer out of range: expected at most 2**64-1, got '")
    assert len(message) < 120


def test_a_huge_integer_in_an_invariant_event_is_refused(tmp_path: Path) -> None:
    """The same for an event value of an invariants file, plain or quoted."""
    for value in ("1" * 4301, '"0x' + "f" * 5000 + '"'):
        path = invariants(tmp_path, value=value)
        where = place(path, path.read_text(encoding="utf-8").index(value))
        assert "out of range: expected at most 2**64-1" in error_line(prove(path), where)


def test_a_float_is_described_as_a_float(tmp_path: Path) -> None:
    """A float is 'the float 1.5', not 'the string float'."""
    m = mutate(tmp_path, SETREGS, CONSTANT.format("1.5"))
    message = error_line(simulate(m), m.where("K: 1.5", 3))
    assert "constant 'K': expected an integer, got the float 1.5" == message


def test_a_foreign_tag_is_refused(tmp_path: Path) -> None:
    """``!foo`` (or an unquoted expression starting with '!') is no tag of YAML's."""
    m = mutate(tmp_path, PEEK_SEL, '    - !foo "return task.index"\n')
    message = error_line(simulate(m), m.where("!foo"))
    assert message.startswith("unknown YAML tag '!foo': expected none or one of YAML's own")


@pytest.mark.parametrize("tag", ["!!binary", "!!timestamp", "!!set"])
def test_a_yaml_tag_fsgs_smt_does_not_read_is_refused(tmp_path: Path, tag: str) -> None:
    """!!binary and !!timestamp values were read as their raw text; !!set as a mapping."""
    m = mutate(tmp_path, PEEK_SEL, f'    - {tag} "return task.index"\n')
    message = error_line(simulate(m), m.where(tag))
    assert message.startswith(f"YAML tag {tag} is not read by fsgs-smt: expected none, or one")


def test_a_plain_date_or_equals_sign_is_a_string(tmp_path: Path) -> None:
    """YAML 1.1 reads a plain 2016-04-26 as a date and = as a 'value' key: fsgs-smt reads
    both as strings (as YAML 1.2 does), so a title may be a date."""
    old = next(line for line in BASE_TEXT.splitlines(keepends=True) if line.startswith("title:"))
    for title in ("2016-04-26", "="):
        result = simulate(mutate(tmp_path, old, f"title: {title}\n"))
        assert result.exit_code == 0, result.output


# -- numbers beyond 64 bits, settings ----------------------------------------------------------


@pytest.mark.parametrize("number", ["0x1_0000_0000_0000_0000", "18446744073709551616",
                                    "1" * 4301])  # fmt: skip
def test_a_number_beyond_64_bits_in_an_invariant_is_refused(tmp_path: Path, number: str) -> None:
    """An invariant's 2**64 was wrapped to 0; now it is a range error at the number."""
    path = invariants(tmp_path, expect=f'"after.gs == {number}"')
    message = error_line(prove(path), place(path, path.read_text(encoding="utf-8").index(number)))
    assert message.startswith("number out of range: expected at most 2**64-1, got ")


def test_a_number_beyond_64_bits_in_a_policy_is_refused(tmp_path: Path) -> None:
    """A 4301-digit number in a policy expression is a range error, not an exception."""
    line = peek_line("1" * 4301)
    m = mutate(tmp_path, PEEK_SEL, line)
    message = error_line(simulate(m), m.where(line, line.index("1")))
    assert f"number out of range: expected at most 2**64-1, got {'1' * 20}... (4301 digits)" == (
        message
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [("0x400000000000000000", "0x400000000000000000"), ("-1", "-1"),
     ("18446744073709551616", "0x10000000000000000")],
)  # fmt: skip
def test_an_integer_setting_out_of_range_is_refused(tmp_path: Path, value: str, got: str) -> None:
    """Settings are 64-bit: 2**70 was silently 0; a negative one now says what it got."""
    m = mutate(tmp_path, "\nsettings:\n", EXTRA_SETTING.format(value))
    message = error_line(simulate(m), m.where(f"extra: {value}", 7))
    assert (
        f"setting 'extra' out of range: expected a boolean or an integer in 0..2**64-1, got {got}"
        == message
    )


@pytest.mark.parametrize(
    ("value", "got"),
    [("0x400000000000000000", "'0x400000000000000000'"), ("-1", "'-1'"),
     ("9" * 5000, "'" + "9" * 37 + "...'")],
    ids=["2**70", "negative", "5000-digits"],
)  # fmt: skip
def test_an_integer_set_option_out_of_range_is_refused(
    tmp_path: Path, value: str, got: str
) -> None:
    """--set of an integer setting is 64-bit as the file's value is (2**70 was silently 0)."""
    m = mutate(tmp_path, "\nsettings:\n", EXTRA_SETTING.format("1"))
    trace = write(tmp_path, trace_text('{"op": "observe"}'))
    result = invoke("simulate", str(m.path), str(trace), "--set", f"extra={value}")
    expected = "expected an integer in 0..2**64-1" if value != "9" * 5000 else "expected an integer"
    assert f"--set extra: {expected}, got {got}" == error_line(result, CLI)


def test_the_largest_integer_setting_is_accepted(tmp_path: Path) -> None:
    """2**64-1 is in range."""
    m = mutate(tmp_path, "\nsettings:\n", EXTRA_SETTING.format("0xffffffffffffffff"))
    assert 0 == simulate(m).exit_code


def test_a_yaml_integer_expression_beyond_64_bits_is_refused(tmp_path: Path) -> None:
    """``if: -1`` (a YAML integer, not an expression string) is out of range at the value."""
    m = mutate(tmp_path, PEEK_SEL, "    - if: -1\n      then: []\n" + PEEK_SEL)
    message = error_line(simulate(m), m.where("if: -1", 4))
    assert "number out of range: expected 0..2**64-1, got -1" == message


# -- nesting and long chains -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "opening"),
    [
        ("!" * 5000 + "true ? 1 : 0", "!"),
        ("-" * 5000 + "1", "-"),
        ("~" * 5000 + "1", "~"),
        ("(" * 3000 + "1" + ")" * 3000, "("),
        ("min(1, " * 3000 + "1" + ")" * 3000, "("),
        ("task.tls[" * 3000 + "0" + "]" * 3000, "["),
        ("1 in [" * 3000 + "1" + "] ? 1 : 0" * 3000, "["),
        ("true ? " * 3000 + "1" + " : 0" * 3000, "? "),
    ],
    ids=["not", "minus", "tilde", "parentheses", "calls", "indexes", "in", "conditional"],
)
def test_deep_nesting_is_refused_at_the_level_too_many(
    tmp_path: Path, expr: str, opening: str
) -> None:
    """Nesting beyond MAX_NESTING levels of any kind was a RecursionError; the error is at
    the token that opens one level too many (for '?:', the start of its middle)."""
    line = peek_line(expr)
    m = mutate(tmp_path, PEEK_SEL, line)
    start = line.index(expr)
    offset = start + nth(expr, opening, MAX_NESTING + 1) + (2 if opening == "? " else 0)
    assert TOO_DEEP == error_line(simulate(m), m.where(line, offset))


@pytest.mark.parametrize("op", ["+", "&&", "||", "=>", "|", "<<"])
def test_a_long_operator_chain_is_refused_at_the_operator_too_many(tmp_path: Path, op: str) -> None:
    """A chain of 500 operators (parsed by a loop) is refused at operator MAX_OPERATORS + 1:
    the passes after the parser recurse over its tree."""
    operand = "true" if op in ("&&", "||", "=>") else "1"
    chain = f" {op} ".join([operand] * 501)
    line = peek_line(f"({chain}) ? 1 : 0" if operand == "true" else chain)
    m = mutate(tmp_path, PEEK_SEL, line)
    offset = nth(line, f" {op} ", MAX_OPERATORS + 1) + 1
    assert TOO_LONG == error_line(simulate(m), m.where(line, offset))


def test_a_long_chain_in_an_invariant_is_refused(tmp_path: Path) -> None:
    """The same in an invariant's expression."""
    expect = " && ".join(["after.gs == 0"] * 500)
    path = invariants(tmp_path, expect=f'"{expect}"')
    pos = nth(path.read_text(encoding="utf-8"), "==", MAX_OPERATORS // 2 + 1)  # && and ==
    assert TOO_LONG == error_line(prove(path), place(path, pos))


def test_the_deepest_accepted_expression_runs(tmp_path: Path) -> None:
    """MAX_NESTING calls around a chain of MAX_OPERATORS, under the deepest statement
    nesting, pass the checker and the interpreter (each recurses over the tree)."""
    chain = " + ".join(["task.index"] * MAX_OPERATORS)
    expr = "min(" * (MAX_NESTING - 1) + chain + ", 1)" * (MAX_NESTING - 1)
    body, indent = "", "    "
    for _ in range((MAX_YAML_DEPTH - 4) // 2):
        body += f'{indent}- if: "task.index == 0"\n{indent}  then:\n'
        indent += "    "
    m = mutate(tmp_path, PEEK_SEL, f'{body}{indent}- "return {expr}"\n    - "return 1"\n')
    result = simulate(m, '{"op": "ptrace_peek", "field": "fs"}')
    assert (0, "") == (result.exit_code, result.stderr)


def test_yaml_nested_600_deep_is_refused(tmp_path: Path) -> None:
    """600 nested flow lists were a RecursionError of PyYAML's composer."""
    line = "  sigreturn: " + "[" * 600 + "]" * 600 + "\n"
    m = mutate(tmp_path, SIGRETURN, line)
    # the root mapping and hooks are two levels: the list MAX_YAML_DEPTH - 1 is one too many
    offset = nth(line, "[", MAX_YAML_DEPTH - 1)
    message = error_line(simulate(m), m.where(line, offset))
    expected = f"YAML nested too deeply: expected at most {MAX_YAML_DEPTH} levels of lists"
    assert f"{expected} and mappings" == message


# -- aliases -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ['  sigreturn: &c [{if: "true", then: *c}]\n',
     '  sigreturn: &c [{if: "true", then: [{each_seg: *c}]}]\n'],
)  # fmt: skip
def test_a_recursive_alias_is_refused_at_the_alias(tmp_path: Path, line: str) -> None:
    """An alias inside the node it names was a RecursionError."""
    m = mutate(tmp_path, SIGRETURN, line)
    message = error_line(simulate(m), m.where(line, line.index("*c")))
    assert "recursive alias *c: expected an alias of a node that does not contain it" == message


def test_billion_laughs_are_refused(tmp_path: Path) -> None:
    """Aliases of aliases (10**9 statements) hung; they are refused once they repeat too much."""
    lines = ["  sigreturn:\n", "    - &l0 [" + ", ".join(['"task.index := 0"'] * 10) + "]\n"]
    lines += [f"    - &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]\n" for k in range(1, 9)]
    m = mutate(tmp_path, SIGRETURN, "".join(lines))
    line = lines[4]  # &l3: ten aliases of &l2 (16111 each) pass the limit of 100000
    message = error_line(simulate(m), m.where(line, nth(line, "*l2", 6)))
    expected = "alias *l2 repeats too much: expected aliases to repeat at most 100000 nodes"
    assert f"{expected} and characters in all" == message


def test_a_small_alias_is_still_accepted(tmp_path: Path) -> None:
    """Sharing a statement list by an alias is fine."""
    shared = '    - if: "true"\n      then: &s ["task.fsindex := task.fsindex"]\n'
    text = BASE_TEXT.replace(PEEK_SEL, shared + PEEK_SEL)
    text = text.replace(SIGRETURN, '  sigreturn: [{if: "true", then: *s}]\n')
    result = simulate(write_policy(tmp_path, text), '{"op": "ptrace_peek", "field": "fs"}')
    assert (0, "") == (result.exit_code, result.stderr), result.stderr


# -- file names --------------------------------------------------------------------------------


def test_an_include_name_too_long_is_located(tmp_path: Path) -> None:
    """A 5000-character include name was an OSError (File name too long)."""
    m = mutate(tmp_path, INCLUDE, "include: [lib/linux-common.yaml, " + "a" * 5000 + "]\n")
    message = error_line(simulate(m), m.where("a" * 5000))
    assert f"include '{'a' * 37}...': cannot open it: File name too long" == message


def test_a_policy_name_too_long_is_a_command_line_error(tmp_path: Path) -> None:
    """The same for the POLICY argument."""
    trace = write(tmp_path, trace_text('{"op": "observe"}'))
    message = error_line(invoke("simulate", "a" * 5000, str(trace)), CLI)
    assert message.startswith(f"unknown policy '{'a' * 37}...': expected a policy file")


# -- anchors and tags on expressions -----------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        '    - &x "return task.index"\n',
        "    - &x return task.index\n",
        '    - !!str "return task.index"\n',
        "    - !!str return task.index\n",
        "    - !!str &x 'return task.index'\n",
        '    - &x\n      "return task.index"\n',
        "    - &x |\n      return task.index\n",
        '    - !<tag:yaml.org,2002:str> "return task.index"\n',
    ],
    ids=["anchor-quoted", "anchor-plain", "tag-quoted", "tag-plain", "tag-anchor-single",
         "anchor-own-line", "anchor-block", "verbatim-tag"],
)  # fmt: skip
def test_anchors_and_tags_on_expressions_are_accepted(tmp_path: Path, line: str) -> None:
    """An anchor or a tag before an expression was parsed as part of it."""
    m = mutate(tmp_path, PEEK_SEL, line)
    result = simulate(m, '{"op": "ptrace_peek", "field": "fs"}')
    assert (0, "") == (result.exit_code, result.stderr)


@pytest.mark.parametrize(
    "line",
    ['    - &x "return task.index + * 1"\n', "    - !!str return task.index + * 1\n",
     "    - !!str >\n      return task.index\n      + * 1\n"],
)  # fmt: skip
def test_an_error_after_an_anchor_or_tag_is_at_its_token(tmp_path: Path, line: str) -> None:
    """Positions in an anchored or tagged expression are those of its characters."""
    m = mutate(tmp_path, PEEK_SEL, line)
    message = error_line(simulate(m), m.where(line, line.index("*")))
    assert message.endswith("got '*'")


# -- positions through escapes, control characters, bad UTF-8 ----------------------------------


@pytest.mark.parametrize(
    ("line", "needle", "found"),
    [
        ('    - "return \\x61 + * 1"\n', "*", "got '*'"),
        ('    - "return task.index +\\t\\x2a 1"\n', "\\x2a", "got '*'"),
        ('    - "return \\u0061 +\\n\\t* 1"\n', "*", "got '*'"),
        ('    - "return \\x61\n\n      + * 1"\n', "*", "got '*'"),
        ('    - "return task.in\\\n      dex + * 1"\n', "*", "got '*'"),
        ('    - "return task.index \\\\ 1"\n', "\\\\", "unexpected character '\\\\'"),
    ],
    ids=["hex-escape", "escape-is-the-token", "unicode-escape", "folded-line",
         "escaped-line-break", "escaped-backslash"],
)  # fmt: skip
def test_positions_map_through_double_quoted_escapes(
    tmp_path: Path, line: str, needle: str, found: str
) -> None:
    """Each character of a double-quoted value is located where its source is."""
    m = mutate(tmp_path, PEEK_SEL, line)
    assert found in error_line(simulate(m), m.where(line, line.index(needle)))


def test_an_escaped_line_break_joins_a_name(tmp_path: Path) -> None:
    """``"task.in\\<newline>dex"`` is ``task.index`` in YAML: accepted."""
    m = mutate(tmp_path, PEEK_SEL, '    - "return task.in\\\n      dex"\n')
    assert 0 == simulate(m).exit_code


def test_an_escape_beyond_unicode_is_located(tmp_path: Path) -> None:
    """``"\\UFFFFFFFF"`` was an OverflowError inside PyYAML's scanner."""
    line = peek_line("\\UFFFFFFFF")
    m = mutate(tmp_path, PEEK_SEL, line)
    message = error_line(simulate(m), m.where(line, line.index("FFFF")))
    assert message.startswith("malformed YAML: escape out of range: expected")


def test_an_escaped_lone_surrogate_is_refused(tmp_path: Path) -> None:
    """``"\\ud800"`` made the policy's name unprintable (UnicodeEncodeError on output)."""
    m = mutate(tmp_path, "name: linux-5.9\n", 'name: "\\ud800"\n')
    message = error_line(simulate(m), m.where('"\\ud800"'))
    assert message.startswith("bad escape U+D800 (half of a UTF-16 pair): expected")


@pytest.mark.parametrize("char", ["\x01", "\x07", "\x00"])
def test_a_control_character_is_located_where_it_is(tmp_path: Path, char: str) -> None:
    """A control character was reported at 1:1."""
    line = peek_line(f"task.index{char}")
    m = mutate(tmp_path, PEEK_SEL, line)
    message = error_line(simulate(m), m.where(line, line.index(char)))
    assert message.startswith(f"malformed YAML: control character U+{ord(char):04X}: expected")


@pytest.mark.parametrize(("char", "name"), [("\x85", "NEXT LINE"), ("\u2028", "LINE SEPARATOR"),
                                          ("\u2029", "PARAGRAPH SEPARATOR")])  # fmt: skip
def test_a_yaml_11_line_break_is_refused_where_it_is(tmp_path: Path, char: str, name: str) -> None:
    """PyYAML breaks a line at U+0085, U+2028 and U+2029, editors do not: a comment holding
    one turned its tail into a key, reported on a line the editor does not have."""
    line = f'    - "return task.index" # one{char}two: 3\n'
    m = mutate(tmp_path, PEEK_SEL, line)
    message = error_line(simulate(m), m.where(line, line.index(char)))
    assert message.startswith(f"malformed YAML: line break U+{ord(char):04X} ({name}): expected")


def test_bytes_that_are_not_utf8_are_located_where_they_are(tmp_path: Path) -> None:
    """A policy file with a Latin-1 byte was reported at 1:1."""
    line = '    - "return task.index" # caf\xe9\n'
    m = mutate(tmp_path, PEEK_SEL, line)
    data = m.text.encode("utf-8")
    m.path.write_bytes(data.replace(line.encode(), line.encode().replace("\xe9".encode(), b"\xe9")))
    message = error_line(simulate(m), m.where(line, line.index("\xe9")))
    assert "policy file is not UTF-8: expected UTF-8 text, got byte 0xe9" == message
