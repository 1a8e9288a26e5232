# SPDX-License-Identifier: MIT
"""Policies and invariants the checkers let through, and that then crashed or hung a run.

These are the findings of a fuzzing pass over policy/check.py and the checking part of
policy/invariants.py: each input below passed the checker and was then a Python exception
(exit 70) or a hang in ``simulate`` or ``prove``, or a degenerate file proved silently. Each
is now one located line and exit code 2, found before any run. Policies are mutated copies
of linux-5.9 (the helpers of test_policy_lang); each runs through the CLI.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from typer.testing import Result

from fsgs_smt.errors import InputError
from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.policy.check import MAX_INLINED_DEPTH, MAX_INLINED_NODES
from fsgs_smt.source import Span
from tests.cli.test_cli_errors import error_line, invoke, loc, trace_text, write
from tests.unit.test_policy_lang import PEEK_SEL, SETREGS, Mutant, mutate

PEEK = '{"op": "ptrace_peek", "field": "fs"}'  # runs ptrace_peek_sel, the hook PEEK_SEL is in


# -- helpers -----------------------------------------------------------------------------------


def simulate(m: Mutant, *events: str) -> Result:
    """``simulate`` the mutated policy on a trace of *events* (default: one ptrace_peek)."""
    trace = write(m.path.parent, trace_text(*(events or (PEEK,))))
    return invoke("simulate", str(m.path), str(trace))


def peek(*lines: str) -> str:
    """ptrace_peek_sel's body, one statement per line (YAML flow or a quoted string)."""
    return "".join(f"    - {line}\n" for line in lines)


def defined(tmp_path: Path, section: str, body: str, *lines: str) -> Mutant:
    """linux-5.9 with a ``functions:`` or ``procedures:`` *section* of *body* (its entries),
    and ptrace_peek_sel made of *lines* (unchanged if none)."""
    text = f"\n{section}:\n{body}" + SETREGS.lstrip("\n")
    m = mutate(tmp_path, SETREGS, text)
    if lines:
        m = mutate_again(m, PEEK_SEL, peek(*lines))
    return m


def mutate_again(m: Mutant, old: str, new: str) -> Mutant:
    """*m* with the one occurrence of *old* replaced by *new*."""
    assert 1 == m.text.count(old)
    text = m.text.replace(old, new)
    m.path.write_text(text, encoding="utf-8")
    return Mutant(m.path, text)


def prove(path: Path, *options: str) -> Result:
    """``prove`` linux-5.9 with the invariants file *path* (depth 1, intel)."""
    return invoke("prove", "linux-5.9", "--invariants", str(path), "--cpu", "intel",
                  "--depth", "1", *options)  # fmt: skip


def invariants(tmp_path: Path, *items: str) -> tuple[Path, str]:
    """An invariants file of *items* (each one invariant's YAML lines, without the id), and
    its text."""
    text = "fsgs-invariants: 1\ninvariants:\n" + "".join(
        f"  - id: i{n}\n    statement: s\n    source: t\n{item}" for n, item in enumerate(items)
    )
    return write(tmp_path, text, "inv.yaml"), text


# -- A4: definite assignment -------------------------------------------------------------------


def test_a_local_assigned_in_one_branch_is_refused_where_it_is_read(tmp_path: Path) -> None:
    """``y`` assigned only when ``current`` was an AssertionError at run."""
    m = mutate(tmp_path, PEEK_SEL, peek('{if: current, then: ["y := 1"]}', '"return y"'))
    message = error_line(simulate(m), m.where('"return y"', len('"return ')))
    assert message == (
        "local 'y' may be unassigned here: expected an assignment to it on every path before "
        "this use"
    )


def test_a_local_assigned_in_both_branches_is_accepted(tmp_path: Path) -> None:
    m = mutate(tmp_path, PEEK_SEL, peek(
        '{if: current, then: ["y := 1"], else: ["y := 2"]}', '"return y"'
    ))  # fmt: skip
    assert 0 == simulate(m).exit_code


def test_a_local_read_in_the_other_branch_is_refused(tmp_path: Path) -> None:
    m = mutate(tmp_path, PEEK_SEL, peek(
        '{if: current, then: ["y := 1"], else: ["return y"]}', '"return 0"'
    ))  # fmt: skip
    error_line(simulate(m), m.where('return y"', len("return ")))


