# SPDX-License-Identifier: MIT
"""Tests of the command line: every class of bad input is one stderr line and exit code 2.

Bad inputs go through typer's CliRunner (stderr is captured apart from stdout); the
``--debug`` traceback and the module entry point run in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import fsgs_smt
from fsgs_smt.cli import app
from fsgs_smt.pipeline import MAX_TIMEOUT
from fsgs_smt.policy.vocab import HOOKS
from fsgs_smt.semantics.events import OPS
from fsgs_smt.traces.fsgs_json import load_trace, parse_trace

POLICIES = Path(fsgs_smt.__file__).resolve().parent / "specs" / "policies"
SHIPPED = ("linux-4.13", "linux-4.6", "linux-4.7", "linux-5.9", "lutomirski-2016")
CLI = "<command line>:1:1"

# A trace with every op, yield with and without `other`, and observe with each `via`.
ALL_EVENTS = """\
{
  "format": "fsgs-trace/1",
  "cpu": "intel",
  "events": [
    {"op": "modify_ldt", "entry": 0, "base_addr": "0x7000", "limit": "0xfffff",
     "seg_32bit": 1, "contents": 0, "read_exec_only": 0, "limit_in_pages": 1,
     "seg_not_present": 0, "useable": 1},
    {"op": "mov_seg", "seg": "gs", "selector": "0x7"},
    {"op": "wrbase", "seg": "fs", "value": "0x1000"},
    {"op": "arch_prctl", "code": "SET_GS", "value": "0x2000"},
    {"op": "arch_prctl", "code": "GET_GS"},
    {"op": "set_thread_area", "entry_number": -1, "base_addr": "0x3000", "limit": "0xfffff",
     "seg_32bit": 1, "limit_in_pages": 1, "abi": "ia32"},
    {"op": "yield", "other": [{"op": "mov_seg", "seg": "fs", "selector": "0x2b"},
                              {"op": "wrbase", "seg": "gs", "value": "0x5"}]},
    {"op": "yield"},
    {"op": "interrupt"},
    {"op": "migrate", "cpu": 1},
    {"op": "observe"},
    {"op": "observe", "via": "rdbase"},
    {"op": "observe", "via": "arch_prctl"},
    {"op": "ptrace_peek", "field": "gs_base"},
    {"op": "ptrace_poke", "field": "fs", "value": "0x0"},
    {"op": "ptrace_setregs", "fields": {"fs_base": "0x4000", "gs": "0x0"}},
    {"op": "ptrace_setregs", "fields": {}},
    {"op": "signal"},
    {"op": "fork"},
    {"op": "exec"},
    {"op": "observe", "via": "fault"}
  ]
}
"""

runner = CliRunner()


# -- helpers -------------------------------------------------------------------------------


def at(text: str, needle: str, offset: int = 0) -> str:
    """``line:col`` (1-based) of the character *offset* places into the one *needle* in *text*."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    pos = text.index(needle) + offset
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return f"{line}:{col}"


def loc(path: Path, text: str, needle: str, offset: int = 0) -> str:
    """``path:line:col`` of *needle* (plus *offset*) in the *text* of *path*."""
    return f"{path}:{at(text, needle, offset)}"


def trace_text(*events: str, top: str = "") -> str:
    """An fsgs-trace/1 document, one event object per line; *top* adds top-level members."""
    body = ",\n".join(f"    {e}" for e in events)
    return f'{{\n  "format": "fsgs-trace/1",{top}\n  "events": [\n{body}\n  ]\n}}\n'


