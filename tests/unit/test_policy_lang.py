# SPDX-License-Identifier: MIT
"""Tests of the policy language: the loader's and checker's diagnostics, the expression parser.

Each diagnostic test copies the shipped linux-5.9 policy (and its lib/ directory) into
tmp_path, makes one textual change, and checks the one-line error: the exact
``file:line:col`` (computed from where the change was inserted) and the key words.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

import fsgs_smt
from fsgs_smt.errors import InputError
from fsgs_smt.policy import ast
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.policy.expr import parse_expr, parse_stmt
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.semantics.events import PtraceField, PtracePeek, Trace
from fsgs_smt.sim import simulate
from fsgs_smt.source import Span

POLICIES = Path(fsgs_smt.__file__).resolve().parent / "specs" / "policies"
BASE_TEXT = (POLICIES / "linux-5.9.yaml").read_text(encoding="utf-8")

# Unique lines of linux-5.9.yaml that the tests replace.
VERSION = "fsgs-policy: 1\n"
NAME = "name: linux-5.9\n"
INCLUDE = "include: [lib/linux-common.yaml]\n"
SETREGS = "\nsetregs:\n"
ORDER = "  order: [r15, r14, r13,"
HOOKS = "\nhooks:\n"
SIGRETURN = "  sigreturn: []\n"
SWITCH_OUT_BASE = '        - "prev.base := live.base"\n'
PEEK_SEL = '    - "return task.index"\n'  # ptrace_peek_sel: a segment hook that returns a value
PEEK_OTHER = '    - "r := getreg_other()"\n'  # ptrace_peek_other: no segment bound
FSGSBASE = "  fsgsbase:\n    value: true\n"
X86_16BIT = "  x86_16bit:\n    value: true\n"


# -- helpers -------------------------------------------------------------------------------


def at(text: str, needle: str, offset: int = 0) -> str:
    """``line:col`` (1-based) of the character *offset* places into the one *needle* in *text*."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    pos = text.index(needle) + offset
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return f"{line}:{col}"


@dataclass(frozen=True)
class Mutant:
    """A changed copy of linux-5.9.yaml on disk."""

    path: Path
    text: str

    def where(self, needle: str, offset: int = 0) -> str:
        """``path:line:col`` of a place in this policy."""
        return f"{self.path}:{at(self.text, needle, offset)}"


def write_policy(tmp_path: Path, text: str) -> Mutant:
    """Write *text* as tmp_path/policy.yaml next to a copy of the shipped lib directory."""
    if not (tmp_path / "lib").exists():
        shutil.copytree(POLICIES / "lib", tmp_path / "lib")
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return Mutant(path, text)


def mutate(tmp_path: Path, old: str, new: str) -> Mutant:
    """linux-5.9.yaml with the one occurrence of *old* replaced by *new*."""
    assert BASE_TEXT.count(old) == 1, f"{old!r} occurs {BASE_TEXT.count(old)} times"
    return write_policy(tmp_path, BASE_TEXT.replace(old, new))


def diagnose(path: Path) -> tuple[str, str]:
    """(``file:line:col``, message) of the InputError that loading *path* raises."""
    with pytest.raises(InputError) as info:
        load_checked(str(path))
    line = info.value.one_line()
    assert "\n" not in line
    location, sep, message = line.partition(": error: ")
    assert ": error: " == sep
    return location, message


def sexpr(e: ast.Expr) -> str:
    """*e* as a fully parenthesised prefix string, spans left out."""
    match e:
        case ast.Num(value=value):
            return str(value)
        case ast.Bool(value=value):
            return "true" if value else "false"
        case ast.Name(parts=parts, index=index):
            return ".".join(parts) + ("" if index is None else f"[{sexpr(index)}]")
        case ast.Unary(op=op, operand=operand):
            return f"({op} {sexpr(operand)})"
        case ast.Binary(op=op, left=left, right=right):
            return f"({op} {sexpr(left)} {sexpr(right)})"
        case ast.Cond(cond=cond, then=then, other=other):
            return f"(? {sexpr(cond)} {sexpr(then)} {sexpr(other)})"
        case ast.Call(func=func, args=args):
            return f"{func}({', '.join(sexpr(a) for a in args)})"
        case ast.InSet(operand=operand, items=items):
            return f"(in {sexpr(operand)} [{' '.join(sexpr(i) for i in items)}])"
    raise AssertionError(e)