def test_a_return_does_not_make_a_local_assigned(tmp_path: Path) -> None:
    """``y`` is assigned wherever the then-branch does not return: the simulator never reads
    it unassigned, but the symbolic interpreter runs ``return y`` under a guard it cannot
    fold to false, with ``y`` never assigned when the setting is false (an AssertionError
    in ``prove``). So a return does not end a path for definite assignment."""
    m = mutate(tmp_path, PEEK_SEL, peek(
        '{if: "task.fsbase == 0", then: ["return 0"], else: [{if: "!setting.fsgsbase", '
        'then: ["y := 1"], else: ["return 1"]}]}',
        '"return y"',
    ))  # fmt: skip
    error_line(simulate(m), m.where('"return y"', len('"return ')))


def test_each_seg_assigns_for_the_statements_after_it(tmp_path: Path) -> None:
    old = '        - "prev.base := live.base"\n'
    m = mutate(tmp_path, old, old + '        - "x := 1"\n')
    m = mutate_again(m, PEEK_SEL, peek('"return task.index"'))
    assert 0 == simulate(m).exit_code


# -- hooks and procedures that must return a value ---------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [('"x := 1"',), ('{if: current, then: ["return 1"]}',)],
    ids=["never", "on-one-path"],
)
def test_a_hook_that_may_end_without_its_value_is_refused(
    tmp_path: Path, lines: tuple[str]
) -> None:
    """ptrace_peek_sel returns the selector: ending without a return gave 0 silently."""
    m = mutate(tmp_path, PEEK_SEL, peek(*lines))
    message = error_line(simulate(m), m.where("  ptrace_peek_sel:", 2))
    assert message == (
        "hook 'ptrace_peek_sel' may end without a value: expected a return at the end of every path"
    )


def test_a_procedure_used_as_a_value_must_return_on_every_path(tmp_path: Path) -> None:
    m = defined(
        tmp_path, "procedures", '  nr:\n    body: [{if: current, then: ["return 1"]}]\n',
        '"r := nr()"', '"return r"',
    )  # fmt: skip
    message = error_line(simulate(m), m.where('"r := nr()"', len('"r := ')))
    assert message == (
        "nr() may end without a value: expected a procedure that returns on every path on the "
        "right of ':='"
    )


def test_a_procedure_that_may_end_without_a_value_is_a_statement(tmp_path: Path) -> None:
    m = defined(
        tmp_path, "procedures", '  nr:\n    body: [{if: current, then: ["return 1"]}]\n',
        '"nr()"', '"return 0"',
    )  # fmt: skip
    assert 0 == simulate(m).exit_code


# -- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "body"),
    [
        ("procedures", '  wrbase:\n    params: [v]\n    body: ["return v"]\n'),
        ("functions", '  min:\n    params: [a, b]\n    body: "a"\n'),
    ],
    ids=["procedure", "function"],
)
def test_a_definition_named_like_a_builtin_is_refused(
    tmp_path: Path, section: str, body: str
) -> None:
    """A procedure ``wrbase`` silently replaced the builtin in every hook."""
    m = defined(tmp_path, section, body)
    name = body.split(":", maxsplit=1)[0].strip()
    message = error_line(simulate(m), m.where(f"  {name}:", 2))
    assert message.startswith(
        f"{section[:-1]} {name!r} has the name of a builtin: expected another name (the "
        "builtins are desc_base, "
    )


def test_a_procedure_named_like_a_function_is_refused(tmp_path: Path) -> None:
    m = defined(tmp_path, "procedures", '  sel_index:\n    params: [s]\n    body: ["return s"]\n')
    message = error_line(simulate(m), m.where("  sel_index:\n    params: [s]", 2))
    assert message.startswith("procedure 'sel_index' has the name of a function (at ")


# -- procedures called nowhere ---------------------------------------------------------------


def test_a_procedure_called_nowhere_is_checked(tmp_path: Path) -> None:
    m = defined(tmp_path, "procedures", '  nobody:\n    body: ["x := task.bogus"]\n')
    message = error_line(simulate(m), m.where("task.bogus"))
    assert message.startswith("unknown field 'bogus' of thread: expected one of fsindex")