def write(tmp_path: Path, text: str, name: str = "t.json") -> Path:
    """*text* written to tmp_path/*name*."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    """Run the CLI in-process."""
    return runner.invoke(app, list(args))


def simulate(path: Path, *options: str, policy: str = "linux-5.9") -> Result:
    """``simulate POLICY PATH OPTIONS...``."""
    return invoke("simulate", policy, str(path), *options)


def error_line(result: Result, location: str) -> str:
    """Check *result* is exit 2 with one stderr line at *location*; return the message."""
    assert (2, "") == (result.exit_code, result.stdout)
    assert result.exc_info is None or result.exc_info[0] is SystemExit
    lines = result.stderr.splitlines()
    assert 1 == len(lines), result.stderr
    assert "Traceback" not in result.stderr
    prefix = f"{location}: error: "
    assert prefix == lines[0][: len(prefix)], lines[0]
    return lines[0][len(prefix) :]


def assert_expected_got(message: str) -> None:
    """The message says what was expected and then what was found."""
    assert "expected" in message
    assert "got" in message
    assert message.index("expected") < message.index("got")


# -- bad traces ------------------------------------------------------------------------------


def test_malformed_json(tmp_path: Path) -> None:
    """A trailing comma is malformed JSON at the token after it."""
    text = trace_text('{"op": "yield"},')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, "  ]", 2))
    assert "malformed JSON: expected a value, got ']'" == message


def test_truncated_json(tmp_path: Path) -> None:
    """A document cut short is malformed JSON at the end of input."""
    text = '{"format": "fsgs-trace/1", "events": ['
    path = write(tmp_path, text)
    message = error_line(simulate(path), f"{path}:1:{len(text) + 1}")
    assert "malformed JSON: expected a value or ']', got end of input" == message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """An unknown top-level key is reported at the key."""
    text = trace_text('{"op": "yield"}', top='\n  "extra": 1,')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"extra"'))
    assert message.startswith("unknown key 'extra' in trace document: expected one of format")


def test_unknown_op(tmp_path: Path) -> None:
    """An unknown op is reported at its value, with the ops that exist."""
    text = trace_text('{"op": "jump"}')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"jump"'))
    assert message.startswith("unknown op 'jump': expected one of mov_seg, wrbase")
    assert "exec" in message


def test_unknown_event_key(tmp_path: Path) -> None:
    """An unknown key in an event is reported at the key."""
    text = trace_text('{"op": "yield", "bogus": 1}')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"bogus"'))
    assert "unknown key 'bogus' in yield event: expected one of op, other" == message


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("1.5", "got a float (1.5)"),
        ('"7"', "got '7' (hex strings need the 0x prefix)"),
        ("true", "got true"),
        ("null", "got null"),
        ('"0x"', "got '0x'"),
    ],
    ids=["float", "decimal-string", "boolean", "null", "bare-0x"],
)
def test_selector_of_wrong_type(tmp_path: Path, value: str, got: str) -> None:
    """A selector that is not a JSON integer or hex string is a type error at the value."""
    text = trace_text(f'{{"op": "mov_seg", "seg": "fs", "selector": {value}}}')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, value + "}"))
    assert_expected_got(message)
    expected = 'selector is not a number: expected a hex string like "0x7" or a JSON integer'
    assert f"{expected}, {got}" == message


@pytest.mark.parametrize(
    ("event", "needle", "message"),
    [
        ('{"op": "mov_seg", "seg": "fs", "selector": "0x10000"}', '"0x10000"',
         "selector out of range: expected an integer in 0..0xffff, got 0x10000"),
        ('{"op": "wrbase", "seg": "gs", "value": "0x10000000000000000"}', '"0x1000',
         "value out of range: expected an integer in 0..0xffffffffffffffff, "
         "got 0x10000000000000000"),
        ('{"op": "modify_ldt", "entry": -1}', "-1",
         "entry out of range: expected an integer in 0..0xffffffff, got -1"),
        ('{"op": "modify_ldt", "entry": 0, "contents": 4}', "4}",
         "contents out of range: expected an integer in 0..3, got 4"),
        ('{"op": "set_thread_area", "entry_number": "-0x2"}', '"-0x2"',
         "entry_number out of range: expected -1 or an integer in 0..0xffffffff, got -2"),
    ],
    ids=["selector-0x10000", "base-2**64", "negative-entry", "contents-4", "entry-number-minus-2"],
)  # fmt: skip
def test_number_out_of_range(tmp_path: Path, event: str, needle: str, message: str) -> None:
    """A number outside its field's range is reported at the value."""
    text = trace_text(event)
    path = write(tmp_path, text)
    actual = error_line(simulate(path), loc(path, text, needle))
    assert_expected_got(actual)
    assert message == actual


def test_unknown_ptrace_field(tmp_path: Path) -> None:
    """ptrace_peek of a slot that is not FS/GS is reported at the field name."""
    text = trace_text('{"op": "ptrace_peek", "field": "ds"}')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"ds"'))
    expected = "unknown field 'ds' in ptrace_peek event: expected one of fs, gs, fs_base, gs_base"
    assert expected == message