def parse(text: str) -> str:
    """The prefix form of expression *text*."""
    return sexpr(parse_expr(text, Span("x.yaml", 1, 1)))


# -- the unchanged copy --------------------------------------------------------------------


def test_unchanged_copy_loads(tmp_path: Path) -> None:
    """The copied linux-5.9 policy with its lib directory loads and checks."""
    pol = load_checked(str(write_policy(tmp_path, BASE_TEXT).path))
    assert "linux-5.9" == pol.name


# -- malformed YAML --------------------------------------------------------------------------


def test_yaml_bad_indentation(tmp_path: Path) -> None:
    """An over-indented key is malformed YAML, located where PyYAML finds the ':'."""
    m = mutate(tmp_path, NAME, NAME + "  bad: 1\n")
    location, message = diagnose(m.path)
    assert m.where("  bad: 1\n", 5) == location
    assert "malformed YAML: mapping values are not allowed here" == message


def test_yaml_unclosed_quote_at_end(tmp_path: Path) -> None:
    """An unclosed quote on the last line is malformed YAML at the end of the stream."""
    assert BASE_TEXT.endswith('    - "return 0"\n')
    text = BASE_TEXT[: -len('"return 0"\n')] + '"return 0\n'
    m = write_policy(tmp_path, text)
    location, message = diagnose(m.path)
    assert f"{m.path}:{text.count(chr(10)) + 1}:1" == location
    assert message.startswith("malformed YAML")
    assert "end of stream" in message


def test_yaml_unclosed_quote_names_the_quote(tmp_path: Path) -> None:
    """An unclosed quote's message says a quoted scalar is unclosed and where it began."""
    text = BASE_TEXT[: -len('"return 0"\n')] + '"return 0\n'
    m = write_policy(tmp_path, text)
    location, message = diagnose(m.path)
    assert "quoted scalar" in message
    quote = at(text, '"return 0\n')
    assert quote in f"{location} {message}"


def test_yaml_unclosed_quote_mid_file(tmp_path: Path) -> None:
    """An unclosed quote in the middle swallows lines; PyYAML reports the next key's value."""
    m = mutate(tmp_path, NAME, 'name: "linux-5.9\n')
    location, message = diagnose(m.path)
    assert m.where('title: "Linux', len('title: "')) == location
    assert message.startswith("malformed YAML: expected <block end>")


def test_empty_file(tmp_path: Path) -> None:
    """An empty file is an empty policy at 1:1."""
    m = write_policy(tmp_path, "# nothing\n")
    assert (f"{m.path}:1:1", "empty policy file: expected a mapping") == diagnose(m.path)


# -- structure -------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """An unknown top-level key is reported at the key, with the allowed keys."""
    m = mutate(tmp_path, NAME, NAME + "hook: {}\n")
    location, message = diagnose(m.path)
    assert m.where("hook: {}") == location
    assert message.startswith("unknown key 'hook' in policy: expected one of fsgs-policy, name")
    assert "hooks" in message


def test_missing_hooks(tmp_path: Path) -> None:
    """A policy without 'hooks' is reported at the policy mapping (its first key)."""
    m = write_policy(tmp_path, BASE_TEXT[: BASE_TEXT.index(HOOKS) + 1])
    assert (m.where(VERSION), "missing key 'hooks' in policy") == diagnose(m.path)


def test_hooks_as_string(tmp_path: Path) -> None:
    """'hooks' given a string is a type error at the string."""
    m = write_policy(tmp_path, BASE_TEXT[: BASE_TEXT.index(HOOKS) + 1] + 'hooks: "none"\n')
    location, message = diagnose(m.path)
    assert m.where('"none"') == location
    assert "hooks: expected a mapping, got the string 'none'" == message


