"""The worker: one invocation's worth of work on one plan.

Dispatched (lib/executor/dispatch.py) by the request that set the plan in
motion (an execute, a decision, an override, a tool's callback) and by the
tick, it advances the plan within its budget, or resumes its rollback, and
when it stopped only because its time was up, dispatches the next invocation
of itself. A run that makes no progress does not dispatch again: whoever
holds the plan's running steps (or the tick) carries it on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from lib import settings
from lib.data import db
from lib.executor import dispatch as transport
from lib.executor import kill_switch, rollback, runner
from lib.executor.store import load_plan
from lib.plans import status as plan_status
from lib.trail import notify

# A plan with work a worker could do now: steps whose dependencies are done
# (or whose lease lapsed), in a plan that may run and does not wait for its
# own approval. (A stalled rollback is found by rollback.stalled_rollbacks.)
DUE_PLANS = """
SELECT p.id FROM public.plans p
 WHERE (%(ids)s::uuid[] IS NULL OR p.id = ANY(%(ids)s::uuid[]))
   AND p.status IN ('approved', 'executing', 'paused')
   AND NOT EXISTS (SELECT 1 FROM public.approvals a
                    WHERE a.plan_id = p.id AND a.kind = 'plan' AND a.status = 'pending')
   AND EXISTS (SELECT 1 FROM public.plan_steps s
                WHERE s.plan_id = p.id
                  AND ((s.status IN ('pending', 'approved')
                        AND NOT EXISTS (SELECT 1 FROM public.plan_steps d
                                         WHERE d.id = ANY (s.depends_on)
                                           AND d.status NOT IN ('succeeded', 'skipped')))
                       OR (s.status = 'running' AND s.lease_until < now())
                       -- its request was withdrawn (what it approves changed): to be asked anew
                       OR (s.status = 'awaiting_approval'
                           AND NOT EXISTS (SELECT 1 FROM public.approvals a
                                            WHERE a.idempotency_token = s.idempotency_token
                                              AND a.status IN ('pending', 'approved')))))
 ORDER BY p.updated_at
 LIMIT %(limit)s
"""


class AdvanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: str = PydanticField(pattern=r"^[0-9a-fA-F-]{36}$")
    reason: str = PydanticField(default="dispatch", max_length=100)


class Accepted(BaseModel):
    plan_id: str
    accepted: bool = True


@dataclass
class WorkReport:
    plan_id: str
    did: str  # advanced, rolled back, nothing
    status: str
    ran: int = 0
    dispatched_again: bool = False


def budget_seconds() -> float:
    """How long one invocation starts new steps: below the function's
    maxDuration (60 s), leaving room for the steps in flight when it runs out
    (a step times out after NOFX_STEP_TIMEOUT_SECONDS)."""
    return float(settings.env("NOFX_WORKER_BUDGET_SECONDS", "20") or 20)


def due_plans(conn: Any, plan_ids: list[Any] | None = None, limit: int = 1000) -> list[Any]:
    rows = conn.execute(DUE_PLANS, {"ids": plan_ids, "limit": limit}).fetchall()
    return [r["id"] for r in rows]


def dispatch(plan_ids: Iterable[Any], reason: str, runner: Any) -> int:
    """Start one worker run per plan (lib/executor/dispatch.py: over HTTP, an
    invocation each; locally, on `runner`: a Background pool, or Inline).
    Returns how many were handed over."""
    ids = [str(p) for p in dict.fromkeys(plan_ids)]
    if not ids:
        return 0
    if transport.transport() == "http":
        return transport.post_all(ids, reason)
    for plan_id in ids:
        runner.submit(lambda plan_id=plan_id: run(plan_id, reason, runner))
    return len(ids)


def run(plan_id: Any, reason: str, background: Any) -> WorkReport:
    """Advance the plan (or resume its rollback) for one budget."""
    started = time.monotonic()
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id)
    if plan is None:
        return WorkReport(str(plan_id), "nothing", "missing")
    if plan["status"] == "blocked" and plan_status.rolling_back(plan):
        reason_text = (plan["status_reason"] or "")[len(plan_status.ROLLING_BACK) :]
        status = rollback.roll_back(plan_id, "worker", reason_text, started + budget_seconds())
        report = WorkReport(str(plan_id), "rolled back", status)
        again = status == "blocked"  # out of time, not waiting: the next invocation goes on
    else:
        outcome = runner.advance(plan_id, budget_seconds())
        report = WorkReport(str(plan_id), "advanced", outcome.status, outcome.ran)
        # a run that made progress and left work (its budget ran out) goes
        # on; one that could claim nothing leaves the plan to the holders of
        # its running steps, who dispatch when they finish, and to the tick
        again = False
        if outcome.ran > 0:
            with db.transaction() as conn:
                again = bool(due_plans(conn, [plan_id], 1))
    if again and kill_switch.execution_on():
        report.dispatched_again = dispatch([plan_id], "more work", background) > 0
    notify.deliver_quietly(plan_id)  # approval requests this run made, votes and outcomes: told now
    return report