def test_unknown_setregs_slot(tmp_path: Path) -> None:
    """A ptrace_setregs field that is no user_regs_struct slot is reported at the key."""
    text = trace_text('{"op": "ptrace_setregs", "fields": {"fsbase": "0x1"}}')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"fsbase"'))
    assert message.startswith("unknown register 'fsbase' in ptrace_setregs fields: expected one of")


def test_unknown_cpu_in_trace(tmp_path: Path) -> None:
    """An unknown CPU model in the trace's cpu is reported at the value."""
    text = trace_text('{"op": "yield"}', top='\n  "cpu": "pentium",')
    path = write(tmp_path, text)
    message = error_line(simulate(path), loc(path, text, '"pentium"'))
    assert "unknown cpu 'pentium': expected one of intel, amd-legacy, amd-zen3" == message


def test_migrate_to_missing_cpu(tmp_path: Path) -> None:
    """migrate to CPU 5 in a 2-CPU world is reported at that event's cpu value."""
    text = trace_text('{"op": "yield"}', '{"op": "migrate", "cpu": 5}')
    path = write(tmp_path, text)
    message = error_line(simulate(path, "--cpus", "2"), loc(path, text, "5}"))
    assert "migrate to CPU 5: expected a CPU number in 0..1" == message


def test_migrate_within_more_cpus(tmp_path: Path) -> None:
    """migrate to CPU 5 runs when the world has 6 CPUs."""
    path = write(tmp_path, trace_text('{"op": "migrate", "cpu": 5}'))
    result = simulate(path, "--cpus", "6", "--format", "json")
    assert (0, "") == (result.exit_code, result.stderr)
    assert [{"i": 0, "op": "migrate", "result": "ok"}] == json.loads(result.stdout)["results"]


def test_missing_trace_file(tmp_path: Path) -> None:
    """A trace file that does not exist is an error at its 1:1."""
    path = tmp_path / "absent.json"
    message = error_line(simulate(path), f"{path}:1:1")
    assert message.startswith("cannot read trace file")


def test_trace_not_utf8(tmp_path: Path) -> None:
    """A trace file that is not UTF-8 is an error at the bad byte's line and column (it was
    always 1:1, with a byte offset)."""
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"format": "fsgs-trace/1",\n "events": [], "x": "\xc3\xa9\xe9"}')
    message = error_line(simulate(path), f"{path}:2:23")
    assert_expected_got(message)
    assert "trace file is not UTF-8: expected UTF-8 text, got byte 0xe9" == message


# -- bad options and policies ----------------------------------------------------------------


@pytest.fixture
def good_trace(tmp_path: Path) -> Path:
    """A valid one-event trace."""
    return write(tmp_path, trace_text('{"op": "observe"}'), "good.json")


def test_unknown_cpu_option(good_trace: Path) -> None:
    """--cpu with an unknown model is a command-line error."""
    message = error_line(simulate(good_trace, "--cpu", "pentium"), CLI)
    expected = "--cpu 'pentium': unknown CPU model: expected one of intel, amd-legacy, amd-zen3"
    assert expected == message


def test_unknown_policy_name(good_trace: Path) -> None:
    """An unknown policy name is a command-line error listing the shipped policies."""
    message = error_line(simulate(good_trace, policy="linux-9.9"), CLI)
    expected = f"unknown policy 'linux-9.9': expected a policy file or one of {', '.join(SHIPPED)}"
    assert expected == message


def test_policy_file_with_syntax_error(tmp_path: Path, good_trace: Path) -> None:
    """A policy file with an expression syntax error is reported in the policy file."""
    shutil.copytree(POLICIES / "lib", tmp_path / "lib")
    old = '    - "return task.index"\n'
    new = '    - "return task.index +* 1"\n'
    text = (POLICIES / "linux-5.9.yaml").read_text(encoding="utf-8")
    assert 1 == text.count(old)
    text = text.replace(old, new)
    policy = write(tmp_path, text, "bad.yaml")
    message = error_line(
        simulate(good_trace, policy=str(policy)), loc(policy, text, new, new.index("*"))
    )
    assert_expected_got(message)
    assert "syntax error: expected a number, a name, '(' or a unary operator, got '*'" == message