def test_missing_hook(tmp_path: Path) -> None:
    """A missing hook is reported with its name and what it models."""
    m = mutate(tmp_path, SIGRETURN, "")
    location, message = diagnose(m.path)
    assert m.where(VERSION) == location
    assert message.startswith("missing hook 'sigreturn' (")
    assert message.endswith("expected a statement list")


def test_unknown_hook(tmp_path: Path) -> None:
    """An unknown hook is reported at its key, with the hooks that exist."""
    m = mutate(tmp_path, SIGRETURN, SIGRETURN + "  sigreturns: []\n")
    location, message = diagnose(m.path)
    assert m.where("sigreturns") == location
    assert message.startswith("unknown hook 'sigreturns': expected one of exec, switch_out")


def test_duplicate_hook(tmp_path: Path) -> None:
    """A hook defined twice is a duplicate key at the second definition."""
    m = mutate(tmp_path, SIGRETURN, SIGRETURN * 2)
    location, message = diagnose(m.path)
    assert m.where(SIGRETURN * 2, len(SIGRETURN) + 2) == location
    assert "hooks: duplicate key 'sigreturn'" == message


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    """A top-level key given twice is reported at the second one."""
    m = mutate(tmp_path, NAME, NAME + "name: other\n")
    location, message = diagnose(m.path)
    assert m.where("name: other") == location
    assert "policy: duplicate key 'name'" == message


def test_version_2(tmp_path: Path) -> None:
    """fsgs-policy: 2 is refused at the value."""
    m = mutate(tmp_path, VERSION, "fsgs-policy: 2\n")
    assert (m.where("fsgs-policy: 2", 13), "fsgs-policy: expected 1, got 2") == diagnose(m.path)


def test_setting_as_string(tmp_path: Path) -> None:
    """A setting whose value is a string is a type error at the value."""
    m = mutate(tmp_path, X86_16BIT, '  x86_16bit:\n    value: "yes"\n')
    location, message = diagnose(m.path)
    assert m.where('"yes"') == location
    assert (
        "setting 'x86_16bit': expected a boolean or a non-negative integer, got the string 'yes'"
        == message
    )


def test_required_setting_of_wrong_type(tmp_path: Path) -> None:
    """A required boolean setting given an integer is refused at the setting's key."""
    m = mutate(tmp_path, FSGSBASE, "  fsgsbase:\n    value: 3\n")
    location, message = diagnose(m.path)
    assert m.where("  fsgsbase:\n    value: 3", 2) == location
    assert message.startswith("setting 'fsgsbase': expected a bool")


def test_negative_constant(tmp_path: Path) -> None:
    """A negative constant is out of range at its value."""
    m = mutate(tmp_path, SETREGS, "\nconstants:\n  NEG: -1\n" + SETREGS.lstrip("\n"))
    location, message = diagnose(m.path)
    assert m.where("NEG: -1", 5) == location
    assert "constant 'NEG': expected 0..2**64-1, got -1" == message


def test_state_width_65(tmp_path: Path) -> None:
    """A policy-declared state field wider than 64 bits is refused at the width."""
    m = mutate(tmp_path, SETREGS, "\nstate:\n  thread:\n    extra: 65\n" + SETREGS.lstrip("\n"))
    location, message = diagnose(m.path)
    assert m.where("extra: 65", 7) == location
    assert "width of thread.extra: expected 1..64, got 65" == message


def test_state_field_clash_located_at_field(tmp_path: Path) -> None:
    """A state field named like a built-in thread field is reported at that field."""
    m = mutate(tmp_path, SETREGS, "\nstate:\n  thread:\n    fsbase: 64\n" + SETREGS.lstrip("\n"))
    location, message = diagnose(m.path)
    assert "state.thread.fsbase: clashes with a built-in field" == message
    assert m.where("    fsbase: 64", 4) == location


def test_include_missing_file(tmp_path: Path) -> None:
    """An include of a file that does not exist is reported at the include item."""
    m = mutate(tmp_path, INCLUDE, "include: [lib/nope.yaml]\n")
    location, message = diagnose(m.path)
    assert m.where("lib/nope.yaml") == location
    path = str(tmp_path / "lib" / "nope.yaml")
    assert f"include: no such file {path!r}: expected a policy library there" == message