@pytest.mark.parametrize(
    ("statement", "needle", "message"),
    [
        ("return s + 1", "s + 1", "left of '+': expected a u64, got a seg"),
        ("return arg.bogus", "arg.bogus", "unknown field 'bogus' of arg of any hook: expected"),
        ("t.fsbase := 1 == 1", "t.fsbase", "'t.fsbase' is a u64: expected a u64, got a bool"),
        ("return t", 't"]', "'t' is a task: expected a value"),
    ],
    ids=["parameter-used-as-two-types", "no-hook-has-it", "field-type", "task-as-value"],
)
def test_a_procedure_called_nowhere_is_type_checked(
    tmp_path: Path, statement: str, needle: str, message: str
) -> None:
    """Its names resolve in some hook; a parameter takes the type of its first use (``s``
    is compared with fs, ``t`` has fields: a task)."""
    body = (f'  nobody:\n    params: [t, s]\n    body: ["x := s == fs", "t.gsbase := 0", '
            f'"{statement}"]\n')  # fmt: skip
    m = defined(tmp_path, "procedures", body)
    assert error_line(simulate(m), m.where(needle)).startswith(message)


def test_a_well_formed_procedure_called_nowhere_is_accepted(tmp_path: Path) -> None:
    """Any hook's names, a segment (or each_seg), tasks and values as parameters."""
    body = (
        "  nobody:\n    params: [t, s, f]\n    body:\n"
        '      - {if: "f && s == fs", then: ["t.fsbase := arg.value", "load_tls(t)"]}\n'
        '      - {each_seg: ["ok := load_seg(0)"]}\n'
        '      - "return desc_base(mm.ldt[0]) + frame.fs"\n'
    )
    m = defined(tmp_path, "procedures", body)
    assert 0 == simulate(m).exit_code, m.path.read_text()


# -- types the interpreter could not run -----------------------------------------------------


def test_a_bool_argument_of_a_function_is_refused(tmp_path: Path) -> None:
    """``inc(true)`` ran as 2 on the simulator and was a z3 sort mismatch in ``prove``."""
    m = defined(tmp_path, "functions", '  inc:\n    params: [x]\n    body: "x + 1"\n',
                '"return inc(true)"')  # fmt: skip
    message = error_line(simulate(m), m.where("true)"))
    assert "argument of inc(): expected a u64, got a bool" == message


def test_a_segment_name_is_only_compared(tmp_path: Path) -> None:
    """``c ? fs : gs`` and ``s := fs`` were AttributeErrors in ``prove`` (no z3 term)."""
    m = mutate(tmp_path, PEEK_SEL, peek('"return (task.fsbase == 0 ? fs : gs) == fs ? 1 : 0"'))
    message = error_line(simulate(m), m.where("task.fsbase == 0 ?"))
    assert message.startswith("'?:' chooses a segment name: expected bool or u64 branches")
    m = mutate(tmp_path, PEEK_SEL, peek('"s := fs"', '"return s == fs ? 1 : 0"'))
    message = error_line(simulate(m), m.where('"s := fs"', 1))
    assert message.startswith("local 's' gets a segment name: expected a bool or a u64")


# -- B2: inlining ----------------------------------------------------------------------------------


def _doubling(kind: str, n: int) -> str:
    """Definitions 0..n, each (but the first) calling the one before twice."""
    if kind == "functions":
        out = '  f0:\n    params: [x]\n    body: "x + 1"\n'
        for k in range(1, n + 1):
            out += f'  f{k}:\n    params: [x]\n    body: "f{k - 1}(x) + f{k - 1}(x)"\n'
        return out
    out = '  f0:\n    params: [x]\n    body: ["return x + 1"]\n'
    for k in range(1, n + 1):
        out += (f'  f{k}:\n    params: [x]\n    body: ["a := f{k - 1}(x)", '
                f'"b := f{k - 1}(x)", "return a + b"]\n')  # fmt: skip
    return out


@pytest.mark.parametrize("kind", ["functions", "procedures"])
def test_definitions_that_double_at_each_level_are_refused_not_hung(
    tmp_path: Path, kind: str
) -> None:
    """fN = f(N-1)(x) + f(N-1)(x) for N = 20 hung the checker (each call re-checked its
    callee) and would run 2**20 times per hook: the first too large once inlined is refused,
    at its name, having checked each definition once."""
    call = '"return f20(task.index)"' if kind == "functions" else '"r := f20(task.index)"'
    m = defined(tmp_path, kind, _doubling(kind, 20), call, '"return r"')
    if kind == "functions":
        m = mutate_again(m, peek(call, '"return r"'), peek(call))
    first = "f12" if kind == "functions" else "f11"  # a procedure's calls are larger
    message = error_line(simulate(m), m.where(f"  {first}:", 2))
    assert message.startswith(
        f"{kind[:-1]} {first!r} is too large once the functions and procedures it calls are "
        "inlined "
    )
    assert message.endswith(f"nodes): expected at most {MAX_INLINED_NODES}")


