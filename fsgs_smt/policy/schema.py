# SPDX-License-Identifier: MIT
"""JSON Schemas (draft 2020-12) of policy files and policy libraries, for editors.

Layer: policy (front end); imports policy.vocab and semantics.events only.

The schemas mirror `policy.load` (which keys exist, which are required, their
types) and the structural rules of `policy.check` (every hook present, the
required settings and their types, no unknown hooks). They are built from the
vocabulary tables, so a hook, builtin or register slot added there appears here
too. A schema cannot check expressions: those stay strings, parsed and typed by
the loader and the checker, which remain the authority on what a policy means.
"""

from __future__ import annotations

from fsgs_smt.policy.vocab import (
    BOOL,
    BUILTINS,
    HOOKS,
    MM_ARRAYS,
    MM_FIELDS,
    REQUIRED_SETTINGS,
    THREAD_ARRAYS,
    THREAD_FIELDS,
    THREAD_SEG_ALIASES,
    HookSpec,
)
from fsgs_smt.semantics.events import USER_REGS_SLOTS

Schema = dict[str, object]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
POLICY_SCHEMA_ID = "https://fsgs-smt.dev/schema/policy-1.json"
LIBRARY_SCHEMA_ID = "https://fsgs-smt.dev/schema/policy-lib-1.json"

_IDENTIFIER_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
_U64_MAX = 2**64 - 1


def _ref(name: str, **extra: object) -> Schema:
    """A reference to ``#/$defs/NAME``, with sibling keywords (descriptions)."""
    return {"$ref": f"#/$defs/{name}", **extra}


def _described(description: str, markdown: str | None = None) -> Schema:
    """``description`` and, when it says more, ``markdownDescription``."""
    out: Schema = {"description": description}
    if markdown is not None:
        out["markdownDescription"] = markdown
    return out


def _builtin_list(*, statements: bool) -> str:
    """A Markdown list of the builtins usable as values (or, with *statements*, all)."""
    lines = []
    for name, b in BUILTINS.items():
        if b.returns is None and not statements:
            continue
        params = ", ".join(b.params)
        returns = f" -> {b.returns}" if b.returns is not None else ""
        lines.append(f"* `{name}({params}){returns}`: {b.doc}")
    return "\n".join(lines)


def _hook_markdown(name: str, spec: HookSpec) -> str:
    """What hook *name* may name and whether it returns, for an editor's hover."""
    parts = [f"**{name}**: {spec.doc}", ""]
    parts.append(f"* thread roots: {', '.join(f'`{t}`' for t in spec.threads)}")
    if spec.args:
        parts.append(f"* arguments: {', '.join(f'`arg.{a}` ({t})' for a, t in spec.args)}")
    if spec.seg_bound:
        parts.append("* runs once per segment: `seg`, `live` and `task.index`/`task.base` bound")
    if spec.frame:
        parts.append("* the signal frame: `frame.fs`, `frame.gs`")
    parts.append("* must `return` a value" if spec.returns else "* returns nothing")
    return "\n".join(parts)


def _setting_schema(value: Schema, what: str) -> Schema:
    """A setting: a bare *value*, or ``{value, doc}``."""
    return {
        "description": f"a setting: {what}, or a mapping with `value` and `doc`",
        "oneOf": [
            value,
            {
                "type": "object",
                "properties": {
                    "value": value,
                    "doc": {"type": "string", "description": "what the setting selects"},
                },
                "required": ["value"],
                "additionalProperties": False,
            },
        ],
    }


def _setting_value(typ: str) -> Schema:
    if typ == BOOL:
        return {"type": "boolean"}
    return {"type": "integer", "minimum": 0, "maximum": _U64_MAX}