def test_error_in_included_library(tmp_path: Path) -> None:
    """A syntax error in an included library is located in the library file."""
    m = write_policy(tmp_path, BASE_TEXT)
    lib = tmp_path / "lib" / "linux-common.yaml"
    lib_text = lib.read_text(encoding="utf-8")
    old = '    body: "(sel >> 3) & 0x1fff"\n'
    assert 1 == lib_text.count(old)
    new = '    body: "(sel >> 3) &"\n'
    lib_text = lib_text.replace(old, new)
    lib.write_text(lib_text, encoding="utf-8")
    location, message = diagnose(m.path)
    assert f"{lib}:{at(lib_text, new, new.index('&') + 1)}" == location
    assert (
        "syntax error: expected a number, a name, '(' or a unary operator, got end of expression"
        == message
    )


def test_setregs_unknown_slot(tmp_path: Path) -> None:
    """An unknown register slot in setregs order is reported at the slot."""
    m = mutate(tmp_path, ORDER, "  order: [r15, r99, r13,")
    location, message = diagnose(m.path)
    assert m.where("r99") == location
    assert "unknown register slot 'r99': expected a field of struct user_regs_struct" == message


def test_setregs_missing_slot(tmp_path: Path) -> None:
    """A setregs order without r14 is reported at the list."""
    m = mutate(tmp_path, ORDER, "  order: [r15, r13,")
    location, message = diagnose(m.path)
    assert m.where("[r15, r13,") == location
    assert "setregs order: expected each of the 27 user_regs_struct slots exactly once" == message


# -- expression syntax -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "token", "expected", "got"),
    [
        # double-quoted scalars
        ('    - "prev.index :="\n', '"\n', "a number, a name, '(' or a unary operator",
         "end of expression"),
        ('    - "return a +* b"\n', "*", "a number, a name, '(' or a unary operator", "'*'"),
        ('    - "return (task.index + 1"\n', '"\n', "')'", "end of expression"),
        ('    - "return task.index + 1)"\n', ")", "an operator or end of expression", "')'"),
        ('    - "return 1 < 2 < 3 ? 1 : 0"\n', "< 3",
         "'&&' or '||' between comparisons (chains are not allowed)", "'<'"),
        # a plain scalar, a single-quoted one, and one in a flow sequence
        ("    - return a +* b\n", "*", "a number, a name, '(' or a unary operator", "'*'"),
        ("    - 'return a +* b'\n", "*", "a number, a name, '(' or a unary operator", "'*'"),
        ('    - if: "current"\n      then: ["return a +* b"]\n    - "return 0"\n', "*",
         "a number, a name, '(' or a unary operator", "'*'"),
        ('    - "return 0 +"   # a comment\n', '"   #', "a number, a name, '(' or a unary operator",
         "end of expression"),
    ],
    ids=["assign-nothing", "plus-times", "unclosed-paren", "extra-paren", "chained-compare",
         "plain", "single-quoted", "flow-sequence", "trailing-comment"],
)  # fmt: skip
def test_expression_syntax_error(
    tmp_path: Path, line: str, token: str, expected: str, got: str
) -> None:
    """A syntax error is located at the offending token inside the YAML string."""
    m = mutate(tmp_path, PEEK_SEL, line)
    location, message = diagnose(m.path)
    assert m.where(line, line.index(token)) == location
    assert f"syntax error: expected {expected}, got {got}" == message


def test_expression_syntax_error_in_switch_out(tmp_path: Path) -> None:
    """An assignment with nothing on the right (\"prev.index :=\") fails at the string's end."""
    line = '        - "prev.base :="\n'
    m = mutate(tmp_path, SWITCH_OUT_BASE, line)
    location, message = diagnose(m.path)
    assert m.where(line, line.index('"\n')) == location
    assert message.endswith("got end of expression")


