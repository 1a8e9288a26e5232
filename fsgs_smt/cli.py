# SPDX-License-Identifier: MIT
"""The fsgs-smt command line. The only module that prints or exits.

Layer: top. Each command parses its options, calls the layers below, renders,
and returns an exit code (see `ExitCode`). Every `InputError` becomes one line
``file:line:col: error: ...`` on stderr and exit code 2; a traceback appears
only with ``--debug``.
"""

from __future__ import annotations

import enum
import io
import json
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from fsgs_smt.engines.backend import UnavailableSolverError
from fsgs_smt.errors import CannotReplayError, FsgsError, InputError, describe
from fsgs_smt.policy import ast
from fsgs_smt.policy.catalog import DEFAULT_POLICY, load_checked, shipped_policies
from fsgs_smt.policy.expr import U64_MAX
from fsgs_smt.policy.invariants import load_policy_invariants
from fsgs_smt.semantics.cpu import CPU_MODEL_NAMES, CPU_MODELS, DEFAULT_CPU
from fsgs_smt.sim import simulate
from fsgs_smt.source import Span
from fsgs_smt.traces.fsgs_json import load_trace, trace_to_json
from fsgs_smt.traces.jsonpos import decode_utf8
from fsgs_smt.traces.render import trace_table

if TYPE_CHECKING:  # the proving layer is imported when a command needs it (start-up time)
    from fsgs_smt.proving import ProveRequest, Result

T = TypeVar("T")
CLI_SPAN = Span("<command line>", 1, 1)


class ExitCode(enum.IntEnum):
    """Process exit codes (documented in README.md)."""

    OK = 0
    VIOLATED = 1
    BAD_INPUT = 2
    UNKNOWN = 3
    VACUOUS = 4
    CANNOT_RUN = 5
    INTERNAL = 70


class OutputFormat(enum.Enum):
    """Output formats of ``simulate``."""

    JSON = "json"
    TABLE = "table"


app = typer.Typer(
    name="fsgs-smt",
    help="Formal verification of x86-64 Linux FS/GS segment policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


# typer vendors click; its UsageError is reached through the public BadParameter.
_USAGE_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


def _show_usage_error(self: Any, file: object = None) -> None:
    """Bad options are bad input: one located line on stderr (exit code 2 is click's)."""
    del file
    path = self.ctx.command_path if self.ctx is not None else "fsgs-smt"
    text = " ".join(self.format_message().split()).rstrip(".")
    kind = type(self).__name__
    if re.search(r"\bexpected\b|should be|one of", text, re.IGNORECASE):
        pass  # click already says what it wants ("Input should be a valid integer")
    elif kind == "MissingParameter":
        text += f": expected it on the command line, as '{path} --help' shows"
    elif kind == "NoSuchOption":
        text += f": expected an option that '{path} --help' lists"
    else:
        text += f": expected the usage that '{path} --help' shows"
    print(f"{CLI_SPAN}: error: {text} ({path})", file=sys.stderr)


_USAGE_ERROR.show = _show_usage_error  # type: ignore[attr-defined]
_state = {"debug": False}


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a Python traceback on errors.")
    ] = False,
) -> None:
    _state["debug"] = debug


def _run(body: Callable[[], int]) -> None:
    """Run a command body, mapping errors to one stderr line and an exit code."""
    try:
        code = body()
    except InputError as exc:
        if _state["debug"]:
            raise
        print(exc.one_line(), file=sys.stderr)
        raise typer.Exit(ExitCode.BAD_INPUT) from None
    except (UnavailableSolverError, CannotReplayError) as exc:
        print(f"fsgs-smt: cannot run: {exc}", file=sys.stderr)
        raise typer.Exit(ExitCode.CANNOT_RUN) from None
    except (FsgsError, Exception) as exc:
        if _state["debug"] or isinstance(exc, typer.Exit):
            raise
        kind = type(exc).__name__
        print(f"fsgs-smt: internal error: {kind}: {exc} (a bug; rerun with --debug)",
              file=sys.stderr)  # fmt: skip
        raise typer.Exit(ExitCode.INTERNAL) from None
    raise typer.Exit(code)