def test_policy_with_recursive_function(tmp_path: Path, good_trace: Path) -> None:
    """A policy whose function calls itself is a one-line error, exit 2."""
    shutil.copytree(POLICIES / "lib", tmp_path / "lib")
    text = (POLICIES / "linux-5.9.yaml").read_text(encoding="utf-8")
    funcs = 'functions:\n  fa:\n    params: [x]\n    body: "fa(x)"\n'
    text = text.replace("\nsetregs:\n", "\n" + funcs + "setregs:\n")
    policy = write(tmp_path, text, "rec.yaml")
    message = error_line(simulate(good_trace, policy=str(policy)), loc(policy, text, 'fa(x)"'))
    assert "recursion" in message


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope=1", "--set nope: unknown setting of linux-5.9: expected one of fsgsbase, "
         "ia32_emulation, x86_16bit"),
        ("fsgsbase=maybe", "--set fsgsbase: expected true or false, got 'maybe'"),
        ("fsgsbase", "--set 'fsgsbase': expected NAME=VALUE"),
        ("=1", "--set '=1': expected NAME=VALUE"),
    ],
    ids=["unknown-setting", "bad-value", "missing-equals", "missing-name"],
)  # fmt: skip
def test_bad_set_option(good_trace: Path, item: str, message: str) -> None:
    """--set items are checked against the policy's settings."""
    assert message == error_line(simulate(good_trace, "--set", item), CLI)


def test_good_set_option(good_trace: Path) -> None:
    """--set fsgsbase=false is accepted."""
    result = simulate(good_trace, "--set", "fsgsbase=false", "--format", "json")
    assert (0, "") == (result.exit_code, result.stderr)


@pytest.mark.parametrize("ncpus", ["0", "65"])
def test_bad_cpus_option(good_trace: Path, ncpus: str) -> None:
    """--cpus outside 1..64 is a command-line error."""
    assert f"--cpus {ncpus}: expected 1..64" == error_line(
        simulate(good_trace, "--cpus", ncpus), CLI
    )


@pytest.mark.parametrize(
    "args",
    [
        # each with a later bad input, so that without the check this fails fast
        ["prove", "linux-5.9", "--invariants", "/nonexistent-fsgs/i.yaml"],
        ["counterexample", "linux-5.9", "Q1a", "--invariants", "/nonexistent-fsgs/i.yaml"],
        ["check", "--proofs", "/nonexistent-fsgs", "--policy", "linux-5.9"],
    ],
    ids=["prove", "counterexample", "check"],
)
@pytest.mark.parametrize("timeout", ["1e7", "1e10", "1000000.5"])
def test_a_timeout_above_the_maximum_is_bad_input(args: list[str], timeout: str) -> None:
    """--timeout 1e7 overflowed a process wait (OverflowError), 1e10 a timestamp: internal
    errors. Every command with --timeout refuses more than `MAX_TIMEOUT` seconds."""
    message = error_line(invoke(*args, "--timeout", timeout), CLI)
    assert f"--timeout {float(timeout)}: expected a number in (0, 1000000] (seconds)" == message


@pytest.mark.parametrize("command", ["prove", "counterexample", "check"])
def test_the_help_of_timeout_says_the_maximum(command: str) -> None:
    result = invoke(command, "--help")
    assert 0 == result.exit_code
    assert f"(at most {MAX_TIMEOUT:.0f})" in " ".join(result.stdout.split())


def test_the_maximum_timeout_is_usable() -> None:
    """A counterexample search raced in child processes, with the largest budget."""
    result = invoke("counterexample", "linux-5.9", "ptrace-roundtrip-accepted", "--cpu", "intel",
                    "--depth", "2", "--format", "json", "--timeout", "1000000")  # fmt: skip
    assert (1, "") == (result.exit_code, result.stderr)
    assert json.loads(result.stdout)["events"]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["simulate", "linux-5.9", "{trace}", "--cpu", ""], "intel, amd-legacy, amd-zen3"),
        (["check", "--proofs", "/nonexistent-fsgs", "--policy", "linux-5.9", "--cpu", ""],
         "intel, amd-legacy, amd-zen3, all"),
    ],
    ids=["simulate", "check"],
)  # fmt: skip
def test_an_empty_cpu_is_an_unknown_model(good_trace: Path, args: list[str], names: str) -> None:
    """--cpu '' was the default model (simulate ran on intel)."""
    args = [a.replace("{trace}", str(good_trace)) for a in args]
    message = error_line(invoke(*args), CLI)
    assert f"--cpu '': unknown CPU model: expected one of {names}" == message