def test_unexpected_character(tmp_path: Path) -> None:
    """A character that is no token is reported at that character."""
    line = '    - "return 1 $ 2"\n'
    m = mutate(tmp_path, PEEK_SEL, line)
    location, message = diagnose(m.path)
    assert m.where(line, line.index("$")) == location
    assert message.startswith("unexpected character '$' in expression: expected")


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('    - >\n      return task.index + * 1\n', "* 1"),
        ('    - >\n      return task.index\n      + * 1\n', "* 1"),
        ('    - |\n      return task.index\n      + * 1\n', "* 1"),
        ('    - "return task.index\n      + * 1"\n', "* 1"),
        ("    - return task.index\n      + * 1\n", "* 1"),
        ('    - "return\\ttask.index + * 1"\n', "* 1"),
    ],
    ids=["folded-one-line", "folded-two-lines", "literal-two-lines", "double-quoted-two-lines",
         "plain-two-lines", "double-quoted-escape"],
)  # fmt: skip
def test_expression_error_in_multiline_scalar(tmp_path: Path, line: str, needle: str) -> None:
    """A syntax error in a block, multi-line or escaped scalar is located at the real token."""
    m = mutate(tmp_path, PEEK_SEL, line)
    location, message = diagnose(m.path)
    assert message.endswith("got '*'")
    assert m.where(line, line.index(needle)) == location


def test_hex_prefix_with_only_underscores(tmp_path: Path) -> None:
    """'0x_' is a syntax error (an InputError), not a crash."""
    line = '    - "return 0x_"\n'
    m = mutate(tmp_path, PEEK_SEL, line)
    location, message = diagnose(m.path)
    assert m.where(line, line.index("0x_")) == location
    assert "expected" in message


def test_deeply_nested_parentheses(tmp_path: Path) -> None:
    """200 nested parentheses either parse or give an InputError, never a crash."""
    m = mutate(tmp_path, PEEK_SEL, f'    - "return {"(" * 200}1{")" * 200}"\n')
    try:
        load_checked(str(m.path))
    except InputError as exc:
        assert str(m.path) in exc.one_line()


# -- names and types -------------------------------------------------------------------------


def _single_error(tmp_path: Path, old: str, line: str, needle: str) -> tuple[str, str, str]:
    """(expected location of *needle* in *line*, actual location, message) after one change."""
    m = mutate(tmp_path, old, line)
    location, message = diagnose(m.path)
    return m.where(line, line.index(needle)), location, message


def test_unknown_state_field(tmp_path: Path) -> None:
    """task.gsbasee is an unknown thread field, located at the name."""
    want, location, message = _single_error(
        tmp_path, PEEK_SEL, '    - "return task.gsbasee"\n', "task.gsbasee"
    )
    assert want == location
    assert message.startswith("unknown field 'gsbasee' of thread: expected one of fsindex")


def test_unknown_root(tmp_path: Path) -> None:
    """tusk.index has an unknown root, located at the name."""
    want, location, message = _single_error(
        tmp_path, PEEK_SEL, '    - "return tusk.index"\n', "tusk"
    )
    assert want == location
    assert message.startswith("unknown name 'tusk.index': expected a local, a constant or one of")


def test_unknown_function(tmp_path: Path) -> None:
    """An unknown function in an expression is located at the call."""
    want, location, message = _single_error(
        tmp_path, PEEK_SEL, '    - "return frobnicate(1)"\n', "frobnicate"
    )
    assert (want, "unknown function 'frobnicate'") == (location, message)


def test_unknown_procedure(tmp_path: Path) -> None:
    """An unknown procedure called as a statement is located at the call."""
    line = '    - "frobnicate(1)"\n    - "return 0"\n'
    want, location, message = _single_error(tmp_path, PEEK_SEL, line, "frobnicate")
    assert (want, "unknown procedure 'frobnicate'") == (location, message)


def test_builtin_wrong_arity(tmp_path: Path) -> None:
    """min() with one argument is an arity error at the call."""
    want, location, message = _single_error(tmp_path, PEEK_SEL, '    - "return min(1)"\n', "min")
    assert (want, "min() takes 2 arguments, got 1") == (location, message)