def _defs() -> Schema:
    """The definitions shared by the policy and the library schema."""
    statement_md = (
        "A statement: a string (`return EXPR`, `NAME := EXPR`, `proc(ARGS)`), "
        "`{if: EXPR, then: [...], else: [...]}` or `{each_seg: [...]}`.\n\n"
        "Builtins:\n\n" + _builtin_list(statements=True)
    )
    expression_md = (
        'An expression: a string such as `"task.index != 0 && !current"`, an integer or a '
        "boolean.\n\nBuiltin functions:\n\n" + _builtin_list(statements=False)
    )
    return {
        "identifier": {
            "type": "string",
            "pattern": _IDENTIFIER_PATTERN,
            "description": "a name: letters, digits and '_', not starting with a digit",
        },
        "expression": {
            "type": ["string", "integer", "boolean"],
            **_described("an expression: a string, an integer or a boolean", expression_md),
        },
        "statements": {
            "type": ["array", "null"],
            "items": _ref("statement"),
            **_described("a statement list (empty or null: do nothing)", statement_md),
        },
        "statement": {
            **_described("a statement string, an if mapping or an each_seg mapping", statement_md),
            "oneOf": [
                {
                    "type": "string",
                    "pattern": "\\S",
                    "description": "`return EXPR`, `NAME := EXPR` or `proc(ARGS)`",
                },
                _ref("if"),
                _ref("each_seg"),
            ],
        },
        "if": {
            "type": "object",
            "description": "a conditional statement",
            "properties": {
                "if": _ref("expression", description="the condition (a bool expression)"),
                "then": _ref("statements", description="run when the condition holds"),
                "else": _ref("statements", description="run otherwise (optional)"),
            },
            "required": ["if", "then"],
            "additionalProperties": False,
        },
        "each_seg": {
            "type": "object",
            "description": "run the body once for FS and once for GS",
            "properties": {
                "each_seg": _ref(
                    "statements",
                    **_described(
                        "the body, run per segment",
                        "The body, run for FS and then GS with `seg`, `live.sel`, `live.base`, "
                        "`THREAD.index` and `THREAD.base` bound to that segment.",
                    ),
                ),
            },
            "required": ["each_seg"],
            "additionalProperties": False,
        },
        "params": {
            "type": "array",
            "items": _ref("identifier"),
            "uniqueItems": True,
            "description": "parameter names (u64 values)",
        },
        "doc": {"type": "string", "description": "what it models (the kernel code it names)"},
        "constants": {
            "type": "object",
            "propertyNames": _ref("identifier"),
            "additionalProperties": {"type": "integer", "minimum": 0, "maximum": _U64_MAX},
            **_described(
                "named integer constants, 0..2**64-1",
                "Named integer constants `0..2**64-1` (errno values, selectors, offsets), "
                "usable by name in every expression.",
            ),
        },
        "functions": {
            "type": "object",
            "propertyNames": _ref("identifier"),
            "additionalProperties": _ref("function"),
            **_described(
                "pure functions: an expression over their parameters",
                "Pure functions `{params, body, doc}`: `body` is one expression over the "
                "parameters and the constants; no effectful builtins.",
            ),
        },
        "function": {
            "type": "object",
            "properties": {
                "params": _ref("params"),
                "body": _ref("expression", description="the value of the function"),
                "doc": _ref("doc"),
            },
            "required": ["body"],
            "additionalProperties": False,
        },
        "procedures": {
            "type": "object",
            "propertyNames": _ref("identifier"),
            "additionalProperties": _ref("procedure"),
            **_described(
                "procedures: statement lists, inlined where they are called",
                "Procedures `{params, body, doc}`: `body` is a statement list, expanded in "
                "the calling hook's context (so it may name `task`, `arg`, `seg`, ...); "
                "`return` gives its value. No recursion.",
            ),
        },
        "procedure": {
            "type": "object",
            "properties": {
                "params": _ref("params"),
                "body": _ref("statements", description="the statements of the procedure"),
                "doc": _ref("doc"),
            },
            "required": ["body"],
            "additionalProperties": False,
        },
        "setting": _setting_schema(
            {
                "anyOf": [
                    {"type": "boolean"},
                    {"type": "integer", "minimum": 0, "maximum": _U64_MAX},
                ]
            },
            "a boolean or a non-negative integer",
        ),
    }


def _hooks_schema() -> Schema:
    properties: Schema = {
        name: _ref(
            "statements", description=spec.doc, markdownDescription=_hook_markdown(name, spec)
        )
        for name, spec in HOOKS.items()
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(HOOKS),
        "additionalProperties": False,
        **_described(
            "the statement list of every hook",
            "What the kernel does at each event: one statement list per hook "
            f"({', '.join(f'`{h}`' for h in HOOKS)}); all are required.",
        ),
    }


def _settings_schema() -> Schema:
    properties: Schema = {
        name: _setting_schema(_setting_value(typ), f"a {typ} (required)")
        for name, typ in REQUIRED_SETTINGS.items()
    }
    return {
        "type": "object",
        "propertyNames": _ref("identifier"),
        "properties": properties,
        "required": list(REQUIRED_SETTINGS),
        "additionalProperties": _ref("setting"),
        **_described(
            "settings: booleans or non-negative integers, read as setting.NAME",
            "Settings (`setting.NAME` in expressions): a boolean or a non-negative integer, "
            "bare or as `{value, doc}`; `--set NAME=VALUE` overrides one. Required: "
            f"{', '.join(f'`{n}` ({t})' for n, t in REQUIRED_SETTINGS.items())}.",
        ),
    }


