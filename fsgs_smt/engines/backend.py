# SPDX-License-Identifier: MIT
"""The solvers behind the engines: z3 itself, or bitwuzla fed with the same z3 terms.

Layer: engines. Imports z3 and, when it is installed and chosen, bitwuzla.

The engines build every formula as z3 terms (the symbolic domain is z3's). A `Solver`
checks them with the chosen backend:

* ``z3``: `z3.SolverFor("QF_BV")`, incremental, assumptions as z3 terms.
* ``bitwuzla``: each z3 term is translated node by node (a memoised walk of the DAG, no
  text round trip) into bitwuzla terms, and checked by bitwuzla's incremental solver.
  Bit-vector proofs (UNSAT answers) of this model are 3-6x faster there
  (``bench/solvers.py``); the satisfying assignments come back as z3 values, so the
  decoding of counterexamples is the same for both.

``auto`` picks bitwuzla when it can be imported, z3 otherwise. A timeout, a terminator
firing, or an operator the translation does not know is an ``unknown`` answer with its
reason; it never becomes ``unsat``.

Inside `recording`, every query of a solver made there is also handed over as a
standalone SMT-LIB 2 benchmark with the answer it got: a proof's queries, written out
(``prove --certificates``), can then be checked by any other SMT solver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import z3

SOLVERS = ("auto", "z3", "bitwuzla")
# Other configurations of a backend, for the race of `engines.portfolio` (not user
# options): on the counterexample searches of ``bench/targets.py`` bitwuzla with its
# lighter rewriting finds the satisfying assignment up to 4x sooner on some queries and
# later on others, and beat z3 on nearly all of them.
CONFIGS: dict[str, tuple[str, dict[str, int]]] = {
    "bitwuzla/rewrite-1": ("bitwuzla", {"REWRITE_LEVEL": 1}),
}


def bitwuzla_available() -> bool:
    """Can the bitwuzla Python package be imported here?"""
    try:
        import bitwuzla  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def resolve(name: str) -> str:
    """The concrete backend for *name* (``auto`` becomes bitwuzla when installed)."""
    if name == "auto":
        return "bitwuzla" if bitwuzla_available() else "z3"
    if CONFIGS.get(name, (name,))[0] == "bitwuzla" and not bitwuzla_available():
        raise UnavailableSolverError("bitwuzla is not installed (pip install bitwuzla)")
    if name not in SOLVERS and name not in CONFIGS:
        msg = f"unknown solver {name!r}: expected one of {', '.join(SOLVERS + tuple(CONFIGS))}"
        raise ValueError(msg)
    return name


def version(name: str) -> str:
    """``name version`` of a concrete backend, as recorded in proofs."""
    if name == "bitwuzla":
        import bitwuzla  # noqa: PLC0415

        return f"bitwuzla {bitwuzla.version()}"
    return f"z3 {z3.get_version_string()}"


class UnavailableSolverError(Exception):
    """The chosen solver is not installed."""


class UntranslatableError(Exception):
    """A z3 operator the bitwuzla translation does not cover."""


@dataclass(frozen=True, slots=True)
class Answer:
    """``sat``, ``unsat`` or ``unknown`` (with the reason)."""

    result: str
    reason: str = ""


Sink = Callable[[str, "Answer"], None]  # (SMT-LIB 2 benchmark, the answer it got)
_RECORDER: ContextVar[Sink | None] = ContextVar("fsgs_smt_recorder", default=None)


@contextmanager
def recording(sink: Sink) -> Iterator[None]:
    """Hand every query of every `Solver` made inside the block to *sink*: its assertions
    and assumptions as one standalone SMT-LIB 2 benchmark (`benchmark`), and the answer."""
    token = _RECORDER.set(sink)
    try:
        yield
    finally:
        _RECORDER.reset(token)


def benchmark(terms: Iterable[Any], status: str) -> str:
    """*terms* (z3 booleans) as an SMT-LIB 2 QF_BV benchmark whose expected answer is
    *status* (``sat``, ``unsat`` or ``unknown``), shared subterms as ``let``s."""
    s = z3.Solver()
    s.add(*_strict(list(terms)))
    body = s.to_smt2().split("\n", 1)[1]  # z3's first line is a comment of its own
    body = body.replace("(set-info :status unknown)", f"(set-info :status {status})", 1)
    return f"; a query of fsgs-smt\n(set-logic QF_BV)\n{body}"


def _strict(terms: list[Any]) -> list[Any]:
    """*terms* without an ``and`` or ``or`` of fewer than two arguments: z3 builds and
    prints them, SMT-LIB (and bitwuzla's parser) refuses them. Each is replaced by its one
    argument, or by its unit, until none is left."""
    while True:
        odd: dict[int, tuple[Any, Any]] = {}
        seen: set[int] = set()
        stack = list(terms)
        while stack:
            t = stack.pop()
            if t.get_id() in seen or not z3.is_app(t):
                continue
            seen.add(t.get_id())
            if (z3.is_and(t) or z3.is_or(t)) and t.num_args() < 2:
                unit = z3.BoolVal(z3.is_and(t))
                odd[t.get_id()] = (t, t.arg(0) if t.num_args() else unit)
            stack.extend(t.children())
        if not odd:
            return terms
        terms = [z3.substitute(t, *odd.values()) for t in terms]


class Solver:
    """One incremental solver over z3 terms; see the module docstring."""

    def __init__(self, backend: str = "auto", *, seed: int = 0) -> None:
        self.config = resolve(backend)
        self.backend, options = CONFIGS.get(self.config, (self.config, {}))
        self.impl: _Z3 | _Bitwuzla = _Z3(seed) if self.backend == "z3" else _Bitwuzla(seed, options)
        self._sink = _RECORDER.get()
        self._asserted: list[Any] = []  # kept only while recording

    def add(self, *terms: Any) -> None:
        """Assert every term (flattening lists)."""
        for t in _flat(terms):
            self.impl.add(t)
            if self._sink is not None:
                self._asserted.append(t)

    def add_instance(self, template: Any, pairs: list[tuple[Any, Any]]) -> None:
        """Assert *template* with each ``old`` of *pairs* replaced by its ``new``.

        bitwuzla translates the template once and substitutes in its own terms, so a deep
        unrolling translates each step's variables, not each step's transition.
        """
        self.impl.add_instance(template, pairs)
        if self._sink is not None:
            self._asserted.append(z3.substitute(template, *pairs) if pairs else template)

    def check(self, *assumptions: Any, deadline: Callable[[], int] | None = None) -> Answer:
        """Satisfiable under *assumptions*? *deadline* gives the milliseconds left."""
        left = deadline() if deadline is not None else 0
        if deadline is not None and left <= 0:
            return Answer("unknown", "timeout")
        flat = list(_flat(assumptions))
        answer = self.impl.check(flat, left if deadline is not None else None)
        if answer.result == "unknown" and deadline is not None and deadline() <= 0:
            answer = Answer("unknown", "timeout")
        if self._sink is not None:
            self._sink(benchmark([*self._asserted, *flat], answer.result), answer)
        return answer

    def model(self) -> Model:
        """The satisfying assignment of the last ``sat`` answer."""
        return self.impl.model()

    def values(self) -> dict[str, int | bool]:
        """The last ``sat`` answer's value of every constant the solver has seen, by name
        (plain data: it crosses a process boundary; `Model.from_values` reads it back)."""
        return self.impl.values()


class Model:
    """A satisfying assignment that evaluates z3 terms (``model_completion`` semantics)."""

    def __init__(self, evaluate: Callable[[Any], Any]) -> None:
        self._evaluate = evaluate

    def eval(self, term: Any, model_completion: bool = True) -> Any:
        """The value of *term* as a z3 value (unassigned constants count as zero)."""
        return self._evaluate(term)

    @staticmethod
    def from_values(values: dict[str, int | bool]) -> Model:
        """The model that gives each named constant its value (absent ones: 0, false)."""

        def evaluate(term: Any) -> Any:
            pairs = []
            for c in _consts(term):
                v = values.get(c.decl().name(), 0)
                pairs.append((c, z3.BoolVal(bool(v)) if z3.is_bool(c)
                              else z3.BitVecVal(int(v), c.size())))  # fmt: skip
            return z3.simplify(z3.substitute(term, *pairs)) if pairs else z3.simplify(term)

        return Model(evaluate)

    def is_true(self, term: Any) -> bool:
        """Does boolean *term* hold?"""
        return bool(z3.is_true(self.eval(term)))

    def as_long(self, term: Any) -> int:
        """The value of bit-vector *term*."""
        return int(self.eval(term).as_long())


def _flat(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from _flat(item)
        else:
            yield item


class _Z3:
    def __init__(self, seed: int) -> None:
        self.solver = z3.SolverFor("QF_BV")
        self.solver.set("random_seed", seed)

    def add(self, term: Any) -> None:
        self.solver.add(term)

    def add_instance(self, template: Any, pairs: list[tuple[Any, Any]]) -> None:
        self.solver.add(z3.substitute(template, *pairs) if pairs else template)

    def check(self, assumptions: list[Any], left_ms: int | None) -> Answer:
        self.solver.set("timeout", left_ms if left_ms is not None else 4294967295)
        result = self.solver.check(*assumptions)
        if result == z3.sat:
            return Answer("sat")
        if result == z3.unsat:
            return Answer("unsat")
        return Answer("unknown", self.solver.reason_unknown())

    def model(self) -> Model:
        m = self.solver.model()
        return Model(lambda t: m.eval(t, model_completion=True))

    def values(self) -> dict[str, int | bool]:
        m = self.solver.model()
        out: dict[str, int | bool] = {}
        for decl in m.decls():
            if decl.arity() == 0:
                v = m[decl]
                out[decl.name()] = bool(z3.is_true(v)) if z3.is_bool(v) else v.as_long()
        return out


class _Deadline:
    """bitwuzla's terminator: stop when the wall-clock deadline has passed."""

    def __init__(self) -> None:
        self.end: float | None = None

    def __call__(self) -> bool:
        return self.end is not None and time.monotonic() > self.end


_SHARED: list[_Translator] = []
_SHARED_LIMIT = 2_000_000  # translated nodes kept before the shared translation starts over


def _shared_translator() -> _Translator:
    """One term manager and translation per process: solvers are fresh, terms are shared."""
    import bitwuzla as bw  # noqa: PLC0415

    if not _SHARED or len(_SHARED[0].memo) > _SHARED_LIMIT:
        _SHARED[:] = [_Translator(bw, bw.TermManager())]
    return _SHARED[0]


class _Bitwuzla:
    def __init__(self, seed: int, extra: dict[str, int] | None = None) -> None:
        import bitwuzla as bw  # noqa: PLC0415

        self.bw = bw
        self.translate = _shared_translator()
        self.tm = self.translate.tm
        options = bw.Options()
        options.set(bw.Option.PRODUCE_MODELS, True)
        options.set(bw.Option.SEED, seed)
        for name, value in (extra or {}).items():
            options.set(getattr(bw.Option, name), value)
        self.solver = bw.Bitwuzla(self.tm, options)
        self.terminator = _Deadline()
        self.solver.configure_terminator(self.terminator)
        self.failed = ""

    def add(self, term: Any) -> None:
        try:
            self.solver.assert_formula(self.translate(term))
        except UntranslatableError as exc:
            self.failed = str(exc)

    def add_instance(self, template: Any, pairs: list[tuple[Any, Any]]) -> None:
        try:
            base = self.translate(template)
            subst = {self.translate(old): self.translate(new) for old, new in pairs}
            self.solver.assert_formula(self.tm.substitute_term(base, subst) if subst else base)
        except UntranslatableError as exc:
            self.failed = str(exc)

    def check(self, assumptions: list[Any], left_ms: int | None) -> Answer:
        if self.failed:
            return Answer("unknown", f"bitwuzla: {self.failed}")
        try:
            terms = [self.translate(a) for a in assumptions]
        except UntranslatableError as exc:
            return Answer("unknown", f"bitwuzla: {exc}")
        self.terminator.end = None if left_ms is None else time.monotonic() + left_ms / 1000
        result = self.solver.check_sat(*terms)
        if result == self.bw.Result.SAT:
            return Answer("sat")
        if result == self.bw.Result.UNSAT:
            return Answer("unsat")
        return Answer("unknown", "bitwuzla gave up (timeout or resource limit)")

    def model(self) -> Model:
        values: dict[int, Any] = {}

        def const_value(c: Any) -> Any:
            key = c.get_id()
            if key not in values:
                t = self.translate.consts.get(c.decl().name())
                if t is None:  # never sent to bitwuzla: unconstrained, complete with 0
                    values[key] = z3.BoolVal(False) if z3.is_bool(c) else z3.BitVecVal(0, c.size())
                else:
                    v = self.solver.get_value(t)
                    values[key] = (
                        z3.BoolVal(bool(v.value())) if z3.is_bool(c)
                        else z3.BitVecVal(int(v.value(10)), c.size())
                    )  # fmt: skip
            return values[key]

        def substituted(term: Any) -> Any:
            pairs = [(c, const_value(c)) for c in _consts(term)]
            return z3.simplify(z3.substitute(term, *pairs)) if pairs else z3.simplify(term)

        def evaluate(term: Any) -> Any:
            """bitwuzla evaluates the term in its model (the translation is memoised, so a
            term the query contained costs a lookup); a term with a constant the solver
            never saw is completed with zeros, by substitution, as z3 would."""
            if not (z3.is_bv(term) or z3.is_bool(term)):
                return substituted(term)
            known = len(self.translate.consts)
            try:
                t = self.translate(term)
            except UntranslatableError:
                return substituted(term)
            if len(self.translate.consts) != known:
                return substituted(term)
            v = self.solver.get_value(t)
            if z3.is_bool(term):
                return z3.BoolVal(bool(v.value()))
            return z3.BitVecVal(int(v.value(10)), term.size())

        return Model(evaluate)

    def values(self) -> dict[str, int | bool]:
        out: dict[str, int | bool] = {}
        for name, t in self.translate.consts.items():
            v = self.solver.get_value(t)
            out[name] = bool(v.value()) if t.sort().is_bool() else int(v.value(10))
        return out


def _consts(term: Any) -> list[Any]:
    """The uninterpreted constants of *term*."""
    seen: set[int] = set()
    out: list[Any] = []
    stack = [term]
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.append(e)
        else:
            stack.extend(e.children())
    return out


def _raw(checked: Any) -> Any:
    """The ctypes function behind a z3 C API wrapper, without the error check after each
    call (these getters cannot fail on a live term, and the check costs half their time)."""
    defaults = getattr(checked, "__defaults__", None) or ()
    inner = getattr(defaults[-1], "f", None) if defaults else None
    return inner if inner is not None else checked


_RAW_AST_ID = _raw(z3.Z3_get_ast_id)
_RAW_NUM_ARGS = _raw(z3.Z3_get_app_num_args)
_RAW_APP_ARG = _raw(z3.Z3_get_app_arg)
_RAW_AST_KIND = _raw(z3.Z3_get_ast_kind)
_RAW_APP_DECL = _raw(z3.Z3_get_app_decl)
_RAW_DECL_KIND = _raw(z3.Z3_get_decl_kind)


class _Translator:
    """z3 terms -> bitwuzla terms, memoised on z3's node ids (the DAG stays shared).

    The walk uses z3's C API on raw AST pointers (`z3.Z3_get_app_arg`, ...) rather than the
    `ExprRef` wrappers, which cost most of the time of a translation. Every translated root
    is kept alive (so are its descendants): z3 reuses the ids of freed nodes.
    """

    def __init__(self, bw: Any, tm: Any) -> None:
        self.bw = bw
        self.tm = tm
        self.memo: dict[int, Any] = {}
        self.keep: list[Any] = []
        self.consts: dict[str, Any] = {}
        self.sorts: dict[int, Any] = {0: tm.mk_bool_sort()}
        k = bw.Kind
        self.nary = {
            z3.Z3_OP_AND: k.AND, z3.Z3_OP_OR: k.OR, z3.Z3_OP_NOT: k.NOT,
            z3.Z3_OP_ITE: k.ITE, z3.Z3_OP_EQ: k.EQUAL, z3.Z3_OP_DISTINCT: k.DISTINCT,
            z3.Z3_OP_IMPLIES: k.IMPLIES, z3.Z3_OP_XOR: k.XOR, z3.Z3_OP_IFF: k.EQUAL,
            z3.Z3_OP_BNOT: k.BV_NOT, z3.Z3_OP_BAND: k.BV_AND, z3.Z3_OP_BOR: k.BV_OR,
            z3.Z3_OP_BXOR: k.BV_XOR, z3.Z3_OP_BADD: k.BV_ADD, z3.Z3_OP_BSUB: k.BV_SUB,
            z3.Z3_OP_BMUL: k.BV_MUL, z3.Z3_OP_BNEG: k.BV_NEG,
            z3.Z3_OP_BUDIV: k.BV_UDIV, z3.Z3_OP_BUDIV_I: k.BV_UDIV,
            z3.Z3_OP_BUREM: k.BV_UREM, z3.Z3_OP_BUREM_I: k.BV_UREM,
            z3.Z3_OP_BSHL: k.BV_SHL, z3.Z3_OP_BLSHR: k.BV_SHR, z3.Z3_OP_BASHR: k.BV_ASHR,
            z3.Z3_OP_ULEQ: k.BV_ULE, z3.Z3_OP_ULT: k.BV_ULT, z3.Z3_OP_UGEQ: k.BV_UGE,
            z3.Z3_OP_UGT: k.BV_UGT, z3.Z3_OP_SLEQ: k.BV_SLE, z3.Z3_OP_SLT: k.BV_SLT,
            z3.Z3_OP_SGEQ: k.BV_SGE, z3.Z3_OP_SGT: k.BV_SGT, z3.Z3_OP_CONCAT: k.BV_CONCAT,
            z3.Z3_OP_BCOMP: k.BV_COMP,
        }  # fmt: skip
        self.indexed = {
            z3.Z3_OP_EXTRACT: k.BV_EXTRACT, z3.Z3_OP_ZERO_EXT: k.BV_ZERO_EXTEND,
            z3.Z3_OP_SIGN_EXT: k.BV_SIGN_EXTEND,
        }  # fmt: skip

    def __call__(self, term: Any) -> Any:
        ctx = term.ctx_ref()
        memo = self.memo
        ast_id, num_args, arg = _RAW_AST_ID, _RAW_NUM_ARGS, _RAW_APP_ARG
        root = term.as_ast()
        root_id = ast_id(ctx, root)
        if root_id in memo:
            return memo[root_id]
        self.keep.append(term)
        kids: dict[int, tuple[list[Any], list[int]]] = {}
        stack = [(root, root_id)]
        while stack:
            a, key = stack[-1]
            if key in memo:
                stack.pop()
                continue
            known = kids.get(key)
            if known is None:
                children = [arg(ctx, a, i) for i in range(num_args(ctx, a))]
                ids = [ast_id(ctx, c) for c in children]
                kids[key] = (children, ids)
                pending = [(c, i) for c, i in zip(children, ids, strict=True) if i not in memo]
                if pending:
                    stack.extend(pending)
                    continue
            else:
                ids = known[1]
            stack.pop()
            memo[key] = self._node(ctx, a, [memo[i] for i in ids])
        return memo[root_id]

    def _sort(self, ctx: Any, a: Any) -> Any:
        sort = z3.Z3_get_sort(ctx, a)
        kind = z3.Z3_get_sort_kind(ctx, sort)
        if kind == z3.Z3_BOOL_SORT:
            return self.sorts[0]
        if kind == z3.Z3_BV_SORT:
            width = z3.Z3_get_bv_sort_size(ctx, sort)
            if width not in self.sorts:
                self.sorts[width] = self.tm.mk_bv_sort(width)
            return self.sorts[width]
        raise UntranslatableError(f"unsupported sort {z3.Z3_sort_to_string(ctx, sort)}")

    def _node(self, ctx: Any, a: Any, args: list[Any]) -> Any:
        tm = self.tm
        if _RAW_AST_KIND(ctx, a) not in (z3.Z3_APP_AST, z3.Z3_NUMERAL_AST):
            raise UntranslatableError(f"unsupported term {z3.Z3_ast_to_string(ctx, a)[:80]}")
        decl = _RAW_APP_DECL(ctx, a)
        kind = _RAW_DECL_KIND(ctx, decl)
        if kind == z3.Z3_OP_TRUE:
            return tm.mk_true()
        if kind == z3.Z3_OP_FALSE:
            return tm.mk_false()
        if kind == z3.Z3_OP_BNUM:
            return tm.mk_bv_value(self._sort(ctx, a), int(z3.Z3_get_numeral_string(ctx, a)))
        if kind == z3.Z3_OP_UNINTERPRETED and not args:
            name = z3.Z3_get_symbol_string(ctx, z3.Z3_get_decl_name(ctx, decl))
            sort = self._sort(ctx, a)
            if name not in self.consts:
                self.consts[name] = tm.mk_const(sort, name)
            elif self.consts[name].sort() != sort:  # the models are read back by name
                raise UntranslatableError(f"two constants named {name} of different sorts")
            return self.consts[name]
        if kind in (z3.Z3_OP_AND, z3.Z3_OP_OR) and len(args) < 2:
            if args:
                return args[0]
            return tm.mk_true() if kind == z3.Z3_OP_AND else tm.mk_false()
        if kind in self.nary:
            return tm.mk_term(self.nary[kind], args)
        if kind in self.indexed:
            params = [z3.Z3_get_decl_int_parameter(ctx, decl, i)
                      for i in range(z3.Z3_get_decl_num_parameters(ctx, decl))]  # fmt: skip
            return tm.mk_term(self.indexed[kind], args, params)
        name = z3.Z3_get_symbol_string(ctx, z3.Z3_get_decl_name(ctx, decl))
        raise UntranslatableError(f"operator {name} is not translated")
