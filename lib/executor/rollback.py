"""Rollback: undo the succeeded steps, last first, each undo carrying its own
idempotency key and recorded once. A rollback out of time stops where it is
and the cron tick resumes it; a step that succeeds while its plan rolls
back is undone by its own worker.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from lib.approvals import asking, outcomes
from lib.approvals.policy import rollback_token, target
from lib.data import db
from lib.executor import kill_switch
from lib.executor import tools as toolbox
from lib.executor.claiming import lease_seconds
from lib.executor.running import step_timeout
from lib.executor.store import STEP_COLUMNS, audit_step, load_plan, load_tools
from lib.planner.models import Tool
from lib.plans import status as plan_status
from lib.plans.status import RUNNABLE as RUNNABLE_PLAN
from lib.trail import audit, events

log = logging.getLogger("nofx.executor")


class OutOfTime(Exception):
    """A rollback's time ran out before an undo could finish: it stops where it
    is (the plan stays blocked, rolling back) and the cron tick resumes it,
    rather than calling the plan failed over a timeout of its own making."""


class UndoWaits(OutOfTime):
    """An undo may not run yet: the kill switch is off, or its tool needs an
    approval nobody has given. The rollback stops where it is, as out of
    time, and the tick resumes it (a refused approval ends the rolling back:
    the plan then waits for an admin)."""


def roll_back(plan_id: Any, actor: Any, reason: str, deadline: float) -> str:
    """Undo the succeeded steps, last first; the plan ends rolled_back (or
    failed, saying where, if an undo fails). Out of time, it returns
    'blocked' (the worker dispatches its next run); an undo that must wait
    returns 'waiting' (a decision, the switch or the tick resumes it). The
    plan stays blocked, rolling back, in both."""
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id, lock=True)
        assert plan is not None
        if plan["status"] in RUNNABLE_PLAN or plan["status"] == "paused":
            # no step may start while steps are undone (the executor and the
            # tick run only executing, approved and paused plans)
            outcomes.stop_for_rollback(conn, plan["id"], reason, audit.name_of(actor))
        tools = load_tools(conn)
        todo = _succeeded_steps(conn, plan_id)
    undone = 0
    while True:  # until no step is left succeeded
        stopped = _undo_each(plan, todo, tools, actor, reason, deadline)
        if stopped is not None:
            return stopped
        undone += len(todo)
        with db.transaction() as conn:
            now = load_plan(conn, plan_id, lock=True)
            assert now is not None
            if now["status"] != "blocked":  # another run of this rollback finished it
                return str(now["status"])
            # a step that succeeded after the list was read, and whose own
            # worker could not undo it, is still to do
            todo = _succeeded_steps(conn, plan_id)
            if not todo:
                plan_status.change(conn, plan["id"], "rolled_back", reason, "plan.rolled_back", {"undone": undone})
                audit.record(
                    conn,
                    actor=actor,
                    action="plan.rolled_back",
                    plan_id=plan_id,
                    pack_ids=plan["pack_ids"],
                    details={"reason": reason, "undone": undone},
                    snapshot=True,
                )
                return "rolled_back"


def _undo_each(
    plan: dict[str, Any], steps: list[dict[str, Any]], tools: dict[str, Tool], actor: Any, reason: str, deadline: float
) -> str | None:
    """Undo these steps in order. Returns None when all are undone, 'failed'
    when an undo failed (the plan says where), 'blocked' when time ran out,
    'waiting' when an undo waits (for an approval, or the kill switch)."""
    try:
        for step in steps:
            if time.monotonic() >= deadline:
                return "blocked"
            if _undo_step(plan, step, tools, actor, reason, deadline) is not None:
                return "failed"
    except UndoWaits:
        return "waiting"
    except OutOfTime:  # an undo's call ran out of the time left
        return "blocked"
    return None


def _succeeded_steps(conn: Any, plan_id: Any) -> list[dict[str, Any]]:
    """What a rollback undoes, last first."""
    rows: list[dict[str, Any]] = conn.execute(
        f"SELECT {STEP_COLUMNS} FROM public.plan_steps s WHERE plan_id = %s AND status = 'succeeded' "  # noqa: S608
        "ORDER BY stage DESC, position DESC",
        (plan_id,),
    ).fetchall()
    return rows


def _undo_step(
    plan: dict[str, Any], step: dict[str, Any], tools: dict[str, Tool], actor: Any, reason: str, deadline: float
) -> str | None:
    """Run one succeeded step's undo and record it; returns what stopped it.
    A step may be undone from two places (the rollback's list, and the worker
    whose step finished after that list was read): the undo call carries the
    step's rollback idempotency key, and only the first to move the step from
    succeeded to rolled_back records it."""
    undo = step["rollback"] or {}
    error = None
    if undo.get("action") == "run_tool":
        tool = tools.get(undo.get("tool_id", step["tool_id"]))
        if not kill_switch.execution_on():
            raise UndoWaits(f"{kill_switch.FLAG} is off")
        if tool is not None and tool.approval_policy is not None and not _undo_approved(plan, step, tool):
            raise UndoWaits(f"the undo of {step['item_key']} waits for an approval")
        error = _undo_in_flight(step, tool)
        try:
            if tool is None:
                raise toolbox.ToolFailed(f"rollback tool {undo.get('tool_id')} is not in the registry")
            if error is None:
                result = toolbox.implementation(tool)(
                    toolbox.ToolCall(
                        plan=plan,
                        step=step,
                        tool=tool,
                        inputs=undo.get("inputs", {}),
                        token=rollback_token(step),
                        deadline=deadline,
                    )
                )
                if result.accepted:  # a long-running undo: it reports to the step's callback
                    error = _await_undo_report(plan, step, tool, result)
        except OutOfTime:  # waiting (UndoWaits) is not a failure of the undo
            raise
        except toolbox.ToolFailed as exc:
            if exc.retryable and time.monotonic() >= deadline - 0.05:
                raise OutOfTime(step["item_key"]) from exc
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - report where the undo stopped
            error = f"{type(exc).__name__}: {exc}"
    elif undo.get("action") not in ("none", None):
        error = f"no rollback instructions: {undo.get('reason', 'missing')}"
    with db.transaction() as conn:
        if error is not None:
            plan_status.change(
                conn, plan["id"], "failed", f"rollback stopped at {step['item_key']}: {error}", "plan.failed"
            )
            audit.record(
                conn,
                actor=actor,
                action="plan.rollback_failed",
                plan_id=plan["id"],
                step_id=step["id"],
                details={"error": error},
                snapshot=True,
            )
            return error
        # the rollback's heartbeat (the tick resumes one that stopped beating),
        # written first: the plan's row lock before its step's, in the order
        # the executor takes them, or a worker recording this step deadlocks with us
        conn.execute("UPDATE public.plans SET updated_at = now() WHERE id = %s", (plan["id"],))
        undone = conn.execute(
            "UPDATE public.plan_steps SET status = 'rolled_back', updated_at = now() "
            "WHERE id = %s AND status = 'succeeded' RETURNING id",
            (step["id"],),
        ).fetchone()
        if undone is not None:
            events.emit(
                conn, "step.rolled_back", plan["id"], {"step_id": str(step["id"]), "item_key": step["item_key"]}
            )
            audit_step(conn, plan, step, "step.rolled_back", {"reason": reason})
    return None


def _undo_in_flight(step: dict[str, Any], tool: Tool | None) -> str | None:
    """An undo a long-running tool took on earlier: wait for its report while
    its lease lasts (UndoWaits); lapsed, it fails the rollback (or, with the
    tool's `on_lease_expiry: retry`, is called again with the same token)."""
    run = step.get("undo_run")
    if not run:
        return None
    lapsed = datetime.fromisoformat(run["lease_until"]) <= datetime.now(UTC)
    if not lapsed:
        raise UndoWaits(f"the undo of {step['item_key']} is running at its tool; its report resumes the rollback")
    if tool is not None and tool.config.get("on_lease_expiry", "fail") == "retry":
        return None
    return f"no report of the undo from tool {run.get('tool_id')} within its lease ({run.get('lease_seconds')} s)"


def _await_undo_report(plan: dict[str, Any], step: dict[str, Any], tool: Tool, result: toolbox.ToolResult) -> str:
    """The undo's tool answered 202: the step keeps its undo run, and the
    rollback waits for the report (UndoWaits), or fails if none could be verified."""
    if not toolbox.callback_secret(tool):
        return f"tool {tool.id} answered 202 to the undo, but its config names no callback_secret_env that is set"
    lease = toolbox.async_lease_seconds(tool)
    run = {**(result.run or {}), "tool_id": tool.id, "lease_seconds": lease}
    with db.transaction() as conn:
        conn.execute(
            "UPDATE public.plan_steps SET undo_run = %s::jsonb || jsonb_build_object('lease_until', "
            "now() + make_interval(secs => %s)), updated_at = now() WHERE id = %s AND status = 'succeeded'",
            (json.dumps(run), lease, step["id"]),
        )
        audit_step(conn, plan, step, "step.undo_accepted", run)
        # the rollback's heartbeat, so the tick does not resume it meanwhile
        conn.execute("UPDATE public.plans SET updated_at = now() WHERE id = %s", (plan["id"],))
    raise UndoWaits(f"the undo of {step['item_key']} runs at tool {tool.id}")


def _undo_approved(plan: dict[str, Any], step: dict[str, Any], tool: Tool) -> bool:
    """May this undo call a tool that needs approval? Yes when the step's own
    approval covered it (a step's digest includes the undo it would make);
    else the undo is asked for on its own, and waits for people."""
    assert tool.approval_policy is not None
    with db.transaction() as conn:
        token, digest = target(plan, step)
        covered = conn.execute(
            "SELECT 1 FROM public.approvals WHERE idempotency_token = %s AND digest = %s AND status = 'approved'",
            (token, digest),
        ).fetchone()
        if covered is not None:
            return True
        state, _ = asking.check(conn, plan, step, tool, tool.approval_policy, kind="rollback")
    return state == "approved"


def stalled_rollbacks(conn: Any, limit: int = 5) -> list[dict[str, Any]]:
    """Rollbacks whose run stopped (the function timed out or its process
    died): the plan is still blocked rolling back and no undo has beaten for
    a lease. Claimed by moving the heartbeat, so one tick resumes each.
    Returns each plan's id and the rollback's reason."""
    rows: list[dict[str, Any]] = conn.execute(
        """
        UPDATE public.plans p SET updated_at = now()
          FROM (SELECT id FROM public.plans
                 WHERE status = 'blocked' AND starts_with(status_reason, %(marker)s)
                   AND updated_at < now() - make_interval(secs => %(lease)s)
                 ORDER BY updated_at LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED) stalled
         WHERE p.id = stalled.id
        RETURNING p.id, substr(p.status_reason, length(%(marker)s) + 1) AS reason
        """,
        {"marker": plan_status.ROLLING_BACK, "lease": lease_seconds(), "limit": limit},
    ).fetchall()
    return rows


def undo_late(plan_id: Any, step: dict[str, Any], tools: dict[str, Tool], deadline: float) -> None:
    """A step that succeeded after its plan started rolling back (it was
    running when the rollback read the succeeded steps): undo it too, with
    the tool registry its run was claimed with."""
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id)
    assert plan is not None
    reason = "the plan was ordered rolled back while this step ran"
    try:
        _undo_step(plan, step, tools, "executor", reason, undo_deadline(deadline))
    except OutOfTime:
        # Not undone in time. A plan still rolling back is resumed by the
        # cron tick, which finds this step; one that has meanwhile ended
        # rolled_back is not finished yet, so it is rolling back again.
        log.warning("plan %s: the undo of late step %s ran out of time", plan_id, step["item_key"])
        with db.transaction() as conn:
            now = load_plan(conn, plan_id, lock=True)
            if now is not None and now["status"] == "rolled_back":
                plan_status.change(conn, plan_id, "blocked", plan_status.ROLLING_BACK + reason, "plan.blocked")


def undo_deadline(budget_deadline: float) -> float:
    """Undoing at the end of an invocation may use the room the function's
    maxDuration leaves past the budget for steps in flight (a step timeout),
    and no more: what does not fit is resumed by the cron tick."""
    return budget_deadline + step_timeout()
