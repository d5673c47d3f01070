"""The execute story as the endpoints tell it: the checks and the first
transition in the request's transaction, the answer, and then the work: a
worker dispatched after the reply runs the steps (no request waits for a
tool)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib.executor import starting
from lib.web.problems import not_found

STEP_LIMIT = 2000


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: UUID


class StepState(BaseModel):
    id: UUID
    item_key: str
    stage: int
    status: str
    attempts: int
    error: str | None


class ExecutionState(BaseModel):
    plan_id: UUID
    status: str
    status_reason: str | None
    steps: list[StepState] = Field(description="every step's status (at most 2,000; see GET /api/plans/:planId)")
    runnable: list[UUID] = Field(
        description="steps free to start now: a worker was dispatched for them and runs them after this answer"
    )
    waiting_for: list[UUID] = Field(description="approvals the plan waits for")
    dispatched: bool = Field(description="whether a worker was asked to carry the plan on after this answer")


# The plan, its steps (the first STEP_LIMIT) with whether each may start now,
# and the approvals it waits for: one statement.
STATE = """
SELECT p.id, p.status, p.status_reason,
  (SELECT coalesce(json_agg(s ORDER BY s.stage, s.position), '[]'::json) FROM (
      SELECT s.id, s.item_key, s.stage, s.position, s.status, s.attempts, s.error,
             s.status IN ('pending', 'approved') AND NOT EXISTS (
               SELECT 1 FROM public.plan_steps d
                WHERE d.id = ANY (s.depends_on) AND d.status NOT IN ('succeeded', 'skipped')) AS runnable
        FROM public.plan_steps s WHERE s.plan_id = p.id ORDER BY s.stage, s.position LIMIT %(limit)s) s) AS steps,
  ARRAY(SELECT a.id FROM public.approvals a WHERE a.plan_id = p.id AND a.status = 'pending'
         ORDER BY a.requested_at) AS waiting_for,
  EXISTS (SELECT 1 FROM public.approvals a
           WHERE a.plan_id = p.id AND a.kind = 'plan' AND a.status = 'pending') AS plan_approval_pending
  FROM public.plans p WHERE p.id = %(plan)s
"""


def state(conn: Any, plan_id: Any, dispatched: bool) -> ExecutionState:
    return _state_of(conn.execute(STATE, {"plan": plan_id, "limit": STEP_LIMIT}).fetchone(), plan_id, dispatched)


def _state_of(row: dict[str, Any] | None, plan_id: Any, dispatched: bool) -> ExecutionState:
    if row is None:
        raise not_found("plan", plan_id)
    steps = row["steps"]
    # a plan waiting for its own approval (verdict warn) starts no step yet
    may_run = row["status"] in ("approved", "executing", "paused") and not row["plan_approval_pending"]
    return ExecutionState(
        plan_id=row["id"],
        status=row["status"],
        status_reason=row["status_reason"],
        steps=[StepState.model_validate(s) for s in steps],
        runnable=[s["id"] for s in steps if s["runnable"]] if may_run else [],
        waiting_for=row["waiting_for"],
        dispatched=dispatched,
    )


def execute(conn: Any, plan_id: UUID, principal: Any) -> tuple[ExecutionState, bool]:
    """Start (or resume) the plan in the request's transaction; returns the
    state to answer with, and whether a worker should carry it on."""
    plan = starting.start(conn, plan_id, principal)
    # the answer's read is queued before the audit entry's snapshot read: in
    # a pipelined transaction both travel in one round trip
    answer = conn.execute(STATE, {"plan": plan_id, "limit": STEP_LIMIT})
    starting.record(conn, plan, principal)
    view = _state_of(answer.fetchone(), plan_id, dispatched=False)
    # a worker looks whenever the plan may move: runnable steps, or a step
    # whose request was withdrawn and must be asked anew
    view.dispatched = view.status in ("approved", "executing", "paused")
    return view, view.dispatched