def test_a_missing_invariants_file_is_not_called_a_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    message = error_line(invoke("prove", "linux-5.9", "--invariants", str(path)), f"{path}:1:1")
    assert "cannot read invariants file (--invariants): No such file or directory: expected a " \
           "readable file" == message  # fmt: skip


def test_an_invariants_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"fsgs-invariants: 1\ninvariants: [\xe9]\n")
    message = error_line(invoke("counterexample", "linux-5.9", "Q1a", "--invariants", str(path)),
                         f"{path}:2:14")  # fmt: skip
    assert "invariants file is not UTF-8: expected UTF-8 text, got byte 0xe9" == message


def test_an_empty_invariants_file_is_not_called_a_policy_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n", "empty.yaml")
    message = error_line(invoke("prove", "linux-5.9", "--invariants", str(path)), f"{path}:1:1")
    assert "empty invariants file: expected a mapping" == message


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("", "--keep-c '': expected a directory"),
        ("/proc/version", "--keep-c /proc/version: is not a directory: expected an existing "
         "directory to write the C program in"),
        ("/proc", "--keep-c /proc: cannot write in it ("),
    ],
    ids=["empty", "a-file", "unwritable-even-to-root"],
)  # fmt: skip
@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_a_keep_c_that_is_no_writable_directory_is_bad_input(
    good_trace: Path, keep: str, message: str
) -> None:
    """These were internal errors (FileExistsError, FileNotFoundError), after compiling."""
    if keep == "/proc" and Path("/proc").stat().st_uid != 0:  # pragma: no cover
        pytest.skip("/proc is not procfs here")
    result = invoke("replay", str(good_trace), "--keep-c", keep)
    actual = error_line(result, CLI)
    if keep == "/proc":  # the reason is the kernel's
        assert actual.startswith(message) and actual.endswith("): expected a writable directory")
    else:
        assert message == actual


def test_a_keep_c_directory_must_exist_like_an_output_directory(
    tmp_path: Path, good_trace: Path
) -> None:
    """A missing directory is refused (it was created, parents and all, unlike --output's)."""
    keep = tmp_path / "a" / "b"
    message = error_line(invoke("replay", str(good_trace), "--keep-c", str(keep)), CLI)
    assert f"--keep-c {keep}: there is no such directory: expected an existing directory to " \
           "write the C program in" == message  # fmt: skip
    assert not (tmp_path / "a").exists()


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux's /proc")
def test_check_update_into_a_file_is_refused_before_deciding() -> None:
    """The directory was made after every cell was decided: FileExistsError (exit 70). (The
    unknown policy after it makes this fail fast without the check.)"""
    result = invoke("check", "--update", "--proofs", "/proc/version", "--policy", "linux-9.9")
    message = error_line(result, CLI)
    assert "--proofs /proc/version: is not a directory: expected a directory" == message


def test_a_file_name_with_rich_markup_is_shown_as_it_is(tmp_path: Path) -> None:
    """simulate's table title names the trace file: '[/x]' in it was a MarkupError (exit 70)."""
    folder = tmp_path / "names" / "["
    folder.mkdir(parents=True)
    path = write(folder, trace_text('{"op": "observe"}'), "x].json")
    assert "[/x]" in str(path)
    result = simulate(path)
    assert (0, "") == (result.exit_code, result.stderr)
    assert str(path) in " ".join(result.stdout.split())


def _run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "fsgs_smt", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_module_entry_point_bad_input(tmp_path: Path) -> None:
    """python -m fsgs_smt on a bad trace prints one line and exits 2, without a traceback."""
    text = trace_text('{"op": "jump"}')
    path = write(tmp_path, text)
    proc = _run_module("simulate", "linux-5.9", str(path))
    assert (2, "") == (proc.returncode, proc.stdout)
    lines = proc.stderr.splitlines()
    assert 1 == len(lines), proc.stderr
    assert lines[0].startswith(loc(path, text, '"jump"') + ": error: unknown op 'jump'")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    """--debug turns a bad input into a Python traceback and a nonzero exit code."""
    path = write(tmp_path, trace_text('{"op": "jump"}'))
    proc = _run_module("--debug", "simulate", "linux-5.9", str(path))
    assert 0 != proc.returncode
    assert "Traceback (most recent call last)" in proc.stderr
    assert "InputError" in proc.stderr
    assert "unknown op 'jump'" in proc.stderr


