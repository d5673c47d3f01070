"""Advance a plan as far as a time budget allows; the next call resumes it.

Claiming: under the plan's row lock (so concurrent executors agree on how many
steps run at once), the runnable steps (pending or approved, every dependency
succeeded or skipped) and steps whose lease expired (a crashed worker) are
taken with FOR UPDATE SKIP LOCKED, marked running with a lease, and committed.
Only then does a tool run, outside any transaction, in a thread, up to
max_parallel at once. Its result is recorded only by the lease holder; a
worker that lost its lease drops its result, and the step's next run presents
the same idempotency token.

A step whose tool needs approval goes through require_approval: without a
valid decision it waits (`awaiting_approval`, plan `paused`); a denial denies
the step and blocks the plan. A failed step fails the plan, or with
rollback_on_failure undoes the succeeded steps in reverse dependency order.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from lib import settings
from lib.approvals import asking, outcomes, policy
from lib.data import db
from lib.executor import tools as toolbox
from lib.planner.models import Tool
from lib.plans import status as plan_status
from lib.plans.status import RUNNABLE as RUNNABLE_PLAN
from lib.plans.status import TERMINAL as TERMINAL_PLAN
from lib.trail import audit, events

log = logging.getLogger("nofx.executor")

WORKER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lease_seconds() -> float:
    return float(settings.env("NOFX_STEP_LEASE_SECONDS", "120") or 120)


def step_timeout() -> float:
    return float(settings.env("NOFX_STEP_TIMEOUT_SECONDS", "30") or 30)


@dataclass
class Outcome:
    plan_id: str
    status: str
    ran: int = 0
    succeeded: int = 0
    failed: int = 0
    waiting_for: list[str] = field(default_factory=list)


PLAN_QUERY = (
    "SELECT id, version, title, status, status_reason, verdict, options, input_fingerprint, policy_version, "
    "created_by, created_by_sub, executed_by, executed_by_sub, pack_ids FROM public.plans WHERE id = %s"
)


def _plan(conn: Any, plan_id: Any, lock: bool = False) -> dict[str, Any] | None:
    row: dict[str, Any] | None = conn.execute(PLAN_QUERY + (" FOR UPDATE" if lock else ""), (plan_id,)).fetchone()
    return row


def _tools(conn: Any) -> dict[str, Tool]:
    from lib.planner.create import load_tools

    tools: dict[str, Tool] = load_tools(conn)
    return tools


STEP_COLUMNS = """
  s.id, s.plan_id, s.backlog_item_id, s.item_key, s.title, s.pack_id, s.tool_id, s.stage, s.position, s.depends_on,
  s.idempotency_token, s.rollback, s.inputs, s.requires_approval, s.status, s.attempts, s.lease_until, s.leased_by,
  s.approval_round
