# SPDX-License-Identifier: MIT
"""Tests of fsgs_smt.policy.schema: the shipped policies validate, broken ones do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from fsgs_smt.errors import InputError
from fsgs_smt.policy.check import check_policy
from fsgs_smt.policy.load import load_policy
from fsgs_smt.policy.schema import library_schema, policy_schema
from fsgs_smt.policy.vocab import HOOKS, REQUIRED_SETTINGS
from fsgs_smt.semantics.events import USER_REGS_SLOTS

POLICY_DIR = Path(__file__).resolve().parents[2] / "fsgs_smt" / "specs" / "policies"
POLICIES = sorted(POLICY_DIR.glob("*.yaml"))
LIBRARY = POLICY_DIR / "lib" / "linux-common.yaml"
BASE = POLICY_DIR / "linux-5.9.yaml"

Doc = dict[str, object]


def _load(path: Path) -> Doc:
    """The YAML document at *path*, as yaml.safe_load gives it."""
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict)
    return doc


def _errors(doc: object, schema: Doc | None = None) -> list[tuple[str, list[object]]]:
    """(validator keyword, instance path) of each top-level validation error of *doc*."""
    validator = Draft202012Validator(policy_schema() if schema is None else schema)
    return sorted(
        ((str(e.validator), list(e.absolute_path)) for e in validator.iter_errors(doc)), key=repr
    )


def _hooks(doc: Doc) -> dict[str, object]:
    hooks = doc["hooks"]
    assert isinstance(hooks, dict)
    return hooks


def _unknown_top_level_key(doc: Doc) -> None:
    doc["hook"] = {}


def _missing_hook(doc: Doc) -> None:
    del _hooks(doc)["fork"]


def _unknown_hook(doc: Doc) -> None:
    _hooks(doc)["forks"] = []


def _setregs_26_slots(doc: Doc) -> None:
    setregs = doc["setregs"]
    assert isinstance(setregs, dict)
    setregs["order"] = list(USER_REGS_SLOTS[:-1])


def _statement_unknown_key(doc: Doc) -> None:
    _hooks(doc)["sigreturn"] = [{"if": "current", "then": [], "elif": []}]


def _each_seg_with_then(doc: Doc) -> None:
    _hooks(doc)["sigreturn"] = [{"each_seg": [], "then": []}]


def _missing_required_setting(doc: Doc) -> None:
    settings = doc["settings"]
    assert isinstance(settings, dict)
    del settings["ia32_emulation"]


def _integer_fsgsbase(doc: Doc) -> None:
    settings = doc["settings"]
    assert isinstance(settings, dict)
    settings["fsgsbase"] = 1


NEGATIVE: list[tuple[str, Callable[[Doc], None], list[tuple[str, list[object]]]]] = [
    ("unknown top-level key", _unknown_top_level_key, [("additionalProperties", [])]),
    ("missing hook", _missing_hook, [("required", ["hooks"])]),
    ("unknown hook", _unknown_hook, [("additionalProperties", ["hooks"])]),
    ("setregs order of 26 slots", _setregs_26_slots, [("minItems", ["setregs", "order"])]),
    ("statement with unknown key", _statement_unknown_key, [("oneOf", ["hooks", "sigreturn", 0])]),
    ("each_seg not alone", _each_seg_with_then, [("oneOf", ["hooks", "sigreturn", 0])]),
    ("missing required setting", _missing_required_setting, [("required", ["settings"])]),
    ("integer fsgsbase", _integer_fsgsbase, [("oneOf", ["settings", "fsgsbase"])]),
]


def test_schemas_are_valid_draft_2020_12() -> None:
    """Both schemas pass the draft 2020-12 metaschema and name their dialect and id."""
    for schema in (policy_schema(), library_schema()):
        Draft202012Validator.check_schema(schema)
        assert "https://json-schema.org/draft/2020-12/schema" == schema["$schema"]
    assert "https://fsgs-smt.dev/schema/policy-1.json" == policy_schema()["$id"]


def test_policies_are_shipped() -> None:
    """The glob finds the shipped policies (so the parametrized test is not vacuous)."""
    assert BASE in POLICIES


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_shipped_policy_validates(path: Path) -> None:
    """A shipped policy file has no schema errors."""
    assert [] == _errors(_load(path))


def test_library_validates() -> None:
    """The shipped library validates against library_schema()."""
    assert [] == _errors(_load(LIBRARY), library_schema())


def test_library_schema_rejects_policy_keys() -> None:
    """A library may not carry hooks, and must say fsgs-policy-lib."""
    doc = _load(LIBRARY)
    doc["hooks"] = {}
    del doc["fsgs-policy-lib"]
    expected: list[tuple[str, list[object]]] = [("additionalProperties", []), ("required", [])]
    assert expected == _errors(doc, library_schema())


@pytest.mark.parametrize(("what", "mutate", "expected"), NEGATIVE, ids=[n[0] for n in NEGATIVE])
def test_broken_policy_fails(
    what: str, mutate: Callable[[Doc], None], expected: list[tuple[str, list[object]]]
) -> None:
    """A policy broken in one way fails validation there, and only there."""
    doc = _load(BASE)
    mutate(doc)
    assert expected == _errors(doc)


@pytest.mark.parametrize(("what", "mutate", "expected"), NEGATIVE, ids=[n[0] for n in NEGATIVE])
def test_loader_agrees_on_broken_policy(
    what: str,
    mutate: Callable[[Doc], None],
    expected: list[tuple[str, list[object]]],
    tmp_path: Path,
) -> None:
    """What the schema rejects, load_policy + check_policy reject too."""
    doc = _load(BASE)
    doc["include"] = [str(LIBRARY)]
    mutate(doc)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError):
        check_policy(load_policy(path))


def test_loader_accepts_unbroken_copy(tmp_path: Path) -> None:
    """The control for the test above: the unmutated round-tripped copy loads and checks."""
    doc = _load(BASE)
    doc["include"] = [str(LIBRARY)]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert "linux-5.9" == check_policy(load_policy(path)).name


def test_nested_bad_statement_is_located() -> None:
    """A bad statement deep inside an if/then is reported at its own path."""
    doc = _load(BASE)
    exec_hook = _hooks(doc)["exec"]
    assert isinstance(exec_hook, list)
    exec_hook[0]["then"].append({"iff": "current", "then": []})
    validator = Draft202012Validator(policy_schema())
    error = best_match(validator.iter_errors(doc))
    assert ["hooks", "exec", 0, "then", 1] == list(error.absolute_path)


def _section(name: str) -> Doc:
    properties = policy_schema()["properties"]
    assert isinstance(properties, dict)
    section = properties[name]
    assert isinstance(section, dict)
    return section


def test_hook_names_are_the_vocabulary() -> None:
    """The schema lists exactly the hooks of vocab.HOOKS, all required, with their docs."""
    hooks = _section("hooks")
    properties = hooks["properties"]
    assert isinstance(properties, dict)
    assert set(HOOKS) == set(properties)
    assert set(HOOKS) == set(hooks["required"])  # type: ignore[call-overload]
    assert {n: s.doc for n, s in HOOKS.items()} == {
        n: p["description"] for n, p in properties.items()
    }
    assert hooks["additionalProperties"] is False


def test_setregs_order_is_the_slot_enum() -> None:
    """setregs.order: each of the 27 user_regs_struct slots once."""
    properties = _section("setregs")["properties"]
    assert isinstance(properties, dict)
    order = properties["order"]
    expected = {
        "type": "array",
        "items": {"enum": list(USER_REGS_SLOTS)},
        "minItems": 27,
        "maxItems": 27,
        "uniqueItems": True,
    }
    assert expected == {k: order[k] for k in expected}


def test_required_settings_are_the_vocabulary() -> None:
    """settings requires exactly vocab.REQUIRED_SETTINGS (fsgsbase, ia32_emulation)."""
    assert ["fsgsbase", "ia32_emulation"] == _section("settings")["required"]
    assert list(REQUIRED_SETTINGS) == _section("settings")["required"]