# -- good runs -------------------------------------------------------------------------------


def test_policies_lists_shipped() -> None:
    """policies prints the 5 shipped policies one per line, linux-5.9 marked default."""
    result = invoke("policies")
    assert (0, "") == (result.exit_code, result.stderr)
    lines = result.stdout.splitlines()
    assert list(SHIPPED) == [line.split()[0] for line in lines]
    marked = [line.split()[0] for line in lines if line.split()[1] == "*"]
    assert ["linux-5.9"] == marked
    assert all(line.split(maxsplit=1)[1].strip() for line in lines)


def test_schema_is_json_with_every_hook() -> None:
    """schema prints JSON whose hooks are exactly vocab.HOOKS, all required."""
    result = invoke("schema")
    assert (0, "") == (result.exit_code, result.stderr)
    schema = json.loads(result.stdout)
    hooks = schema["properties"]["hooks"]
    assert list(HOOKS) == list(hooks["properties"])
    assert list(HOOKS) == hooks["required"]
    assert hooks["additionalProperties"] is False


def test_schema_library_is_json() -> None:
    """schema --library prints a JSON Schema."""
    result = invoke("schema", "--library")
    assert 0 == result.exit_code
    assert "object" == json.loads(result.stdout)["type"]


def test_all_events_trace_covers_every_op(tmp_path: Path) -> None:
    """The test trace has every op, yield with other, and observe with every via."""
    loaded = load_trace(write(tmp_path, ALL_EVENTS))
    doc = json.loads(ALL_EVENTS)
    assert set(OPS) == {e["op"] for e in doc["events"]}
    assert {None, "rdbase", "arch_prctl", "fault"} == {
        e.get("via") for e in doc["events"] if e["op"] == "observe"
    }
    assert len(doc["events"]) == len(loaded.trace.events)


def test_simulate_json_output(tmp_path: Path) -> None:
    """simulate --format json prints the trace with one result per event, and it re-reads."""
    path = write(tmp_path, ALL_EVENTS)
    result = simulate(path, "--cpu", "amd-zen3", "--format", "json")
    assert (0, "") == (result.exit_code, result.stderr)
    doc = json.loads(result.stdout)
    assert ["format", "cpu", "events", "results"] == list(doc)
    assert ("fsgs-trace/1", "amd-zen3") == (doc["format"], doc["cpu"])
    events = json.loads(ALL_EVENTS)["events"]
    assert [e["op"] for e in events] == [r["op"] for r in doc["results"]]
    assert list(range(len(events))) == [r["i"] for r in doc["results"]]
    assert all(["i", "op", "result"] == list(r) for r in doc["results"])
    again = parse_trace(result.stdout, "out.json")
    assert load_trace(path).trace.events == again.trace.events
    assert "amd-zen3" == again.trace.cpu


def test_simulate_table_output(tmp_path: Path) -> None:
    """simulate --format table prints one row per event after the initial row."""
    path = write(tmp_path, ALL_EVENTS)
    result = simulate(path, "--format", "table")
    assert (0, "") == (result.exit_code, result.stderr)
    n = len(json.loads(ALL_EVENTS)["events"])
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    numbers = [row.split("│")[1].strip() for row in rows]
    assert [str(i) for i in range(n)] == [x for x in numbers if x]
    assert "(initial)" in result.stdout