def test_procedure_wrong_arity(tmp_path: Path) -> None:
    """A library procedure called with too many arguments is an arity error at the call."""
    line = '    - "r := write_ldt(1)"\n    - "return r"\n'
    want, location, message = _single_error(tmp_path, PEEK_SEL, line, "write_ldt")
    assert (want, "write_ldt() takes 0 arguments, got 1") == (location, message)


def test_procedure_used_as_value(tmp_path: Path) -> None:
    """A procedure inside an expression is refused at the call."""
    want, location, message = _single_error(
        tmp_path, PEEK_SEL, '    - "return 1 + write_ldt()"\n', "write_ldt"
    )
    assert (want, "procedure write_ldt() used as a value: expected a function") == (
        location,
        message,
    )


def test_condition_type_mismatch(tmp_path: Path) -> None:
    """if: \"task.index\" is a u64 where a bool is expected."""
    line = '    - if: "task.index"\n      then: ["return 1"]\n    - "return 0"\n'
    want, location, message = _single_error(tmp_path, PEEK_SEL, line, "task.index")
    assert (want, "if condition: expected a bool, got a u64") == (location, message)


def test_compare_types_mismatch(tmp_path: Path) -> None:
    """Comparing a segment name with a number is a type error at the comparison."""
    want, location, message = _single_error(
        tmp_path, PEEK_SEL, '    - "return fs == 1 ? 1 : 0"\n', "fs =="
    )
    assert (want, "'==' compares a seg with a u64: expected equal types") == (location, message)


def test_live_outside_each_seg(tmp_path: Path) -> None:
    """live.sel in a hook with no bound segment is refused at the name."""
    want, location, message = _single_error(
        tmp_path, PEEK_OTHER, '    - "r := live.sel"\n', "live.sel"
    )
    assert (want, "'live' needs a segment: use it inside each_seg") == (location, message)


def test_assign_read_only_cpu_register(tmp_path: Path) -> None:
    """cpu.fs := 0 is an assignment to a read-only CPU register."""
    line = '    - "cpu.fs := 0"\n    - "return 0"\n'
    want, location, message = _single_error(tmp_path, PEEK_SEL, line, "cpu.fs")
    assert want == location
    assert message.startswith("cannot assign to 'cpu.fs': read-only")


def test_return_in_hook_without_result(tmp_path: Path) -> None:
    """return in switch_out (which returns nothing) is refused at the statement."""
    line = '    - "return 0"\n'
    m = mutate(tmp_path, SWITCH_OUT_BASE, SWITCH_OUT_BASE + line)
    location, message = diagnose(m.path)
    assert m.where(SWITCH_OUT_BASE + line, len(SWITCH_OUT_BASE) + line.index("return")) == location
    assert "hook 'switch_out' returns nothing: unexpected return" == message


def test_effectful_builtin_in_expression(tmp_path: Path) -> None:
    """x := 1 + load_seg(0) uses a state-changing builtin as a value."""
    line = '    - "x := 1 + load_seg(0)"\n    - "return 0"\n'
    want, location, message = _single_error(tmp_path, PEEK_SEL, line, "load_seg")
    assert want == location
    assert message.startswith("load_seg() changes state: expected it as a statement")


def test_effectful_builtin_as_statement_is_accepted(tmp_path: Path) -> None:
    """x := load_seg(0) in a segment hook is a well-formed statement."""
    m = mutate(tmp_path, PEEK_SEL, '    - "ok := load_seg(0)"\n    - "return 0"\n')
    assert "linux-5.9" == load_checked(str(m.path)).name


def test_mutually_recursive_procedures(tmp_path: Path) -> None:
    """Two procedures calling each other are refused where the cycle closes."""
    procs = '\nprocedures:\n  pa:\n    body: ["pb()"]\n  pb:\n    body: ["pa()"]\n'
    text = BASE_TEXT.replace(SETREGS, procs + SETREGS.lstrip("\n"))
    text = text.replace(PEEK_SEL, '    - "pa()"\n    - "return 0"\n')
    m = write_policy(tmp_path, text)
    location, message = diagnose(m.path)
    assert m.where('pb:\n    body: ["pa()"]', len('pb:\n    body: ["')) == location
    assert "recursion" in message


