"""Recording a step's result (only by its lease holder: a worker that lost its
lease drops its result) with its metrics, events and audit entry, and
settling the plan's status from its steps once nothing runs.
"""

from __future__ import annotations

import json
from typing import Any

from lib.data import db
from lib.executor import tools as toolbox
from lib.executor.running import StepRun
from lib.executor.store import WORKER, audit_step, load_plan
from lib.planner.models import Tool
from lib.plans import status as plan_status
from lib.trail import audit, events


def record(plan_id: Any, run: StepRun) -> str:
    """Write a step's result; returns 'succeeded', 'failed', 'waiting', 'denied',
    'held' (the kill switch kept the tool from running), 'accepted' (a
    long-running tool took it on and reports later), 'lost', or 'undo' (it
    succeeded, but the plan has been rolling back since it started, by an
    admin's order or rollback_on_failure: the caller undoes it)."""
    step = run.step
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id, lock=True)
        assert plan is not None
        if run.held or run.infrastructure:  # back to waiting, as if never claimed: the tool did not run
            updated = conn.execute(
                "UPDATE public.plan_steps SET status = 'pending', attempts = greatest(attempts - 1, 0), "
                "lease_until = NULL, leased_by = NULL, updated_at = now() "
                "WHERE id = %s AND leased_by = %s AND status = 'running' RETURNING id",
                (step["id"], WORKER),
            ).fetchone()
            return "lost" if updated is None else ("held" if run.held else "retry")
        if run.waiting or run.denied:
            status = "awaiting_approval" if run.waiting else "denied"
            updated = conn.execute(
                "UPDATE public.plan_steps SET status = %s, lease_until = NULL, leased_by = NULL, error = %s, "
                "updated_at = now() WHERE id = %s AND leased_by = %s RETURNING id",
                (status, run.denied, step["id"], WORKER),
            ).fetchone()
            return "lost" if updated is None else ("waiting" if run.waiting else "denied")
        ok = run.result is not None and run.error is None
        if ok and run.result is not None and run.result.accepted:
            return accept(conn, plan, step, run)
        finished = finish(
            conn,
            plan,
            step,
            ok=ok,
            output=run.result.output if run.result else None,
            error=run.error,
            duration_ms=run.duration_ms,
            tool=run.tool,
            tokens=(run.result.input_tokens, run.result.output_tokens) if run.result else (None, None),
            attempt=step["attempts"] + 1,
            holder=WORKER,
        )
        if not finished:
            return "lost"  # our lease expired and another worker took the step over
        if ok and plan_status.rolling_back(plan):
            # the plan row lock orders this against the rollback's read of
            # the succeeded steps: it may or may not have seen this one
            return "undo"
        return "succeeded" if ok else "failed"


FINISH_STEP = (
    "UPDATE public.plan_steps SET status = %s, output = %s, error = %s, finished_at = now(), "
    "lease_until = NULL, leased_by = NULL, updated_at = now() WHERE id = %s AND status = 'running'"
)
# An attempt's metrics row was written when it started (claiming); it gets
# its outcome here, or is written now for a step leased before that existed.
FINISH_METRICS = """
WITH done AS (
  UPDATE public.tool_metrics
     SET status = %(status)s, duration_ms = %(ms)s, input_tokens = %(in)s, output_tokens = %(out)s,
         cost_usd = %(cost)s, cost_note = %(note)s, recorded_at = now()
   WHERE step_id = %(step)s AND attempt = %(attempt)s AND status = 'started'
  RETURNING 1)
INSERT INTO public.tool_metrics (tool_id, plan_id, step_id, status, duration_ms, input_tokens, output_tokens,
                                 cost_usd, cost_note, attempt)
SELECT %(tool)s, %(plan)s, %(step)s, %(status)s, %(ms)s, %(in)s, %(out)s, %(cost)s, %(note)s, %(attempt)s
 WHERE NOT EXISTS (SELECT 1 FROM done)
"""


def finish(
    conn: Any,
    plan: dict[str, Any],
    step: dict[str, Any],
    *,
    ok: bool,
    output: Any,
    error: str | None,
    duration_ms: int,
    tool: Tool | None,
    tokens: tuple[int | None, int | None],
    attempt: int,
    holder: str | None,
) -> bool:
    """A step's outcome with its metrics, event and audit entry, in the
    caller's transaction. `holder`: the worker that must still hold the lease;
    None for a long-running tool's report (the step must still be waiting for
    one). False when the step was not there to finish (lost, or finished)."""
    params: tuple[Any, ...] = ("succeeded" if ok else "failed", json.dumps(output, default=str), error, step["id"])
    if holder is not None:
        updated = conn.execute(FINISH_STEP + " AND leased_by = %s RETURNING id", (*params, holder)).fetchone()
    else:
        updated = conn.execute(FINISH_STEP + " AND external_run IS NOT NULL RETURNING id", params).fetchone()
    if updated is None:
        return False
    cost, note = toolbox.cost_of(tool, duration_ms) if tool else (None, "unknown tool")
    conn.execute(
        FINISH_METRICS,
        {
            "status": "succeeded" if ok else "failed",
            "ms": duration_ms,
            "in": tokens[0],
            "out": tokens[1],
            "cost": cost,
            "note": note,
            "step": step["id"],
            "attempt": attempt,
            "tool": step["tool_id"],
            "plan": plan["id"],
        },
    )
    if ok and step["backlog_item_id"]:
        conn.execute(
            "UPDATE public.backlog_items SET status = 'done', updated_at = now() WHERE id = %s",
            (step["backlog_item_id"],),
        )
    kind = "step.succeeded" if ok else "step.failed"
    events.emit(
        conn,
        kind,
        plan["id"],
        {"step_id": str(step["id"]), "item_key": step["item_key"], "duration_ms": duration_ms, "error": error},
    )
    audit_step(conn, plan, step, kind, {"duration_ms": duration_ms, "error": error, "cost_usd": cost})
    return True


