"""The shipped Rego policies, tested like code: every policy file has cases
here, each case evaluates that policy alone through the same engine the
compliance gate uses, with an input that must be denied, warned or allowed.

(OPA's `_test.rego` files with `with input as` crash regopy 1.5.2's rego-cpp
when a rule calls a builtin, so the cases drive the engine from Python.)
Step rules iterate `input.steps`; a case gives one step with key "0".
"""

from __future__ import annotations

from typing import Any

import pytest

from lib.gates import compliance

NOW_NS = 1_795_000_000 * 10**9


def step(**facts: Any) -> dict[str, Any]:
    base = {
        "key": "0",
        "tool_id": "t",
        "category": "general",
        "mutating": False,
        "sensitive": False,
        "environment": None,
        "tags": [],
        "requires_approval": False,
        "has_rollback": True,
        "pack_id": "p",
    }
    return {"steps": [{**base, **facts}], "plan": {"rollback_on_failure": False}, "config": {"freeze_windows": []}}


def window(offset_start: int, offset_end: int) -> dict[str, Any]:
    return {
        "start": "s",
        "end": "2026-11-28T00:00:00+00:00",
        "reason": "Black Friday",
        "start_ns": NOW_NS + offset_start,
        "end_ns": NOW_NS + offset_end,
    }


# policy -> [(case, package, input, expected deny codes, expected warn codes)]
CASES: dict[str, list[tuple[str, str, dict[str, Any], set[str], set[str]]]] = {
    "production_deploy_approval": [
        (
            "unapproved production deploy",
            "step",
            step(category="deploy", environment="production"),
            {"compliance.production_deploy_without_approval"},
            set(),
        ),
        (
            "approved production deploy",
            "step",
            step(category="deploy", environment="production", requires_approval=True),
            set(),
            set(),
        ),
        ("staging deploy", "step", step(category="deploy", environment="staging"), set(), set()),
    ],
    "data_export_tag": [
        ("untagged export", "step", step(category="export"), {"compliance.export_without_tag"}, set()),
        ("tagged export", "step", step(category="export", tags=["compliance:sox"]), set(), set()),
        (
            "another tag is not enough",
            "step",
            step(category="export", tags=["pii"]),
            {"compliance.export_without_tag"},
            set(),
        ),
    ],
    "production_rollback_on_failure": [
        (
            "production change without auto rollback",
            "step",
            step(environment="production", mutating=True),
            set(),
            {"compliance.production_without_auto_rollback"},
        ),
        (
            "with auto rollback",
            "step",
            {**step(environment="production", mutating=True), "plan": {"rollback_on_failure": True}},
            set(),
            set(),
        ),
        ("a read in production", "step", step(environment="production"), set(), set()),
    ],
    "freeze_window": [
        (
            "inside a freeze, changing things",
            "plan",
            {"plan": {"mutating_steps": 2}, "config": {"freeze_windows": [window(-10, 10)]}, "now_ns": NOW_NS},
            {"compliance.freeze_window"},
            set(),
        ),
        (
            "inside a freeze, changing nothing",
            "plan",
            {"plan": {"mutating_steps": 0}, "config": {"freeze_windows": [window(-10, 10)]}, "now_ns": NOW_NS},
            set(),
            set(),
        ),
        (
            "after the freeze",
            "plan",
            {"plan": {"mutating_steps": 2}, "config": {"freeze_windows": [window(-20, -10)]}, "now_ns": NOW_NS},
            set(),
            set(),
        ),
    ],
}


def test_every_shipped_policy_has_cases() -> None:
    shipped = {p.stem for p in compliance.POLICY_DIR.glob("*.rego")}
    assert shipped == set(CASES), "add cases for each policy in lib/gates/policies"


@pytest.mark.parametrize(
    ("policy", "case", "package", "document", "deny", "warn"),
    [(policy, *case) for policy, cases in CASES.items() for case in cases],
    ids=[f"{policy}: {case[0]}" for policy, cases in CASES.items() for case in cases],
)
def test_policy_case(policy: str, case: str, package: str, document: dict, deny: set, warn: set) -> None:
    source = (compliance.POLICY_DIR / f"{policy}.rego").read_text()
    engine = compliance.Engine(compliance.PolicySet.of({policy: source}))
    answer = engine._query(compliance.PACKAGES[package], document)
    assert {f["code"] for f in answer["deny"]} == deny
    assert {f["code"] for f in answer["warn"]} == warn
    for finding in answer["deny"] + answer["warn"]:
        assert finding["msg"] and finding["remediation"], "every finding says what to do"
        if package == "step":
            assert finding["step"] == "0", "a step rule names the step it is about"