def test_recursive_function(tmp_path: Path) -> None:
    """A function that calls itself is an InputError at the recursive call."""
    funcs = '\nfunctions:\n  fa:\n    params: [x]\n    body: "fa(x)"\n'
    m = mutate(tmp_path, SETREGS, funcs + SETREGS.lstrip("\n"))
    location, message = diagnose(m.path)
    assert m.where('body: "fa(x)"', len('body: "')) == location
    assert "recursion" in message


# -- the expression parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a | b & c", "(| a (& b c))"),
        ("a & b | c", "(| (& a b) c)"),
        ("a ^ b | c & d", "(| (^ a b) (& c d))"),
        ("x & 3 == 3", "(== (& x 3) 3)"),
        ("a || b && c", "(|| a (&& b c))"),
        ("a == b && c != d", "(&& (== a b) (!= c d))"),
        ("a ? b : c ? d : e", "(? a b (? c d e))"),
        ("a ? b ? c : d : e", "(? a (? b c d) e)"),
        ("a ? b : c ? d : e ? f : g", "(? a b (? c d (? e f g)))"),
        ("a => b => c", "(=> a (=> b c))"),
        ("a || b => c && d => e", "(=> (|| a b) (=> (&& c d) e))"),
        ("p => q ? 1 : 2", "(? (=> p q) 1 2)"),
        ("!!a", "(! (! a))"),
        ("-~-x * 2", "(* (- (~ (- x))) 2)"),
        ("-x + 1", "(+ (- x) 1)"),
        ("- -x", "(- (- x))"),
        ("!a && b", "(&& (! a) b)"),
        ("~x & 0xff", "(& (~ x) 255)"),
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("a - b - c", "(- (- a b) c)"),
        ("1 << 2 + 3", "(<< 1 (+ 2 3))"),
        ("a >> 1 & 1", "(& (>> a 1) 1)"),
        ("(a | b) & c", "(& (| a b) c)"),
        ("x in [1, 2, y]", "(in x [1 2 y])"),
        ("x + 1 in [SLOT_CS, 2]", "(in (+ x 1) [SLOT_CS 2])"),
        ("x in [1] && y", "(&& (in x [1]) y)"),
        ("0xdead_beef", "3735928559"),
        ("0XFF", "255"),
        ("1_000", "1000"),
        ("010", "10"),
        ("true || false", "(|| true false)"),
        ("task.tls[idx - 12]", "task.tls[(- idx 12)]"),
        ("mm.ldt[arg.entry]", "mm.ldt[arg.entry]"),
        ("a . b", "a.b"),
        ("f()", "f()"),
        ("f(a, g(b, 1 + 2))", "f(a, g(b, (+ 1 2)))"),
        ("desc_base(t.tls[0]) + 1", "(+ desc_base(t.tls[0]) 1)"),
    ],
)
def test_parse_expr_shapes(text: str, tree: str) -> None:
    """parse_expr builds the tree that the documented precedence and associativity give."""
    assert tree == parse(text)


def test_parse_expr_spans() -> None:
    """Nodes carry the span of their first token, offset from the string's start."""
    e = parse_expr("a + task.tls[1]", Span("f.yaml", 7, 12))
    assert isinstance(e, ast.Binary)
    assert Span("f.yaml", 7, 12) == e.span
    assert Span("f.yaml", 7, 16) == e.right.span
    assert isinstance(e.right, ast.Name)
    assert e.right.index is not None
    assert Span("f.yaml", 7, 25) == e.right.index.span


def test_parse_expr_multiline_text_columns() -> None:
    """A syntax error after a newline in the text is at the right line and column."""
    with pytest.raises(InputError) as info:
        parse_expr("a +\n  b + * c", Span("f.yaml", 3, 9))
    expected = (
        "f.yaml:4:7: error: syntax error: expected a number, a name, '(' or a unary operator, "
        "got '*'"
    )
    assert expected == info.value.one_line()