"""


# ------------------------------------------------------------------ claim ----


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
        plan = _plan(conn, plan_id, lock=True)
        assert plan is not None
        if tools is None:
            tools = _tools(conn)
        if plan["status"] == "approved":
            plan_status.change(conn, plan["id"], "executing", None, "plan.executing")
            plan["status"] = "executing"
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
                if tool is not None and tool.approval_policy is not None and step["status"] != "running":
                    state, approval = asking.check(conn, plan, step, tool, tool.approval_policy, wait=False)
                    if state == "pending":
                        if step["status"] != "awaiting_approval":
                            conn.execute(
                                "UPDATE public.plan_steps SET status = 'awaiting_approval', updated_at = now() "
                                "WHERE id = %s",
                                (step["id"],),
                            )
                            _audit_step(
                                conn, plan, step, "step.awaiting_approval", {"approval_id": str(approval["id"])}
                            )
                            asked = True
                        continue
                    if state == "denied":
                        return Claim(_plan(conn, plan_id) or plan, [], tools, stop=True)
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


def _lease(conn: Any, plan: dict[str, Any], step: dict[str, Any]) -> None:
    retry = step["status"] == "running"  # the previous lease expired: a crashed worker
    conn.execute(
        "UPDATE public.plan_steps SET status = 'running', attempts = attempts + 1, leased_by = %s, "
        "lease_until = now() + make_interval(secs => %s), started_at = coalesce(started_at, now()), updated_at = now() "
        "WHERE id = %s",
        (WORKER, lease_seconds(), step["id"]),
    )
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
    _audit_step(conn, plan, step, "step.started", {"attempt": step["attempts"] + 1, "worker": WORKER})


def _audit_step(conn: Any, plan: dict[str, Any], step: dict[str, Any], action: str, details: dict[str, Any]) -> None:
    audit.record(
        conn,
        actor="executor",
        action=action,
        plan_id=plan["id"],
        step_id=step["id"],
        backlog_item_ids=[step["backlog_item_id"]] if step["backlog_item_id"] else (),
        pack_ids=[step["pack_id"]],
        details={"item_key": step["item_key"], **details},
    )


# -------------------------------------------------------------------- run ----


@dataclass
class StepRun:
    step: dict[str, Any]
    tool: Tool | None
    result: toolbox.ToolResult | None = None
    error: str | None = None
    waiting: str | None = None  # approval id, when the step must wait after all
    denied: str | None = None
    duration_ms: int = 0


def run_step(plan: dict[str, Any], step: dict[str, Any], tool: Tool | None) -> StepRun:
    """Run one claimed step to its end or its own timeout. The invocation's
    budget only decides whether a step is started: one started near the end
    of it still gets NOFX_STEP_TIMEOUT_SECONDS (the functions' maxDuration
    leaves room for that), rather than failing on a deadline of ours."""
    run = StepRun(step, tool)
    started = time.monotonic()
    if tool is None:
        run.error = f"tool {step['tool_id']} is not in the registry"
        return run
    function = toolbox.implementation(tool)
    if tool.approval_policy is not None:
        # checked again right before the tool runs: the decision must still
        # match what the step is now (its digest), not what it was at claim
        function = asking.require_approval(tool.id, tool.approval_policy)(function)
    call = toolbox.ToolCall(
        plan=plan,
        step=step,
        tool=tool,
        inputs=step["inputs"],
        token=step["idempotency_token"],
        deadline=started + step_timeout(),
        transaction=db.transaction,
    )
    try:
        run.result = function(call)
    except asking.ApprovalPending as pending:
        run.waiting = pending.approval_id
    except asking.ApprovalDenied as denied:
        run.denied = denied.reason
    except toolbox.ToolFailed as failed:
        run.error = str(failed)
    except Exception as exc:  # noqa: BLE001 - a tool's bug is the step's failure, not the executor's
        run.error = f"{type(exc).__name__}: {exc}"
    run.duration_ms = int((time.monotonic() - started) * 1000)
    return run


# ----------------------------------------------------------------- record ----


def record(plan_id: Any, run: StepRun) -> str:
    """Write a step's result; returns 'succeeded', 'failed', 'waiting', 'denied',
    'lost', or 'undo' (it succeeded, but the plan has been rolling back since
    it started, by an admin's order or rollback_on_failure: the caller undoes
    it)."""
    step = run.step
    with db.transaction() as conn:
        plan = _plan(conn, plan_id, lock=True)
        assert plan is not None
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
        _audit_step(conn, plan, step, kind, {"duration_ms": run.duration_ms, "error": run.error, "cost_usd": cost})
        if ok and plan_status.rolling_back(plan):
            # the plan row lock orders this against the rollback's read of
            # the succeeded steps: it may or may not have seen this one
            return "undo"
        return "succeeded" if ok else "failed"


# ------------------------------------------------------------- finishing ----


def settle(plan_id: Any) -> str:
    """Set the plan's status from its steps once nothing is running."""
    with db.transaction() as conn:
        plan = _plan(conn, plan_id, lock=True)
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


class OutOfTime(Exception):
    """A rollback's time ran out before an undo could finish: it stops where it
    is (the plan stays blocked, rolling back) and the cron tick resumes it,
    rather than calling the plan failed over a timeout of its own making."""


