"""The plan status rule and batched events, as evaluations record them. Pure:
no database (a stand-in connection records what would be sent)."""

from __future__ import annotations

from typing import Any

import pytest

from lib.gates.evaluate import PlanEvaluation
from lib.gates.evaluations import plan_status, status_reason
from lib.gates.models import GateResult, result, worst
from lib.planner.models import Finding
from lib.trail import events


def evaluation(*gates: GateResult) -> PlanEvaluation:
    verdict = worst([g.verdict for g in gates])
    return PlanEvaluation(verdict=verdict, score=100, gates=list(gates), steps=[], policy_version="v")


def blocking(*messages: str) -> GateResult:
    return result(
        "structural", [Finding(code="structural.x", severity="block", message=m, remediation="r") for m in messages]
    )


def test_the_status_follows_the_verdict() -> None:
    warned = result("risk", [Finding(code="risk.x", severity="warn", message="careful", remediation="r")])
    assert (plan_status(evaluation()), status_reason(evaluation())) == ("ready", None)
    assert evaluation(warned).verdict == "warn"
    assert (plan_status(evaluation(warned)), status_reason(evaluation(warned))) == ("ready", None)
    assert plan_status(evaluation(blocking("one"))) == "blocked"
    assert status_reason(evaluation(blocking("one"))) == "blocked: one"
    assert status_reason(evaluation(warned, blocking("one", "two"), blocking("three"))) == "blocked: one (and 2 more)"
    bare = PlanEvaluation(verdict="block", score=0, gates=[warned], steps=[], policy_version="v")
    assert status_reason(bare) == "blocked"


class Conn:
    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Any]]] = []

    def cursor(self) -> Conn:
        return self

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def executemany(self, sql: str, rows: list[Any]) -> None:
        self.batches.append((sql, rows))


def test_emit_many_is_one_batch_of_emits_insert_and_checks_every_type_first() -> None:
    conn = Conn()
    events.emit_many(conn, [("gate.evaluated", "p", {"a": 1}), ("plan.ready", None, None)])
    assert conn.batches == [(events.INSERT, [("gate.evaluated", "p", '{"a": 1}'), ("plan.ready", None, "{}")])]
    with pytest.raises(ValueError, match=r"unknown event type 'plan\.nope'"):
        events.emit_many(conn, [("plan.ready", None, {}), ("plan.nope", None, {})])
    events.emit_many(conn, [])
    assert len(conn.batches) == 1  # nothing sent for a bad batch, nor for an empty one