@pytest.mark.parametrize(
    ("text", "col", "got"),
    [
        ("a +* b", 4, "'*'"),
        ("(a + 1", 7, "end of expression"),
        ("a + 1)", 6, "')'"),
        ("1 < 2 < 3", 7, "'<'"),
        ("a in b", 6, "'b'"),
        ("a ? b", 6, "end of expression"),
        ("f(,)", 3, "','"),
        ("a.b[0].c", 7, "'.'"),
        ("a.", 3, "end of expression"),
        ("1 2", 3, "'2'"),
    ],
)
def test_parse_expr_error_columns(text: str, col: int, got: str) -> None:
    """Syntax errors are located at the offending token and say what was found."""
    with pytest.raises(InputError) as info:
        parse_expr(text, Span("f.yaml", 1, 1))
    line = info.value.one_line()
    location, _, message = line.partition(": error: ")
    assert f"f.yaml:1:{col}" == location
    assert message.startswith("syntax error: expected ")
    assert message.endswith(f"got {got}")


def test_parse_expr_empty() -> None:
    """An empty expression is an error at the string's start."""
    with pytest.raises(InputError) as info:
        parse_expr("   ", Span("f.yaml", 2, 5))
    assert "f.yaml:2:5: error: empty expression: expected an expression" == info.value.one_line()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("return a + 1", ast.Return),
        ("x := a + 1", ast.Assign),
        ("x := f(a)", ast.CallStmt),
        ("ldt_reset()", ast.CallStmt),
    ],
)
def test_parse_stmt_kinds(text: str, kind: type) -> None:
    """The three statement forms parse to their node types."""
    assert kind is type(parse_stmt(text, Span("f.yaml", 1, 1)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 + 2", "not a statement: expected 'return EXPR', 'NAME := EXPR' or a procedure call"),
        ("f() := 1", "bad assignment target: expected a field or variable name before ':='"),
        ("", "empty statement: expected a statement"),
    ],
)
def test_parse_stmt_errors(text: str, message: str) -> None:
    """Expressions that are no statements are refused at the statement's start."""
    with pytest.raises(InputError) as info:
        parse_stmt(text, Span("f.yaml", 4, 8))
    assert f"f.yaml:4:8: error: {message}" == info.value.one_line()


# -- the interpreter, through a policy -------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "fs", "gs"),
    [
        ("1 + 2 * 3", "0x7", "0x7"),
        ("(1 + 2) * 3", "0x9", "0x9"),
        ("-1", "0xffffffffffffffff", "0xffffffffffffffff"),
        ("0 - 3", "0xfffffffffffffffd", "0xfffffffffffffffd"),
        ("0xffffffffffffffff + 1", "0x0", "0x0"),
        ("~0 >> 60", "0xf", "0xf"),
        ("1 << 63 << 1", "0x0", "0x0"),
        ("2 ^ 3 | 4 & 6", "0x5", "0x5"),
        ("5 in [1, 5] ? 7 : 8", "0x7", "0x7"),
        ("false ? 1 : true ? 2 : 3", "0x2", "0x2"),
        ("1 < 2 && 2 < 3 ? 1 : 0", "0x1", "0x1"),
        ("min(3, 2) + max(3, 2)", "0x5", "0x5"),
        ("bits(0xabcd, 11, 4)", "0xbc", "0xbc"),
        ("desc_base(0x12cf_f234_5678_ffff)", "0x12345678", "0x12345678"),
        ("sel_index(USER_DS)", "0x5", "0x5"),
        ("invalid_selector(4) ? 1 : 0", "0x1", "0x1"),
        ("seg == fs ? 1 : 2", "0x1", "0x2"),
        ("task.tls[7]", "0x0", "0x0"),
    ],
)
def test_interpreter_evaluates_expressions(tmp_path: Path, expr: str, fs: str, gs: str) -> None:
    """ptrace_peek of fs and gs reports what ptrace_peek_sel's crafted return evaluates to."""
    m = mutate(tmp_path, PEEK_SEL, f'    - "return {expr}"\n')
    policy = load_checked(str(m.path))
    trace = Trace(events=(PtracePeek(field=PtraceField.FS), PtracePeek(field=PtraceField.GS)))
    run = simulate(policy, trace, CPU_MODELS["intel"])
    assert (fs, gs) == run.results