def roll_back(plan_id: Any, actor: Any, reason: str, deadline: float) -> str:
    """Undo the succeeded steps, last first; the plan ends rolled_back (or
    failed, saying where, if an undo fails). Out of time, it returns
    'blocked' with the rest left to the cron tick."""
    with db.transaction() as conn:
        plan = _plan(conn, plan_id, lock=True)
        assert plan is not None
        if plan["status"] in RUNNABLE_PLAN or plan["status"] == "paused":
            # no step may start while steps are undone (the executor and the
            # tick run only executing, approved and paused plans)
            outcomes.stop_for_rollback(conn, plan["id"], reason, audit.name_of(actor))
        tools = _tools(conn)
        todo = _succeeded_steps(conn, plan_id)
    undone = 0
    while True:  # until no step is left succeeded
        stopped = _undo_each(plan, todo, tools, actor, reason, deadline)
        if stopped is not None:
            return stopped
        undone += len(todo)
        with db.transaction() as conn:
            now = _plan(conn, plan_id, lock=True)
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
    when an undo failed (the plan says where), 'blocked' when time ran out."""
    try:
        for step in steps:
            if time.monotonic() >= deadline:
                return "blocked"
            if _undo_step(plan, step, tools, actor, reason, deadline) is not None:
                return "failed"
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
        try:
            if tool is None:
                raise toolbox.ToolFailed(f"rollback tool {undo.get('tool_id')} is not in the registry")
            toolbox.implementation(tool)(
                toolbox.ToolCall(
                    plan=plan,
                    step=step,
                    tool=tool,
                    inputs=undo.get("inputs", {}),
                    token=undo.get("idempotency_token", step["idempotency_token"] + "-rollback"),
                    deadline=deadline,
                )
            )
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
        undone = conn.execute(
            "UPDATE public.plan_steps SET status = 'rolled_back', updated_at = now() "
            "WHERE id = %s AND status = 'succeeded' RETURNING id",
            (step["id"],),
        ).fetchone()
        if undone is not None:
            events.emit(
                conn, "step.rolled_back", plan["id"], {"step_id": str(step["id"]), "item_key": step["item_key"]}
            )
            _audit_step(conn, plan, step, "step.rolled_back", {"reason": reason})
        # the rollback's heartbeat: the tick resumes one that stopped beating
        conn.execute("UPDATE public.plans SET updated_at = now() WHERE id = %s", (plan["id"],))
    return None


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


def _undo_late(plan_id: Any, step: dict[str, Any], tools: dict[str, Tool], deadline: float) -> None:
    """A step that succeeded after its plan started rolling back (it was
    running when the rollback read the succeeded steps): undo it too, with
    the tool registry its run was claimed with."""
    with db.transaction() as conn:
        plan = _plan(conn, plan_id)
    assert plan is not None
    reason = "the plan was ordered rolled back while this step ran"
    try:
        _undo_step(plan, step, tools, "executor", reason, _undo_deadline(deadline))
    except OutOfTime:
        # Not undone in time. A plan still rolling back is resumed by the
        # cron tick, which finds this step; one that has meanwhile ended
        # rolled_back is not finished yet, so it is rolling back again.
        log.warning("plan %s: the undo of late step %s ran out of time", plan_id, step["item_key"])
        with db.transaction() as conn:
            now = _plan(conn, plan_id, lock=True)
            if now is not None and now["status"] == "rolled_back":
                plan_status.change(conn, plan_id, "blocked", plan_status.ROLLING_BACK + reason, "plan.blocked")


# ----------------------------------------------------------------- advance ----


def advance(plan_id: Any, budget_seconds: float) -> Outcome:
    """Run what can run until the plan settles or the budget is spent."""
    deadline = time.monotonic() + budget_seconds
    outcome = Outcome(plan_id=str(plan_id), status="")
    in_flight: dict[Future[StepRun], dict[str, Any]] = {}
    failed = False
    tools: dict[str, Tool] | None = None
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="nofx-step") as pool:
        while True:
            if not failed and time.monotonic() < deadline:
                batch = claim(plan_id, len(in_flight), tools)
                tools = batch.tools
                for step in batch.steps:
                    future = pool.submit(run_step, batch.plan, step, batch.tools.get(step["tool_id"]))
                    in_flight[future] = step
                if not in_flight and (batch.stop or not batch.steps):
                    break
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=max(0.05, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            for future in done:
                in_flight.pop(future)
                run = future.result()
                state = record(plan_id, run)
                outcome.ran += 1
                if state == "undo":
                    assert tools is not None  # the step was claimed with them
                    _undo_late(plan_id, run.step, tools, deadline)
                if state in ("succeeded", "undo"):
                    outcome.succeeded += 1
                elif state == "failed":
                    outcome.failed += 1
                    failed = True
                elif state == "waiting" and run.waiting:
                    outcome.waiting_for.append(run.waiting)
            if time.monotonic() >= deadline and not in_flight:
                break
    outcome.status = _after(plan_id, failed, deadline)
    return outcome


def _undo_deadline(budget_deadline: float) -> float:
    """Undoing at the end of an invocation may use the room the function's
    maxDuration leaves past the budget for steps in flight (a step timeout),
    and no more: what does not fit is resumed by the cron tick."""
    return budget_deadline + step_timeout()


def _after(plan_id: Any, failed: bool, deadline: float) -> str:
    with db.transaction() as conn:
        plan = _plan(conn, plan_id)
    assert plan is not None
    if failed and (plan["options"] or {}).get("rollback_on_failure") and plan["status"] in RUNNABLE_PLAN:
        return roll_back(
            plan_id,
            "executor",
            "a step failed and the plan rolls back on failure",
            _undo_deadline(deadline),
        )
    return settle(plan_id)


# ------------------------------------------------------------------ start ----


def start(conn: Any, plan_id: Any, principal: Any) -> dict[str, Any]:
    """The execute request's checks and first transition, in its transaction.

    A blocked plan runs only under an active allow override that covers every
    blocking gate; a plan whose verdict is warn needs a plan approval first."""
    from lib.plans import overrides
    from lib.web.problems import Problem, not_found

    plan = _plan(conn, plan_id, lock=True)
    if plan is None:
        raise not_found("plan", plan_id)
    if plan["status"] in TERMINAL_PLAN:
        raise Problem(409, f"plan is {plan['status']}; nothing to execute", type="plan-finished")
    if overrides.rollback_ordered(conn, plan_id):
        raise Problem(409, "an admin ordered this plan rolled back; it does not run again", type="plan-finished")
    not_started = plan["status"] in ("ready", "blocked", "approved")
    if plan["status"] == "blocked" or (not_started and plan["verdict"] == "block"):
        # a gate block needs an active allow override covering every blocking
        # gate; one that expired before the plan started no longer counts
        if plan["verdict"] != "block" or not overrides.allows(conn, plan):
            raise Problem(
                409,
                "plan is blocked; an admin override (action allow) is needed",
                type="plan-blocked",
                extra={"status_reason": plan.get("status_reason")},
            )
    first_time = plan["executed_by"] is None
    if first_time:
        conn.execute(
            "UPDATE public.plans SET executed_by = %s, executed_by_sub = %s, updated_at = now() WHERE id = %s",
            (principal.name, principal.subject, plan_id),
        )
        plan["executed_by"], plan["executed_by_sub"] = principal.name, principal.subject
    if plan["status"] in ("ready", "blocked"):
        if plan["verdict"] == "warn" and plan["status"] == "ready":
            state, approval = asking.check(conn, plan, None, None, policy.PLAN_APPROVAL_POLICY)
            if state == "pending":
                plan_status.change(
                    conn,
                    plan["id"],
                    "paused",
                    "waiting for the plan approval (verdict warn)",
                    "plan.paused",
                    {"approval_id": str(approval["id"])},
                )
            elif state == "approved":
                plan_status.change(conn, plan["id"], "approved", None, "plan.approved")
            else:
                raise Problem(409, f"the plan approval was {approval['status']}", type="plan-denied")
        else:
            reason = "override" if plan["status"] == "blocked" else "verdict allow"
            plan_status.change(
                conn, plan["id"], "approved", f"cleared to run ({reason})", "plan.approved", {"cleared_by": reason}
            )
    if first_time:
        audit.record(
            conn,
            actor=principal,
            action="plan.execution_requested",
            plan_id=plan_id,
            pack_ids=plan["pack_ids"],
            details={"status": plan["status"]},
            snapshot=True,
        )
    return plan