def parse_settings(items: list[str], policy: ast.Policy) -> dict[str, bool | int]:
    """``NAME=VALUE`` options -> policy setting overrides, checked against the policy.

    Raises:
        InputError: malformed item, unknown setting, or a value of the wrong type.
    """
    out: dict[str, bool | int] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise InputError(CLI_SPAN, f"--set {item!r}: expected NAME=VALUE")
        setting = policy.settings.get(name)
        if setting is None:
            known = ", ".join(sorted(policy.settings))
            raise InputError(
                CLI_SPAN, f"--set {name}: unknown setting of {policy.name}: expected one of {known}"
            )
        if isinstance(setting.value, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise InputError(CLI_SPAN, f"--set {name}: expected true or false, got {text!r}")
            out[name] = text.lower() in ("true", "1")
        else:
            try:
                value = int(text, 0)
            except ValueError:
                raise InputError(
                    CLI_SPAN, f"--set {name}: expected an integer, got {describe(text)}"
                ) from None
            if not 0 <= value <= U64_MAX:
                raise InputError(
                    CLI_SPAN,
                    f"--set {name}: expected an integer in 0..2**64-1, got {describe(text)}",
                )
            out[name] = value
    return out


def _cpu_model(name: str | None, fallback: str | None, *, all_too: bool = False) -> str:
    """The CPU model --cpu *name* names (else *fallback*, else the default); *all_too*: the
    command also accepts ``all`` (said in the message, handled by the caller)."""
    chosen = name if name is not None else fallback or DEFAULT_CPU
    if chosen not in CPU_MODELS:
        names = ", ".join((*CPU_MODEL_NAMES, "all") if all_too else CPU_MODEL_NAMES)
        raise InputError(
            CLI_SPAN, f"--cpu {describe(chosen)}: unknown CPU model: expected one of {names}"
        )
    return chosen


@app.command("simulate")
def simulate_cmd(
    policy: Annotated[str, typer.Argument(help="A policy file, or a shipped policy's name.")],
    trace: Annotated[Path, typer.Argument(help="An fsgs-trace/1 JSON file.")],
    cpu: Annotated[
        str | None,
        typer.Option(
            help="CPU model: intel, amd-legacy, amd-zen3 (default: the trace's, else intel)."
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option("--format", help="json: the trace with results; table: for humans."),
    ] = OutputFormat.TABLE,
    setting: Annotated[
        list[str] | None, typer.Option("--set", help="Override a policy setting: NAME=VALUE.")
    ] = None,
    ncpus: Annotated[int, typer.Option("--cpus", help="Number of CPUs in the world.")] = 2,
) -> None:
    """Run a trace on the concrete semantics of a policy and show each event's result."""

    def body() -> int:
        _check_range("--cpus", ncpus, 1, 64)
        pol = load_checked(policy)
        overrides = parse_settings(setting or [], pol)
        loaded = load_trace(trace)
        model = _cpu_model(cpu, loaded.trace.cpu)
        run = simulate(
            pol, loaded.trace, CPU_MODELS[model], settings=overrides, ncpus=ncpus,
            spans=loaded.spans,
        )  # fmt: skip
        if fmt is OutputFormat.JSON:
            doc = trace_to_json(loaded.trace, list(run.results))
            doc["cpu"] = model
            doc = {k: doc[k] for k in ("format", "cpu", "events", "results") if k in doc}
            print(json.dumps(doc, indent=2))
        else:
            console = Console(width=None if sys.stdout.isatty() else 160)
            console.print(trace_table(run, title=f"{trace} under {pol.name} on {model}"))
        return ExitCode.OK

    _run(body)


class ProveFormat(enum.Enum):
    """Output formats of ``prove``."""

    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"


class CexFormat(enum.Enum):
    """Output formats of ``counterexample``."""

    TABLE = "table"
    JSON = "json"
    ITF = "itf"
    C = "c"


class EngineChoice(enum.Enum):
    """The proof engines."""

    AUTO = "auto"
    BMC = "bmc"
    KIND = "kind"
    PDR = "pdr"


class SolverChoice(enum.Enum):
    """The SMT solvers (auto: bitwuzla when installed, else z3)."""

    AUTO = "auto"
    Z3 = "z3"
    BITWUZLA = "bitwuzla"


class CheckFormat(enum.Enum):
    """Output formats of ``check``."""

    TEXT = "text"
    JSON = "json"


def _models(cpu: str | None) -> list[str]:
    if cpu in (None, "all"):
        return list(CPU_MODEL_NAMES)
    return [_cpu_model(cpu, None, all_too=True)]


def _check_writable(name: str, path: Path | None) -> None:
    """Refuse an output path that cannot be a file, before any work is done."""
    if path is None:
        return
    if path.is_dir():
        raise InputError(CLI_SPAN, f"{name} {path}: is a directory: expected a file to write")
    if not path.parent.is_dir():
        raise InputError(CLI_SPAN, f"{name} {path}: there is no directory {path.parent}: "
                         "expected a file in an existing directory")  # fmt: skip


def _write(name: str, path: Path, text: str) -> None:
    """Write an output file; a failure (permissions, a full disk) is one located line."""
    try:
        path.write_text(text)
    except OSError as exc:
        raise InputError(CLI_SPAN, f"{name} {path}: cannot write it ({exc.strerror or exc}): "
                         "expected a writable file") from None  # fmt: skip


def _check_positive(name: str, value: float) -> None:
    if not 0 < value < math.inf:  # NaN compares false: refused too
        raise InputError(CLI_SPAN, f"{name} {value}: expected a positive number")


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InputError(CLI_SPAN, f"{name} {value}: expected {low}..{high}")


_CPUS_HELP = "CPUs in the modelled world (1..64)."
_LDT_HELP = "LDT entries modelled (1..8192; each one more costs solver time)."


def _check_timeout(value: float) -> None:
    """A time budget the solvers and process waits can take (`pipeline.MAX_TIMEOUT`, which
    the options' help texts say)."""
    from fsgs_smt.pipeline import MAX_TIMEOUT  # noqa: PLC0415

    if not 0 < value <= MAX_TIMEOUT:  # NaN compares false: refused too
        raise InputError(CLI_SPAN, f"--timeout {value}: expected a number in "
                         f"(0, {MAX_TIMEOUT:.0f}] (seconds)")  # fmt: skip


def _check_readable(name: str, path: Path | None, what: str) -> None:
    """Refuse an input file that cannot be read as text, located in the file, before any work
    (the reader after this one names the file by its kind)."""
    if path is None:
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(Span(str(path), 1, 1), f"cannot read {what} ({name}): "
                         f"{exc.strerror or exc}: expected a readable file") from None  # fmt: skip
    decode_utf8(data, str(path), what)


def _make_dir(name: str, path: Path) -> None:
    """Make the directory *path* (and its parents) unless it exists; one located line if
    it cannot be one."""
    if path.exists() and not path.is_dir():
        raise InputError(CLI_SPAN, f"{name} {path}: is not a directory: expected a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or exc
        raise InputError(CLI_SPAN, f"{name} {path}: cannot create it ({why}): expected a "
                         "directory that can be made") from None  # fmt: skip


def _keep_dir(name: str, text: str | None) -> Path | None:
    """The directory a generated program is kept in: an existing, writable directory."""
    if text is None:
        return None
    if not text:
        raise InputError(CLI_SPAN, f"{name} '': expected a directory")
    path = Path(text)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "there is no such directory"
        raise InputError(CLI_SPAN, f"{name} {text}: {what}: expected an existing directory "
                         "to write the C program in")  # fmt: skip
    try:  # root may write anywhere, but not in /proc: try it
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        why = exc.strerror or exc
        raise InputError(CLI_SPAN, f"{name} {text}: cannot write in it ({why}): "
                         "expected a writable directory") from None  # fmt: skip
    return path


@app.command("prove")
def prove_cmd(
    policy: Annotated[
        str, typer.Argument(help="A policy file or a shipped policy's name.")
    ] = DEFAULT_POLICY,
    invariant: Annotated[
        list[str] | None, typer.Option("--invariant", "-i", help="Only these invariant ids.")
    ] = None,
    cpu: Annotated[
        str | None, typer.Option(help="intel, amd-legacy, amd-zen3 or all (default: all).")
    ] = None,
    depth: Annotated[int, typer.Option(help="BMC depth for counterexamples.")] = 6,
    engine: Annotated[
        EngineChoice,
        typer.Option(
            help="auto: lemmas + BMC; bmc: BMC (the lemmas asserted from depth 1); "
            "kind: k-induction; pdr: Spacer + BMC."
        ),
    ] = EngineChoice.AUTO,
    timeout: Annotated[
        float, typer.Option(help="Seconds per invariant and CPU model (at most 1000000).")
    ] = 600.0,
    jobs: Annotated[int, typer.Option(help="CPU models checked in parallel.")] = 1,
    fmt: Annotated[ProveFormat, typer.Option("--format", help="text, json or junit.")] = (
        ProveFormat.TEXT
    ),
    output: Annotated[Path | None, typer.Option(help="Write the report here.")] = None,
    accept_bounded: Annotated[
        bool, typer.Option("--accept-bounded", help="Count BOUNDED(k) as a pass.")
    ] = False,
    setting: Annotated[
        list[str] | None, typer.Option("--set", help="Override a policy setting: NAME=VALUE.")
    ] = None,
    invariants_file: Annotated[
        Path | None, typer.Option("--invariants", help="An invariants file (default: shipped).")
    ] = None,
    solver: Annotated[
        SolverChoice, typer.Option(help="auto (bitwuzla if installed), z3 or bitwuzla.")
    ] = SolverChoice.AUTO,
    ncpus: Annotated[int, typer.Option("--cpus", help=_CPUS_HELP)] = 2,
    ldt_slots: Annotated[int, typer.Option("--ldt-slots", help=_LDT_HELP)] = 2,
    certificates: Annotated[
        Path | None,
        typer.Option(
            "--certificates",
            help="Write each proof's solver queries as SMT-LIB "
            "files under DIR, for another solver to check.",
        ),
    ] = None,
) -> None:
    """Prove each invariant of a policy on each CPU model, or find a counterexample."""

    def body() -> int:
        from fsgs_smt.proving import ProveRequest, run_prove, select_invariants  # noqa: PLC0415
        from fsgs_smt.reports import exit_status, render_json, render_junit, render_text  # noqa: PLC0415

        _check_positive("--depth", depth)
        _check_timeout(timeout)
        _check_positive("--jobs", jobs)
        _check_range("--cpus", ncpus, 1, 64)
        _check_range("--ldt-slots", ldt_slots, 1, 8192)
        _check_writable("--output", output)
        if certificates is not None:
            _make_dir("--certificates", certificates)
        pol = load_checked(policy)
        overrides = parse_settings(setting or [], pol)
        _check_readable("--invariants", invariants_file, "invariants file")
        own = load_policy_invariants(Path(pol.path))
        invs = select_invariants(invariants_file, invariant or [], own)
        request = ProveRequest(
            policy=pol, invariants=invs, cpus=_models(cpu), depth=depth, engine=engine.value,
            timeout=timeout, settings=overrides, jobs=jobs, solver=solver.value, ncpus=ncpus,
            ldt_slots=ldt_slots,
        )  # fmt: skip
        progress = Console(stderr=True) if sys.stderr.isatty() else None

        def tick(line: str) -> None:
            if progress is not None:  # "[intel] Q1a ...": not rich markup
                progress.print(line, markup=False, highlight=False)

        results = run_prove(request, progress=tick)
        if fmt is ProveFormat.JUNIT:
            text = render_junit(pol, results)
        else:
            render = render_text if fmt is ProveFormat.TEXT else render_json
            text = render(pol, results, ncpus, ldt_slots)
        if output is not None:
            _write("--output", output, text)
        else:
            print(text, end="" if text.endswith("\n") else "\n")
        status = exit_status(results, accept_bounded=accept_bounded)
        if certificates is not None:
            status = _write_certificates(pol, results, request, certificates, status, tick)
        return status

    _run(body)


def _write_certificates(
    pol: ast.Policy, results: list[Result], request: ProveRequest, root: Path, status: int,
    tick: Callable[[str], None],
) -> int:  # fmt: skip
    """``prove --certificates``: each PROVED cell decided again with its queries written
    (`certificates`); a proof not found again is reported, and makes a 0 exit code 3."""
    from fsgs_smt.certificates import write_certificates  # noqa: PLC0415

    tick(f"writing certificates under {root} ...")
    try:
        written = write_certificates(pol, results, request.options(), root)
    except OSError as exc:
        raise InputError(CLI_SPAN, f"--certificates {root}: {exc.strerror or exc}: expected a "
                                   "directory fsgs-smt can write in") from None  # fmt: skip
    for w in written:
        if not w.reproduced:
            print(f"certificate {w.directory}: the proof was not found again ({w.reason})",
                  file=sys.stderr)  # fmt: skip
            status = status or ExitCode.UNKNOWN  # a violation (1) or vacuity (4) stays first
    queries = sum(w.queries for w in written)
    print(f"certificates: {len(written)} proofs, {queries} SMT-LIB queries under {root}",
          file=sys.stderr)  # fmt: skip
    return status


@app.command("counterexample")
def counterexample_cmd(
    policy: Annotated[str, typer.Argument(help="A policy file or a shipped policy's name.")],
    invariant: Annotated[str, typer.Argument(help="The invariant id.")],
    cpu: Annotated[str | None, typer.Option(help="intel, amd-legacy or amd-zen3.")] = None,
    depth: Annotated[int, typer.Option(help="Search up to this many events.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds (at most 1000000).")] = 600.0,
    fmt: Annotated[
        CexFormat,
        typer.Option("--format", help="table, json, itf or c (a standalone C reproducer)."),
    ] = CexFormat.TABLE,
    output: Annotated[Path | None, typer.Option(help="Write the trace here.")] = None,
    setting: Annotated[
        list[str] | None, typer.Option("--set", help="Override a policy setting: NAME=VALUE.")
    ] = None,
    invariants_file: Annotated[
        Path | None, typer.Option("--invariants", help="An invariants file (default: shipped).")
    ] = None,
    ncpus: Annotated[int, typer.Option("--cpus", help=_CPUS_HELP)] = 2,
    ldt_slots: Annotated[int, typer.Option("--ldt-slots", help=_LDT_HELP)] = 2,
) -> None:
    """Find the shortest trace that breaks an invariant, replayed on the simulator."""

    def body() -> int:
        from fsgs_smt.pipeline import Options  # noqa: PLC0415
        from fsgs_smt.proving import counterexample, select_invariants  # noqa: PLC0415
        from fsgs_smt.reports import render_counterexample  # noqa: PLC0415

        _check_positive("--depth", depth)
        _check_timeout(timeout)
        _check_range("--cpus", ncpus, 1, 64)
        _check_range("--ldt-slots", ldt_slots, 1, 8192)
        _check_writable("--output", output)
        pol = load_checked(policy)
        overrides = parse_settings(setting or [], pol)
        _check_readable("--invariants", invariants_file, "invariants file")
        (inv,) = select_invariants(
            invariants_file, [invariant], load_policy_invariants(Path(pol.path))
        )
        model = _cpu_model(cpu, None)
        verdict, run = counterexample(pol, inv, model, depth, timeout, overrides, race=True,
                                      ncpus=ncpus, ldt_slots=ldt_slots)  # fmt: skip
        found_with = Options(settings=overrides, ncpus=ncpus, ldt_slots=ldt_slots)
        if run is None:
            why = verdict.reason
            if verdict.label.startswith("BOUNDED"):
                why = (f"no trace of up to {verdict.depth} events breaks it (--depth"
                       + (f"; {why}" if why else "")
                       + "); fsgs-smt prove decides it for every length")  # fmt: skip
            print(f"{inv.id} on {pol.name}/{model}: {verdict.label}" + (f": {why}" if why else ""),
                  file=sys.stderr)  # fmt: skip
            return ExitCode.UNKNOWN if verdict.label != "PROVED" else ExitCode.OK
        if fmt is CexFormat.TABLE:
            # to a file: plain text (no colours), as wide as a piped terminal's
            buffer = io.StringIO() if output is not None else None
            console = Console(width=None if sys.stdout.isatty() and buffer is None else 160,
                              file=buffer, no_color=buffer is not None,
                              highlight=buffer is None)  # fmt: skip
            for renderable in render_counterexample(pol, inv, model, verdict, run, "table",
                                                    found_with):  # fmt: skip
                console.print(renderable)
            if output is not None and buffer is not None:
                _write("--output", output, buffer.getvalue())
        else:
            text = render_counterexample(pol, inv, model, verdict, run, fmt.value,
                                         found_with)[0]  # fmt: skip
            assert isinstance(text, str)  # noqa: S101
            if output is not None:
                _write("--output", output, text)
            else:
                print(text, end="")
        return ExitCode.VIOLATED

    _run(body)


@app.command("check")
def check_cmd(
    proofs: Annotated[
        Path, typer.Option("--proofs", help="The directory of recorded proofs.")
    ] = Path("proofs"),
    policy: Annotated[
        list[str] | None, typer.Option("--policy", "-p", help="Only these shipped policies.")
    ] = None,
    cpu: Annotated[
        str | None, typer.Option(help="intel, amd-legacy, amd-zen3 or all (default: all).")
    ] = None,
    jobs: Annotated[int, typer.Option(help="Policy x CPU model groups in parallel.")] = 1,
    update: Annotated[
        bool, typer.Option("--update", help="Decide everything from scratch and rewrite PROOFS.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Search for every counterexample again (BMC).")
    ] = False,
    solver: Annotated[SolverChoice, typer.Option(help="auto, z3 or bitwuzla.")] = (
        SolverChoice.AUTO
    ),
    depth: Annotated[
        int | None, typer.Option(help="With --update: BMC depth, 4 by default.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="With --update: seconds per cell, 300 by default (at most 1000000)."),
    ] = None,
    ncpus: Annotated[
        int | None,
        typer.Option(
            "--cpus", help="With --update: CPUs in the modelled world, 1..64, 2 by default."
        ),
    ] = None,
    ldt_slots: Annotated[
        int | None,
        typer.Option(
            "--ldt-slots", help="With --update: LDT entries modelled, 1..8192, 2 by default."
        ),
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", help="text or json.")] = (
        CheckFormat.TEXT
    ),
) -> None:
    """Re-check the recorded proofs of every shipped policy (exit 1 on any difference)."""

    def body() -> int:
        from fsgs_smt import proofs as pr  # noqa: PLC0415
        from fsgs_smt.proving import shipped_invariants  # noqa: PLC0415
        from fsgs_smt.reports import render_check  # noqa: PLC0415

        _check_positive("--jobs", jobs)
        if depth is not None:
            _check_positive("--depth", depth)
        if timeout is not None:
            _check_timeout(timeout)
        if ncpus is not None:
            _check_range("--cpus", ncpus, 1, 64)
        if ldt_slots is not None:
            _check_range("--ldt-slots", ldt_slots, 1, 8192)
        chosen = {"depth": depth, "timeout": timeout, "ncpus": ncpus, "ldt_slots": ldt_slots}
        given = {k: v for k, v in chosen.items() if v is not None}
        if given and not update:  # a check decides with each proofs file's own settings
            flags = {"depth": "--depth", "timeout": "--timeout", "ncpus": "--cpus",
                     "ldt_slots": "--ldt-slots"}  # fmt: skip
            flag = flags[next(iter(given))]
            raise InputError(CLI_SPAN, f"{flag} without --update: expected --update (a check "
                             "uses the settings recorded in each proofs file)")  # fmt: skip
        if update:  # the directory to rewrite, made before the minutes of deciding
            _make_dir("--proofs", proofs)
        names = pr.shipped_policy_names()
        for name in policy or []:
            if name not in names:
                raise InputError(CLI_SPAN, f"unknown policy {name!r}: expected one of "
                                           f"{', '.join(names)}")  # fmt: skip
        selected = policy or names
        cpus = _models(cpu)
        invs = shipped_invariants()
        progress = Console(stderr=True) if sys.stderr.isatty() else None

        def tick(o: pr.Outcome) -> None:
            if progress is not None:
                mark = "ok " if o.agree or update else "DIFF"
                progress.print(f"{mark} {o.policy} {o.invariant} [{o.cpu}] {o.now} "
                               f"{o.seconds:.1f}s", markup=False, highlight=False)  # fmt: skip

        if update:
            default = pr.Settings()  # what is not given: the defaults `proofs/` is made with
            settings = pr.Settings(
                depth=default.depth if depth is None else depth,
                timeout=default.timeout if timeout is None else timeout,
                ncpus=default.ncpus if ncpus is None else ncpus,
                ldt_slots=default.ldt_slots if ldt_slots is None else ldt_slots,
            )
            results = pr.decide_matrix(selected, invs, cpus, settings, solver=solver.value,
                                       jobs=jobs, progress=tick)  # fmt: skip
            for name in selected:
                recs = tuple(rec for rec, o in results if o.policy == name)
                pf = pr.ProofFile(policy=name, settings=settings, records=recs)
                _write("--proofs", pr.path_for(proofs, name), pr.dumps(pf))
            outcomes = [o for _, o in results]
            print(render_check(outcomes, fmt.value, updated=True), end="")
            return ExitCode.UNKNOWN if any(o.now == "UNKNOWN" for o in outcomes) else ExitCode.OK
        recorded = {}
        for name in selected:
            path = pr.path_for(proofs, name)
            if not path.exists():
                raise InputError(
                    Span(str(path), 1, 1),
                    f"no recorded proofs for {name}: "
                    "expected the file (create it with fsgs-smt check --update)",
                )
            recorded[name] = pr.load(path, name)
        results = pr.decide_matrix(
            selected,
            invs,
            cpus,
            pr.Settings(),
            solver=solver.value,
            jobs=jobs,
            recorded=recorded,
            full=full,
            progress=tick,
        )
        outcomes = [o for _, o in results] + pr.stale_records(recorded, invs)
        print(render_check(outcomes, fmt.value, updated=False), end="")
        return ExitCode.OK if all(o.agree for o in outcomes) else ExitCode.VIOLATED

    _run(body)


class TextSolver(enum.Enum):
    """The solvers that read SMT-LIB text themselves."""

    BITWUZLA = "bitwuzla"
    Z3 = "z3"


@app.command("check-certificates")
def check_certificates_cmd(
    directory: Annotated[Path, typer.Argument(help="A directory written by prove --certificates.")],
    solver: Annotated[
        TextSolver, typer.Option(help="The solver that parses and answers each file.")
    ] = TextSolver.BITWUZLA,
    timeout: Annotated[float, typer.Option(help="Seconds per query (at most 1000000).")] = 600.0,
) -> None:
    """Answer every query of the certificates under DIRECTORY again, from the SMT-LIB text
    alone (exit 0 when every answer is the recorded one, 1 if any differs, 3 on a timeout)."""

    def body() -> int:
        from fsgs_smt.certificates import recheck_certificates  # noqa: PLC0415

        _check_timeout(timeout)
        if not directory.is_dir():
            raise InputError(CLI_SPAN, f"{directory}: not a directory: expected one that "
                                       "prove --certificates wrote")  # fmt: skip
        answers, manifests = recheck_certificates(directory, solver.value, timeout)
        if not manifests:
            raise InputError(CLI_SPAN, f"{directory}: no certificate.json below it: expected "
                                       "a directory that prove --certificates wrote")  # fmt: skip
        differ = [a for a in answers if a.got != a.expected]
        for a in differ:
            print(f"DIFFERS {a.file}: recorded {a.expected}, {solver.value} says {a.got}")
        verdict = "every answer agrees" if not differ else f"{len(differ)} differ"
        print(f"checked {len(answers)} queries of {len(manifests)} certificates with "
              f"{solver.value}: {verdict}")  # fmt: skip
        if any(a.got not in ("unknown",) for a in differ):
            return ExitCode.VIOLATED
        return ExitCode.UNKNOWN if differ else ExitCode.OK

    _run(body)


@app.command("policies")
def policies_cmd(
    copy: Annotated[
        Path | None,
        typer.Option(
            "--copy",
            help="Copy the shipped policies and their libraries into DIR "
            "(a new or empty directory), to edit them.",
        ),
    ] = None,
) -> None:
    """List the shipped policies, one line each (the default is marked *)."""

    def body() -> int:
        if copy is not None:
            for path in _copy_policies(copy):
                print(path)
            return ExitCode.OK
        for info in shipped_policies():
            mark = "*" if info.name == DEFAULT_POLICY else " "
            print(f"{info.name:<16}{mark} {info.title}")
        return ExitCode.OK

    _run(body)


def _copy_policies(target: Path) -> list[Path]:
    """Copy the shipped policy files (and lib/) into *target*; the files written."""
    from fsgs_smt.policy.load import POLICIES_DIR  # noqa: PLC0415

    try:
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputError(CLI_SPAN, f"--copy {target}: it exists and is not an empty "
                                       "directory: expected a new or empty directory")  # fmt: skip
        if not target.parent.is_dir():
            raise InputError(CLI_SPAN, f"--copy {target}: there is no directory "
                                       f"{target.parent}: expected one to make it in")  # fmt: skip
        shutil.copytree(POLICIES_DIR, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    except OSError as exc:
        why = exc.strerror or exc
        raise InputError(CLI_SPAN, f"--copy {target}: {why}: expected a directory fsgs-smt "
                                   "can write in") from None  # fmt: skip
    return sorted(p for p in target.rglob("*.yaml"))


@app.command("schema")
def schema_cmd(
    library: Annotated[
        bool, typer.Option("--library", help="The schema of a policy library file instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the policy format (for editors)."""

    def body() -> int:
        from fsgs_smt.policy.schema import library_schema, policy_schema  # noqa: PLC0415

        print(json.dumps(library_schema() if library else policy_schema(), indent=2))
        return ExitCode.OK

    _run(body)


class DoctorFormat(enum.Enum):
    """Output formats of ``doctor``."""

    TEXT = "text"
    JSON = "json"


_DOCTOR_WORDS: dict[str, dict[bool | None, str]] = {
    "nscb_cpuid": {True: "set", False: "clear", None: "unreadable"},
    "null_probe_clears": {
        True: "yes (loading selector 0 into GS cleared its base)",
        False: "no (loading selector 0 into GS kept its base)",
        None: "not run",
    },
    "null_seg_bug_flag": {
        True: "set (the kernel assumes X86_BUG_NULL_SEG)",
        False: "clear",
        None: "unknown (no bugs line in /proc/cpuinfo)",
    },
}
_DOCTOR_KEYS = (
    "kernel", "kernel_version", "arch", "vendor", "family", "model", "model_name",
    "hypervisor", "ncpus", "fsgsbase", "ia32_emulation", "modify_ldt", "ptrace", "gcc",
    "nscb_cpuid", "null_probe_clears", "null_seg_bug_flag", "cpu_model", "cpu_model_reason",
    "policy", "policy_reason", "native_replay",
)  # fmt: skip


def _doctor_value(key: str, value: object, report: dict[str, object]) -> str:
    if key == "native_replay":
        return "yes" if value else f"no: {report['native_unavailable']}"
    if key == "ia32_emulation" and not report["c_probe_ran"]:
        return "unknown (not tested: the C probe did not run)"
    if key in _DOCTOR_WORDS and (value is None or isinstance(value, bool)):
        return _DOCTOR_WORDS[key][value]
    if key in ("family", "model") and isinstance(value, int):
        return f"{value} ({value:#x})"
    if key == "kernel_version" and isinstance(value, list):
        return ".".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "not found" if key == "gcc" else "unknown"
    return str(value)


@app.command("doctor")
def doctor_cmd(
    fmt: Annotated[DoctorFormat, typer.Option("--format", help="text or json.")] = (
        DoctorFormat.TEXT
    ),
) -> None:
    """Show what this machine offers for native replay and what fsgs-smt infers from it.

    Exit code 5 (after printing everything) when native replay cannot run here.
    """

    def body() -> int:
        from fsgs_smt.native.machine import doctor_report, probe  # noqa: PLC0415

        report = doctor_report(probe())
        if fmt is DoctorFormat.JSON:
            print(json.dumps(report, indent=2))
        else:
            width = max(len(key) for key in _DOCTOR_KEYS) + 1
            for key in _DOCTOR_KEYS:
                print(f"{key + ':':<{width}} {_doctor_value(key, report[key], report)}")
        return ExitCode.OK if report["native_replay"] else ExitCode.CANNOT_RUN

    _run(body)


class ReplayFormat(enum.Enum):
    """Output formats of ``replay``."""

    TEXT = "text"
    JSON = "json"


@app.command("replay")
def replay_cmd(
    trace: Annotated[Path, typer.Argument(help="An fsgs-trace/1 JSON file.")],
    policy: Annotated[
        str, typer.Option(help="The policy whose prediction is compared.")
    ] = DEFAULT_POLICY,
    cpu: Annotated[
        str | None,
        typer.Option(help="CPU model of the prediction (default: this machine's, see doctor)."),
    ] = None,
    runs: Annotated[int, typer.Option(help="How many times the program runs.")] = 5,
    keep_c: Annotated[
        str | None,
        typer.Option("--keep-c", help="Keep the generated C program in DIR (an existing one)."),
    ] = None,
    fmt: Annotated[ReplayFormat, typer.Option("--format", help="text or json.")] = (
        ReplayFormat.TEXT
    ),
) -> None:
    """Run a trace natively (a generated C program) and compare it with the model.

    Exit 0 when every run matches the prediction, 1 on any mismatch, 5 when this machine
    cannot run it.
    """

    def body() -> int:
        from fsgs_smt.native.machine import probe  # noqa: PLC0415
        from fsgs_smt.native.render import render_json, render_text  # noqa: PLC0415
        from fsgs_smt.native.run import replay  # noqa: PLC0415

        _check_positive("--runs", runs)
        keep = _keep_dir("--keep-c", keep_c)
        pol = load_checked(policy)
        loaded = load_trace(trace)
        if cpu is not None:
            _cpu_model(cpu, None)  # a bad --cpu is bad input, before anything is probed
        info = probe()
        model = CPU_MODELS[_cpu_model(cpu, info.cpu_model)]
        report = replay(
            loaded.trace, pol, model, name=str(trace), runs=runs, keep_c=keep, info=info,
            spans=loaded.spans,
        )  # fmt: skip
        if fmt is ReplayFormat.JSON:
            print(json.dumps(render_json(report), indent=2))
        else:
            print(render_text(report), end="")
        return ExitCode.OK if report.agrees else ExitCode.VIOLATED

    _run(body)


def _check_at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise InputError(CLI_SPAN, f"{name} {value}: expected an integer >= {low}")


@app.command("conform")
def conform_cmd(
    policy: Annotated[
        str, typer.Option(help="The policy whose predictions are compared.")
    ] = DEFAULT_POLICY,
    random_count: Annotated[
        int, typer.Option("--random", help="How many random traces (seeded).")
    ] = 100,
    seed: Annotated[int, typer.Option(help="The seed of the random traces.")] = 0,
    depth: Annotated[int, typer.Option(help="At most this many events per random trace.")] = 8,
    litmus: Annotated[
        list[Path] | None,
        typer.Option(help="Also run the *.json traces of DIR (e.g. tests/golden/traces)."),
    ] = None,
    runs: Annotated[int, typer.Option(help="How many times each trace runs.")] = 1,
    recheck: Annotated[
        int, typer.Option(help="Runs of each disagreeing trace again (never/sometimes/transient).")
    ] = 10,
    cpu: Annotated[
        str | None,
        typer.Option(help="CPU model of the predictions (default: this machine's, see doctor)."),
    ] = None,
    jobs: Annotated[int, typer.Option(help="Traces compiled and run in parallel.")] = 2,
    output: Annotated[
        Path, typer.Option(help="Where the first disagreeing trace is written.")
    ] = Path("conform-disagreement.json"),
    fmt: Annotated[ReplayFormat, typer.Option("--format", help="text or json.")] = (
        ReplayFormat.TEXT
    ),
) -> None:
    """Replay many traces natively (random ones biased to the corners, and litmus files)
    and count the agreements with the model per event kind.

    Exit 0 when every trace agrees, 1 on any disagreement (the first disagreeing trace is
    written to --output), 5 when this machine cannot run them.
    """

    def body() -> int:
        from fsgs_smt.native.conform import conform, features_of, litmus_cases, random_cases  # noqa: PLC0415
        from fsgs_smt.native.machine import probe  # noqa: PLC0415
        from fsgs_smt.native.render import render_conform_json, render_conform_text  # noqa: PLC0415
        from fsgs_smt.traces.fsgs_json import dumps_trace  # noqa: PLC0415

        _check_at_least("--random", random_count, 0)
        _check_at_least("--depth", depth, 1)
        _check_at_least("--runs", runs, 1)
        _check_at_least("--recheck", recheck, 0)
        _check_at_least("--jobs", jobs, 1)
        _check_writable("--output", output)
        if not random_count and not litmus:
            raise InputError(CLI_SPAN, "--random 0 and no --litmus: expected traces to run")
        pol = load_checked(policy)
        if cpu is not None:
            _cpu_model(cpu, None)  # a bad --cpu is bad input, before anything is probed
        cases = [c for d in litmus or [] for c in litmus_cases(d)]
        info = probe()
        why = info.native_unavailable()
        if why:
            raise CannotReplayError(why)
        model = CPU_MODELS[_cpu_model(cpu, info.cpu_model)]
        cases = random_cases(random_count, seed, depth, features_of(info)) + cases
        progress = Console(stderr=True) if sys.stderr.isatty() else None
        done = [0]

        def tick(result: Any) -> None:
            done[0] += 1
            if progress is not None:
                mark = "skip" if result.skipped else ("ok" if result.agrees else "DISAGREES")
                progress.print(f"[{done[0]}/{len(cases)}] {result.case.name} {mark}",
                               markup=False, highlight=False)  # fmt: skip

        report = conform(
            cases, pol, model, runs=runs, recheck=recheck, seed=seed, depth=depth, info=info,
            jobs=jobs,
            litmus=[str(d) for d in litmus or []], progress=tick,
        )  # fmt: skip
        if not report.results or len(report.skipped) == len(report.results):
            raise CannotReplayError(f"none of the {len(cases)} traces can run here: "
                                    f"{report.skipped[0].skipped}")  # fmt: skip
        first = next(iter(report.disagreeing), None)
        if first is not None:
            trace = first.case.trace
            _write("--output", output,
                   dumps_trace(type(trace)(events=trace.events, cpu=model.name)))  # fmt: skip
        if fmt is ReplayFormat.JSON:
            doc = render_conform_json(report)
            doc["written"] = str(output) if first is not None else None
            print(json.dumps(doc, indent=2))
        else:
            text = render_conform_text(report)
            if first is not None:
                text += f"first disagreeing trace ({first.case.name}) written to {output}\n"
            print(text, end="")
        return ExitCode.OK if report.ok else ExitCode.VIOLATED

    _run(body)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