def accept(conn: Any, plan: dict[str, Any], step: dict[str, Any], run: StepRun) -> str:
    """The tool answered 202: the step stays running, with a lease as long as
    the tool's config allows, until its report (or the lease lapses)."""
    assert run.result is not None and run.tool is not None
    if not toolbox.callback_secret(run.tool):
        why = (
            f"tool {run.tool.id} answered 202 Accepted, but its config names no callback_secret_env that is set: "
            "its report could never be verified"
        )
        finished = finish(
            conn,
            plan,
            step,
            ok=False,
            output=run.result.output,
            error=why,
            duration_ms=run.duration_ms,
            tool=run.tool,
            tokens=(None, None),
            attempt=step["attempts"] + 1,
            holder=WORKER,
        )
        return "failed" if finished else "lost"
    lease = toolbox.async_lease_seconds(run.tool)
    external = {**(run.result.run or {}), "accepted_at": "now", "lease_seconds": lease}
    updated = conn.execute(
        "UPDATE public.plan_steps SET external_run = jsonb_set(%s::jsonb, '{accepted_at}', to_jsonb(now())), "
        "output = %s, lease_until = now() + make_interval(secs => %s), leased_by = NULL, updated_at = now() "
        "WHERE id = %s AND leased_by = %s AND status = 'running' RETURNING id",
        (json.dumps(external), json.dumps(run.result.output, default=str), lease, step["id"], WORKER),
    ).fetchone()
    if updated is None:
        return "lost"
    data = {"step_id": str(step["id"]), "item_key": step["item_key"], "lease_seconds": lease, **(run.result.run or {})}
    events.emit(conn, "step.accepted", plan["id"], data)
    audit_step(conn, plan, step, "step.accepted", data)
    return "accepted"


def settle(plan_id: Any) -> str:
    """Set the plan's status from its steps once nothing is running."""
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id, lock=True)
        assert plan is not None
        if plan["status"] not in ("executing", "paused"):
            return str(plan["status"])
        counts = {
            r["status"]: r["n"]
            for r in conn.execute(
                "SELECT status, count(*) AS n FROM public.plan_steps WHERE plan_id = %s GROUP BY status", (plan_id,)
            )
        }
        total = sum(counts.values())
        if counts.get("running"):
            return str(plan["status"])
        if counts.get("failed"):
            _finish_failed(conn, plan)
            return "failed"
        if counts.get("denied"):
            # a person said no: what depends on the step can never run, and
            # nothing but an admin's override may carry the plan on
            _block_denied(conn, plan)
            return "blocked"
        if counts.get("succeeded", 0) + counts.get("skipped", 0) == total:
            plan_status.change(conn, plan["id"], "completed", None, "plan.completed", {"steps": total})
            audit.record(
                conn,
                actor="executor",
                action="plan.completed",
                plan_id=plan_id,
                pack_ids=plan["pack_ids"],
                details={"steps": total},
                snapshot=True,
            )
            return "completed"
        if counts.get("awaiting_approval"):
            if plan["status"] != "paused":
                plan_status.change(
                    conn,
                    plan["id"],
                    "paused",
                    "waiting for approval",
                    "plan.paused",
                    {"awaiting_approval": counts["awaiting_approval"]},
                )
            return "paused"
        return str(plan["status"])


def _block_denied(conn: Any, plan: dict[str, Any]) -> None:
    denied = conn.execute(
        "SELECT item_key, error FROM public.plan_steps WHERE plan_id = %s AND status = 'denied' ORDER BY stage LIMIT 1",
        (plan["id"],),
    ).fetchone()
    reason = f"step {denied['item_key']} was denied: {denied['error']}"
    plan_status.change(conn, plan["id"], "blocked", reason, "plan.blocked", {"reason": reason})


def _finish_failed(conn: Any, plan: dict[str, Any]) -> None:
    failed = conn.execute(
        "SELECT item_key, error FROM public.plan_steps WHERE plan_id = %s AND status = 'failed' ORDER BY stage LIMIT 1",
        (plan["id"],),
    ).fetchone()
    reason = f"step {failed['item_key']} failed: {failed['error']}" if failed else "a step failed"
    plan_status.change(conn, plan["id"], "failed", reason, "plan.failed")
    audit.record(
        conn,
        actor="executor",
        action="plan.failed",
        plan_id=plan["id"],
        pack_ids=plan["pack_ids"],
        details={"reason": reason},
        snapshot=True,
    )
