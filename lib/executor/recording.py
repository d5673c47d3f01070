"""Recording a step's result (only by its lease holder: a worker that lost its
lease drops its result) with its metrics, events and audit entry, and
settling the plan's status from its steps once nothing runs.
"""

from __future__ import annotations

import json
from typing import Any

from lib.data import db
from lib.executor import tools as toolbox
from lib.executor.claiming import WORKER
from lib.executor.running import StepRun
from lib.executor.store import audit_step, load_plan
from lib.plans import status as plan_status
from lib.trail import audit, events


def record(plan_id: Any, run: StepRun) -> str:
    """Write a step's result; returns 'succeeded', 'failed', 'waiting', 'denied',
    'held' (the kill switch kept the tool from running), 'lost', or 'undo' (it
    succeeded, but the plan has been rolling back since it started, by an
    admin's order or rollback_on_failure: the caller undoes it)."""
    step = run.step
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id, lock=True)
        assert plan is not None
        if run.held:  # back to waiting, as if never claimed: the attempt did not happen
            updated = conn.execute(
                "UPDATE public.plan_steps SET status = 'pending', attempts = greatest(attempts - 1, 0), "
                "lease_until = NULL, leased_by = NULL, updated_at = now() "
                "WHERE id = %s AND leased_by = %s AND status = 'running' RETURNING id",
                (step["id"], WORKER),
            ).fetchone()
            return "lost" if updated is None else "held"
        if run.waiting or run.denied:
            status = "awaiting_approval" if run.waiting else "denied"
            updated = conn.execute(
                "UPDATE public.plan_steps SET status = %s, lease_until = NULL, leased_by = NULL, error = %s, "
                "updated_at = now() WHERE id = %s AND leased_by = %s RETURNING id",
                (status, run.denied, step["id"], WORKER),
            ).fetchone()
            return "lost" if updated is None else ("waiting" if run.waiting else "denied")
        ok = run.result is not None and run.error is None
        output = json.dumps(run.result.output if run.result else None, default=str)
        updated = conn.execute(
            "UPDATE public.plan_steps SET status = %s, output = %s, error = %s, finished_at = now(), "
            "lease_until = NULL, leased_by = NULL, updated_at = now() "
            "WHERE id = %s AND leased_by = %s AND status = 'running' RETURNING id",
            ("succeeded" if ok else "failed", output, run.error, step["id"], WORKER),
        ).fetchone()
        if updated is None:
            return "lost"  # our lease expired and another worker took the step over
        cost, note = toolbox.cost_of(run.tool, run.duration_ms) if run.tool else (None, "unknown tool")
        conn.execute(
            "INSERT INTO public.tool_metrics (tool_id, plan_id, step_id, status, duration_ms, input_tokens, "
            "output_tokens, cost_usd, cost_note) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                step["tool_id"],
                plan_id,
                step["id"],
                "succeeded" if ok else "failed",
                run.duration_ms,
                run.result.input_tokens if run.result else None,
                run.result.output_tokens if run.result else None,
                cost,
                note,
            ),
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
            plan_id,
            {
                "step_id": str(step["id"]),
                "item_key": step["item_key"],
                "duration_ms": run.duration_ms,
                "error": run.error,
            },
        )
        audit_step(conn, plan, step, kind, {"duration_ms": run.duration_ms, "error": run.error, "cost_usd": cost})
        if ok and plan_status.rolling_back(plan):
            # the plan row lock orders this against the rollback's read of
            # the succeeded steps: it may or may not have seen this one
            return "undo"
        return "succeeded" if ok else "failed"


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