def test_simulate_table_shows_yield_other(tmp_path: Path) -> None:
    """The table's arguments cell of a yield lists the other task's ops."""
    other = '{"op": "mov_seg", "seg": "fs", "selector": "0x2b"}'
    path = write(tmp_path, trace_text(f'{{"op": "yield", "other": [{other}]}}'))
    result = simulate(path)
    assert 0 == result.exit_code
    assert "mov_seg" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["counterexample"], "Missing argument 'policy': expected it on the command line, as "
         "'fsgs-smt counterexample --help' shows (fsgs-smt counterexample)"),
        (["prove", "--bogus"], "No such option: --bogus (Possible options: --cpus, --jobs): "
         "expected an option that 'fsgs-smt prove --help' lists (fsgs-smt prove)"),
        (["prove", "a", "b"], "Got unexpected extra argument(s) (b): expected the usage that "
         "'fsgs-smt prove --help' shows (fsgs-smt prove)"),
        (["nope"], "No such command 'nope': expected the usage that 'fsgs-smt --help' shows "
         "(fsgs-smt)"),
        (["prove", "--engine", "x"], "Invalid value for '--engine': Value error, 'x' is not one "
         "of 'auto', 'bmc', 'kind', 'pdr' (fsgs-smt prove)"),
    ],
    ids=["missing-argument", "unknown-option", "extra-argument", "unknown-command", "bad-choice"],
)  # fmt: skip
def test_a_usage_error_says_what_was_expected(args: list[str], message: str) -> None:
    """click's own usage errors end in ': expected ...' as ours do, unless click's text
    already says what it wants (a choice, a type)."""
    assert message == error_line(invoke(*args), CLI)


# -- starting a policy of one's own ------------------------------------------------------------


def test_policies_copy_gives_policies_that_run_where_they_are(tmp_path: Path) -> None:
    """`policies --copy DIR` copies the shipped policies with their library; the copies run."""
    target = tmp_path / "mine"
    result = invoke("policies", "--copy", str(target))
    assert 0 == result.exit_code, result.output
    listed = result.stdout.split()
    assert str(target / "lib" / "linux-common.yaml") in listed
    assert str(target / "linux-5.9.yaml") in listed
    trace = write(tmp_path, trace_text('{"op": "mov_seg", "seg": "gs", "selector": "0x2b"}'))
    ran = invoke("simulate", str(target / "linux-5.9.yaml"), str(trace), "--format", "json")
    assert 0 == ran.exit_code, ran.output

    again = invoke("policies", "--copy", str(target))
    assert "it exists and is not an empty directory: expected a new or empty" in error_line(
        again, CLI
    )  # fmt: skip


def test_a_policy_copied_without_its_library_says_where_the_library_is(tmp_path: Path) -> None:
    """A shipped policy copied alone: its include is missing, and the error says where the
    shipped library is and how to copy it."""
    from fsgs_smt.policy.load import POLICIES_DIR  # noqa: PLC0415

    alone = tmp_path / "alone.yaml"
    alone.write_text((POLICIES_DIR / "linux-5.9.yaml").read_text(encoding="utf-8"), "utf-8")
    trace = write(tmp_path, trace_text('{"op": "observe"}'))
    text = alone.read_text(encoding="utf-8")
    pos = text.index("lib/linux-common.yaml")
    line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    message = error_line(invoke("simulate", str(alone), str(trace)), f"{alone}:{line}:{col}")
    assert message.startswith(f"include: no such file '{tmp_path}/lib/linux-common.yaml': "
                              "expected a policy library there (the shipped one is in")  # fmt: skip
    assert "fsgs-smt policies --copy DIR" in message


@pytest.mark.parametrize(
    ("flag", "value"), [("--depth", "3"), ("--timeout", "5"), ("--cpus", "3"), ("--ldt-slots", "4")]
)
def test_check_refuses_deciding_settings_without_update(flag: str, value: str) -> None:
    """A check decides each policy with the settings recorded in its proofs file, so these
    options did nothing there (silently): only ``--update`` takes them."""
    result = invoke("check", "--policy", "linux-5.9", flag, value)
    message = error_line(result, CLI)
    assert f"{flag} without --update: expected --update (a check uses the settings " \
           "recorded in each proofs file)" == message  # fmt: skip


@pytest.mark.parametrize(("flag", "value", "expected"),
                         [("--cpus", "65", "1..64"), ("--ldt-slots", "0", "1..8192")])  # fmt: skip
def test_check_update_refuses_a_world_out_of_range(flag: str, value: str, expected: str) -> None:
    result = invoke("check", "--update", "--proofs", "/nonexistent-fsgs", flag, value)
    assert f"{flag} {value}: expected {expected}" == error_line(result, CLI)