def _state_fields(builtin: list[str], owner: str) -> Schema:
    return {
        "type": "object",
        "propertyNames": {"$ref": "#/$defs/identifier", "not": {"enum": builtin}},
        "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 64},
        "description": f"extra {owner} fields: name -> width in bits (1..64)",
    }


def _state_schema() -> Schema:
    thread_builtin = sorted({*THREAD_FIELDS, *THREAD_ARRAYS, *THREAD_SEG_ALIASES})
    mm_builtin = sorted({*MM_FIELDS, *MM_ARRAYS})
    return {
        "type": "object",
        "properties": {
            "thread": _state_fields(thread_builtin, "per-thread (struct thread_struct)"),
            "mm": _state_fields(mm_builtin, "per-mm"),
        },
        "additionalProperties": False,
        **_described(
            "state the policy adds to each thread and to the mm",
            "Extra state: `thread` fields (read as `task.NAME`, `prev.NAME`, ...) and `mm` "
            "fields (`mm.NAME`), each with its width in bits (1..64); names may not clash "
            "with built-in fields.",
        ),
    }


def _setregs_schema() -> Schema:
    n = len(USER_REGS_SLOTS)
    return {
        "type": "object",
        "properties": {
            "order": {
                "type": "array",
                "items": {"enum": list(USER_REGS_SLOTS)},
                "minItems": n,
                "maxItems": n,
                "uniqueItems": True,
                **_described(
                    f"the order PTRACE_SETREGS writes the {n} user_regs_struct slots",
                    f"The order in which PTRACE_SETREGS calls putreg() for the {n} slots of "
                    "`struct user_regs_struct`, each exactly once (Linux: offset order).",
                ),
            },
            "stop_at_first_error": {
                "type": "boolean",
                "description": "true: the first failing putreg() ends SETREGS, earlier slots "
                "stay written",
            },
        },
        "required": ["order", "stop_at_first_error"],
        "additionalProperties": False,
        "description": "PTRACE_SETREGS: the slot order and the error behaviour",
    }


def policy_schema() -> dict[str, object]:
    """The JSON Schema of a policy file (``fsgs-policy: 1``)."""
    return {
        "$schema": DIALECT,
        "$id": POLICY_SCHEMA_ID,
        "title": "fsgs-smt kernel policy",
        "description": "A kernel's FS/GS policy: settings, helpers, the SETREGS order and "
        "a statement list per hook (fsgs-policy: 1).",
        "type": "object",
        "properties": {
            "fsgs-policy": {
                "type": "integer",
                "const": 1,
                "description": "the format version: 1",
            },
            "name": {"type": "string", "description": "the policy's name (e.g. linux-5.9)"},
            "title": {"type": "string", "description": "a one-line summary"},
            "description": {"type": "string", "description": "what the policy models"},
            "include": {
                "type": "array",
                "items": {"type": "string"},
                **_described(
                    "policy libraries to include, relative to this file",
                    "Libraries (`fsgs-policy-lib: 1`) whose constants, functions and "
                    "procedures join this policy's, paths relative to this file.",
                ),
            },
            "settings": _settings_schema(),
            "constants": _ref("constants"),
            "functions": _ref("functions"),
            "procedures": _ref("procedures"),
            "setregs": _setregs_schema(),
            "hooks": _hooks_schema(),
            "state": _state_schema(),
            "invariants": {
                "description": "The policy's own invariants, in the format of "
                "specs/invariants/*.yaml (checked by `fsgs-smt prove` with the shipped ones).",
                "type": "array",
                "items": {"type": "object", "required": ["id", "statement", "source"]},
            },
        },
        "required": ["fsgs-policy", "name", "title", "settings", "setregs", "hooks"],
        "additionalProperties": False,
        "$defs": _defs(),
    }


def library_schema() -> dict[str, object]:
    """The JSON Schema of a policy library (``fsgs-policy-lib: 1``)."""
    return {
        "$schema": DIALECT,
        "$id": LIBRARY_SCHEMA_ID,
        "title": "fsgs-smt policy library",
        "description": "Constants, functions and procedures shared by policies that include "
        "this file (fsgs-policy-lib: 1).",
        "type": "object",
        "properties": {
            "fsgs-policy-lib": {
                "type": "integer",
                "const": 1,
                "description": "the library format version: 1",
            },
            "title": {"type": "string", "description": "a one-line summary"},
            "description": {"type": "string", "description": "what the library holds"},
            "constants": _ref("constants"),
            "functions": _ref("functions"),
            "procedures": _ref("procedures"),
        },
        "required": ["fsgs-policy-lib"],
        "additionalProperties": False,
        "$defs": _defs(),
    }
