"""The execute story as the endpoints tell it: start (checks, first
transition) in one transaction, then advance within the time budget, then
report the plan's state."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib import settings
from lib.data import db
from lib.executor import runner, starting


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
    ran: int = Field(description="steps this call ran")
    waiting_for: list[UUID] = Field(description="approvals the plan waits for")


def budget_seconds() -> float:
    """Below the function's maxDuration (vercel.json: 60 s), leaving room for
    the steps in flight when it runs out (a step times out after 30 s)."""
    return float(settings.env("NOFX_EXECUTE_BUDGET_SECONDS", "20") or 20)


def state(plan_id: Any, ran: int = 0) -> ExecutionState:
    with db.transaction() as conn:
        plan = conn.execute("SELECT id, status, status_reason FROM public.plans WHERE id = %s", (plan_id,)).fetchone()
        steps = conn.execute(
            "SELECT id, item_key, stage, status, attempts, error FROM public.plan_steps WHERE plan_id = %s "
            "ORDER BY stage, position LIMIT 2000",
            (plan_id,),
        ).fetchall()
        waiting = conn.execute(
            "SELECT id FROM public.approvals WHERE plan_id = %s AND status = 'pending' ORDER BY requested_at",
            (plan_id,),
        ).fetchall()
    if plan is None:
        from lib.web.problems import not_found

        raise not_found("plan", plan_id)
    return ExecutionState(
        plan_id=plan["id"],
        status=plan["status"],
        status_reason=plan["status_reason"],
        steps=[StepState(**s) for s in steps],
        ran=ran,
        waiting_for=[w["id"] for w in waiting],
    )


def execute(plan_id: UUID, principal: Any) -> ExecutionState:
    with db.transaction() as conn:
        starting.start(conn, plan_id, principal)
    outcome = runner.advance(plan_id, budget_seconds())
    return state(plan_id, outcome.ran)


def resume_quietly(plan_id: Any) -> None:
    """After an approval: carry the plan on if it can run now (the tick retries)."""
    import logging

    try:
        runner.advance(plan_id, budget_seconds())
    except Exception:
        logging.getLogger("nofx.execution").warning("resuming plan %s failed", plan_id, exc_info=True)
