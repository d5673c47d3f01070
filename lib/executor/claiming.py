"""Claiming steps: under the plan's row lock (so concurrent executors agree on
how many steps run at once), the runnable steps (pending or approved, every
dependency succeeded or skipped) and steps whose lease expired (a crashed
worker) are taken with FOR UPDATE SKIP LOCKED and leased to this worker. A
step whose tool needs approval is asked for first; it waits
(`awaiting_approval`) until a person decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib import settings
from lib.approvals import asking
from lib.data import db
from lib.executor import kill_switch
from lib.executor.recording import finish
from lib.executor.store import STEP_COLUMNS, WORKER, audit_step, load_plan, load_tools
from lib.planner.models import Tool
from lib.plans import status as plan_status
from lib.trail import events


def lease_seconds() -> float:
    """How long a claimed step is held before another worker may run it: a
    step's call is over by its timeout, so a little longer than that (a
    worker that died mid-step is retried within a minute, not two)."""
    explicit = settings.env("NOFX_STEP_LEASE_SECONDS")
    if explicit:
        return float(explicit)
    from lib.executor.running import step_timeout

    return step_timeout() + 15.0


@dataclass
class Claim:
    plan: dict[str, Any]
    steps: list[dict[str, Any]]
    tools: dict[str, Tool]
    stop: bool  # nothing more will become runnable in this call


def claim(plan_id: Any, in_flight: int, tools: dict[str, Tool] | None = None) -> Claim:
    """Lease the next runnable steps (up to max_parallel in all). `tools`: the
    registry the caller already read (one read per advance, not per step)."""
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id, lock=True)
        assert plan is not None
        if tools is None:
            tools = load_tools(conn)
        if plan["status"] == "approved":
            plan_status.change(conn, plan["id"], "executing", None, "plan.executing")
            plan["status"] = "executing"
        elif plan["status_reason"] == kill_switch.HELD:  # the switch is back on: the plan moves again
            conn.execute("UPDATE public.plans SET status_reason = NULL WHERE id = %s", (plan_id,))
            plan["status_reason"] = None
        # a paused plan is looked at too: an approval may have come in, or a
        # stale request been cancelled and need asking anew; but not while
        # the plan itself waits for its approval (verdict warn)
        if plan["status"] not in ("executing", "paused") or (
            plan["status"] == "paused" and asking.plan_approval_pending(conn, plan_id)
        ):
            return Claim(plan, [], tools, stop=True)
        max_parallel = int((plan["options"] or {}).get("max_parallel", 8))
        running_row = conn.execute(
            "SELECT count(*) AS n FROM public.plan_steps WHERE plan_id = %s AND status = 'running' "
            "AND lease_until > now()",
            (plan_id,),
        ).fetchone()
        running = running_row["n"] if running_row else 0
        slots = max(0, max_parallel - max(running, in_flight))
        if slots == 0:
            return Claim(plan, [], tools, stop=False)
        # Decide every step first, lease after: a denial (or an expiry) found
        # part way blocks the plan, and must not leave steps leased that
        # nobody will run.
        taken: list[dict[str, Any]] = []
        while len(taken) < slots:
            candidates = _candidates(conn, plan_id, [s["id"] for s in taken], slots * 4)
            asked = False
            for step in candidates:
                if len(taken) >= slots:
                    break
                tool = tools.get(step["tool_id"])
                if step["status"] == "running" and step["external_run"] is not None:
                    # a long-running tool's lease lapsed without news
                    if tool is None or tool.config.get("on_lease_expiry", "fail") != "retry":
                        _fail_silent(conn, plan, step, tool)
                        continue
                if tool is not None and tool.approval_policy is not None and step["status"] != "running":
                    state, approval = asking.check(conn, plan, step, tool, tool.approval_policy, wait=False)
                    if state == "pending":
                        if step["status"] != "awaiting_approval":
                            conn.execute(
                                "UPDATE public.plan_steps SET status = 'awaiting_approval', updated_at = now() "
                                "WHERE id = %s",
                                (step["id"],),
                            )
                            audit_step(conn, plan, step, "step.awaiting_approval", {"approval_id": str(approval["id"])})
                            asked = True
                        continue
                    if state == "denied":
                        return Claim(load_plan(conn, plan_id) or plan, [], tools, stop=True)
                taken.append(step)
            # steps just asked for now wait at the back: look again for a runnable one behind them
            if not asked or len(candidates) < slots * 4:
                break
        if taken and plan["status"] == "paused":
            plan_status.change(conn, plan["id"], "executing", None, None)
            plan["status"] = "executing"
        for step in taken:
            _lease(conn, plan, step)
        return Claim(plan, taken, tools, stop=not taken and in_flight == 0)


def _fail_silent(conn: Any, plan: dict[str, Any], step: dict[str, Any], tool: Tool | None) -> None:
    """A long-running tool accepted the step and then said nothing for its
    whole lease: the step fails (config `on_lease_expiry: retry` runs it
    again instead, with the same idempotency token)."""
    lease = (step["external_run"] or {}).get("lease_seconds")
    why = f"no report from tool {step['tool_id']} within its lease ({lease} s) after it accepted the step"
    finish(
        conn,
        plan,
        step,
        ok=False,
        output=None,
        error=why,
        duration_ms=0,
        tool=tool,
        tokens=(None, None),
        attempt=step["attempts"],
        holder=None,
    )


def _candidates(conn: Any, plan_id: Any, skip: list[Any], limit: int) -> list[dict[str, Any]]:
    """Steps whose dependencies are done, runnable ones first: steps waiting
    for an approval come last, so a crowd of them cannot hide a runnable step."""
    rows: list[dict[str, Any]] = conn.execute(
        f"""
        SELECT {STEP_COLUMNS} FROM public.plan_steps s
         WHERE s.plan_id = %(plan)s
           AND (s.status IN ('pending', 'approved', 'awaiting_approval')
                OR (s.status = 'running' AND s.lease_until < now()))
           AND s.id <> ALL (%(skip)s::uuid[])
           AND NOT EXISTS (SELECT 1 FROM public.plan_steps d
                            WHERE d.id = ANY (s.depends_on) AND d.status NOT IN ('succeeded', 'skipped'))
         ORDER BY s.status = 'awaiting_approval', s.stage, s.position
         LIMIT %(limit)s
         FOR UPDATE OF s SKIP LOCKED
        """,  # noqa: S608 - STEP_COLUMNS is a constant
        {"plan": plan_id, "skip": skip, "limit": limit},
    ).fetchall()
    return rows


# The lease, and the attempt on record from its start: a run whose worker
# dies before recording it still counts in the metrics (status 'started').
LEASE = """
WITH leased AS (
  UPDATE public.plan_steps
     SET status = 'running', attempts = attempts + 1, leased_by = %(worker)s, external_run = NULL,
         lease_until = now() + make_interval(secs => %(lease)s), started_at = coalesce(started_at, now()),
         updated_at = now()
   WHERE id = %(step)s
  RETURNING id, plan_id, tool_id, attempts)
INSERT INTO public.tool_metrics (tool_id, plan_id, step_id, status, duration_ms, cost_note, attempt, started_at)
SELECT tool_id, plan_id, id, 'started', 0, 'not finished', attempts, now() FROM leased
"""


def _lease(conn: Any, plan: dict[str, Any], step: dict[str, Any]) -> None:
    retry = step["status"] == "running"  # the previous lease expired: a crashed worker
    conn.execute(LEASE, {"worker": WORKER, "lease": lease_seconds(), "step": step["id"]})
    events.emit(
        conn,
        "step.started",
        plan["id"],
        {
            "step_id": str(step["id"]),
            "item_key": step["item_key"],
            "tool_id": step["tool_id"],
            "attempt": step["attempts"] + 1,
            "retry_after_lease_expiry": retry,
        },
    )
    audit_step(conn, plan, step, "step.started", {"attempt": step["attempts"] + 1, "worker": WORKER})