def test_doubling_below_the_bound_is_accepted(tmp_path: Path) -> None:
    m = defined(tmp_path, "functions", _doubling("functions", 8), '"return f8(0)"')
    result = simulate(m)
    assert 0 == result.exit_code
    assert "0x100" in result.stdout  # 2**8 times x + 1


def _chain(n: int) -> str:
    """Procedures q0..q(n-1), each calling the one before: as deep as they are many."""
    out = ""
    for k in range(n):
        body = f'["r := q{k - 1}()", "return r + 1"]' if k else '["return 0"]'
        out += f"  q{k}:\n    body: {body}\n"
    return out


def test_a_chain_of_calls_too_deep_is_refused(tmp_path: Path) -> None:
    """A long chain of calls was a RecursionError: every pass recurses through the calls."""
    m = defined(tmp_path, "procedures", _chain(200), '"r := q199()"', '"return r"')
    message = error_line(simulate(m), m.where("  q128:", 2))
    assert message.endswith(f"levels): expected at most {MAX_INLINED_DEPTH}")


def test_the_deepest_accepted_chain_of_calls_runs(tmp_path: Path) -> None:
    m = defined(tmp_path, "procedures", _chain(125), '"r := q124()"', '"return r"')
    result = simulate(m)
    assert 0 == result.exit_code, result.output
    assert "0x7c" in result.stdout


def test_a_recursive_function_is_refused_even_when_defined_after_its_caller(
    tmp_path: Path,
) -> None:
    body = '  fa:\n    params: [x]\n    body: "fb(x)"\n  fb:\n    params: [x]\n    body: "fa(x)"\n'
    m = defined(tmp_path, "functions", body)
    message = error_line(simulate(m), m.where('body: "fa(x)"', len('body: "')))
    assert "function 'fa' is recursive (fa -> fb -> fa): expected no recursion" == message


@pytest.mark.parametrize("name", ["linux-4.13", "linux-4.6", "linux-4.7", "linux-5.9",
                                  "lutomirski-2016"])  # fmt: skip
def test_the_shipped_policies_pass_the_stricter_checks(name: str) -> None:
    assert name == load_checked(name).name


# -- invariants: A5 bits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "needle", "message"),
    [
        ("bits(fs_base, 64, 0)", "64", "bits(): expected a literal bit number 0..63"),
        ("bits(fs_base, 3, 4)", "bits", "bits(x, hi, lo): expected hi >= lo"),
        ("bits(fs_base, gs, 0)", "gs, 0", "bits(): expected a literal bit number 0..63"),
    ],
    ids=["hi-64", "hi-below-lo", "not-literal"],
)
def test_bits_in_an_invariant_is_checked_as_in_a_policy(
    tmp_path: Path, expr: str, needle: str, message: str
) -> None:
    """These were a Z3Exception or an AssertionError in ``prove``."""
    path, text = invariants(tmp_path, f'    always: "{expr} == 0"\n')
    assert message == error_line(prove(path), loc(path, text, needle))


# -- invariants: A6 result names -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("r00.ran", "'r00.ran': expected r0.ran (an event number without leading zeros)"),
        ("r01.ret", "'r01.ret': expected r1.ret (an event number without leading zeros)"),
        ("r1.ran", "'r1.ran': there are only 1 events"),
        ("r" + "9" * 5000 + ".ran", "there are only 1 events"),
        ("r0.ret", "unknown result 'ret' of event 0 (yield): expected one of ran"),
    ],
    ids=["r00", "r01", "r1", "huge", "no-such-result"],
)
def test_a_result_name_is_one_the_run_has(tmp_path: Path, name: str, message: str) -> None:
    """``r00.ran`` passed the checker and was a KeyError in ``prove`` (the run names r0)."""
    path, text = invariants(tmp_path, f"    events: [{{op: yield}}]\n    expect: {name}\n")
    assert error_line(prove(path), loc(path, text, name)).endswith(message)


