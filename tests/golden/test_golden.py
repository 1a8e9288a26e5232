"""Golden results: the litmus scenarios (reference §5, §3) and the kernel selftest (§4).

Each trace under ``tests/golden/traces`` is a plain fsgs-trace/1 document;
``expectations.yaml`` lists, per trace, the policy, CPU models, settings and the
expected result of selected events. Observe-like results are compared on the keys
the expectation lists; numbers are compared by value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fsgs_smt.policy.catalog import load_checked
from fsgs_smt.semantics.cpu import CPU_MODELS
from fsgs_smt.sim import simulate
from fsgs_smt.traces.fsgs_json import load_trace

HERE = Path(__file__).resolve().parent
TRACES = HERE / "traces"
ENTRIES: list[dict[str, Any]] = yaml.safe_load((HERE / "expectations.yaml").read_text())


def _cases() -> list[Any]:
    cases = []
    for entry in ENTRIES:
        for n, exp in enumerate(entry["expect"]):
            for cpu in exp["cpus"]:
                settings = exp.get("settings") or {}
                tag = ",".join(f"{k}={v}" for k, v in sorted(settings.items()))
                case_id = f"{entry['trace']}-{exp['policy']}-{cpu}" + (f"-{tag}" if tag else "")
                cases.append(
                    pytest.param(
                        entry["trace"],
                        exp["policy"],
                        cpu,
                        settings,
                        exp["results"],
                        id=f"{case_id}#{n}",
                    )
                )
    return cases


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value.lower().startswith("0x"):
        return int(value, 16)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _matches(expected: Any, actual: Any) -> bool:
    expected, actual = _norm(expected), _norm(actual)
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and _matches(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


POLICIES: dict[str, Any] = {}


def _policy(name: str) -> Any:
    if name not in POLICIES:
        POLICIES[name] = load_checked(name)
    return POLICIES[name]


@pytest.mark.parametrize(("trace", "policy", "cpu", "settings", "results"), _cases())
def test_golden(
    trace: str, policy: str, cpu: str, settings: dict[str, Any], results: dict[int, Any]
) -> None:
    """The simulator gives the documented result for every checked event."""
    loaded = load_trace(TRACES / trace)
    run = simulate(_policy(policy), loaded.trace, CPU_MODELS[cpu], settings=settings)
    mismatches = {
        i: {"expected": want, "actual": run.results[int(i)]}
        for i, want in results.items()
        if not _matches(want, run.results[int(i)])
    }

    assert {} == mismatches


def test_every_trace_file_has_expectations() -> None:
    """No golden trace is left without an expectation (and none is listed twice)."""
    listed = [e["trace"] for e in ENTRIES]

    assert sorted(p.name for p in TRACES.glob("*.json")) == sorted(listed)