def test_r0_ran_is_read(tmp_path: Path) -> None:
    path, _ = invariants(tmp_path, "    events: [{op: yield}]\n    expect: r0.ran\n")
    assert 0 == prove(path).exit_code


# -- invariants: A7 CPU numbers ----------------------------------------------------------------


def test_a_migration_to_a_cpu_the_world_lacks_is_located(tmp_path: Path) -> None:
    """``migrate cpu: 2`` in a world of 2 CPUs was a ValueError in ``prove``; the number of
    CPUs is the proof's, so this is refused before any run, at the number."""
    item = "    events: [{op: migrate, cpu: 2}]\n    expect: after.cpu == 2\n"
    path, text = invariants(tmp_path, item)
    message = error_line(prove(path), loc(path, text, "2}"))
    assert "migrate to CPU 2: expected a CPU number in 0..1 (the world has 2 CPUs)" == message


def test_a_cpu_parameter_ranges_over_the_worlds_cpus(tmp_path: Path) -> None:
    """``migrate cpu: p.c`` with no assume: BMC found p.c = 254, whose replay was an error
    with no place (``<input>:1:1``). The parameter now ranges over the CPUs only."""
    item = ("    params: {c: 8}\n    events: [{op: migrate, cpu: p.c}]\n"
            "    expect: after.cpu < 2 && after.cpu == p.c\n")  # fmt: skip
    path, _ = invariants(tmp_path, item)
    result = prove(path, "--engine", "bmc", "--accept-bounded")
    assert (0, "") == (result.exit_code, result.stderr), result.output
    assert "BOUNDED" in result.stdout


def test_an_input_error_crosses_processes() -> None:
    """``prove --jobs`` runs CPU models in worker processes: an InputError raised there
    comes back by pickling (it was a TypeError)."""
    error = InputError(Span("f.yaml", 3, 4), "what: expected that")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert error.one_line() == again.one_line()


# -- invariants: degenerate lists, keys of another kind ------------------------------------------


@pytest.mark.parametrize(
    ("item", "needle", "message"),
    [
        (
            "    noninterference: []\n",
            "[]",
            "noninterference: expected at least one field of the view to compare",
        ),
        (
            "    noninterference: [fs, fs]\n",
            "fs]",
            "noninterference: duplicate field 'fs': expected each once",
        ),
        (
            '    always: "true"\n    lemmas: []\n',
            "[]",
            "lemmas: expected at least one lemma (or no lemmas)",
        ),
        (
            "    params: {}\n    events: [{op: yield}]\n    expect: r0.ran\n",
            "{}",
            "params: expected at least one parameter (or no params)",
        ),
    ],
    ids=["noninterference", "duplicate-field", "lemmas", "params"],
)
def test_a_degenerate_list_is_refused(tmp_path: Path, item: str, needle: str, message: str) -> None:
    """``noninterference: []`` compared nothing and was PROVED."""
    path, text = invariants(tmp_path, item)
    assert message == error_line(prove(path), loc(path, text, needle))


def test_an_invariants_file_without_invariants_is_refused(tmp_path: Path) -> None:
    text = "fsgs-invariants: 1\ninvariants: []\n"
    path = write(tmp_path, text, "inv.yaml")
    message = error_line(prove(path), loc(path, text, "[]"))
    assert "invariants: expected at least one invariant" == message


@pytest.mark.parametrize(
    ("item", "key", "expected"),
    [
        (
            '    always: "true"\n    assume: "((("\n',
            "assume",
            "an invariant with 'always': expected one of id, statement, source, always, lemmas",
        ),
        (
            '    always: "true"\n    params: {v: 8}\n',
            "params",
            "an invariant with 'always': expected one of id, statement, source, always, lemmas",
        ),
        (
            "    noninterference: [fs]\n    expect: r0.ran\n",
            "expect",
            "an invariant with 'noninterference': expected one of id, statement, source, "
            "noninterference, lemmas",
        ),
    ],
    ids=["assume-of-always", "params-of-always", "expect-of-noninterference"],
)
def test_a_key_of_another_kind_is_refused(
    tmp_path: Path, item: str, key: str, expected: str
) -> None:
    """An ``always:`` invariant with ``assume: "((("`` was accepted: the key was never read."""
    path, text = invariants(tmp_path, item)
    message = error_line(prove(path), loc(path, text, f"{key}:"))
    assert f"key {key!r} does not apply to {expected}" == message
