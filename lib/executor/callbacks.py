"""A long-running tool's report: POST /api/steps/:stepId/result.

A webhook tool that answered 202 reports later, Standard Webhooks signed with
the secret its own config names (`callback_secret_env`; never the Zig Todo
secret): `{step_id, idempotency_token, status: succeeded | failed | running,
output?, error?}`. A report is bound three ways: the signature to the step's
tool (or its undo's), the body to the step (`step_id` equal to the path's), and
to the run it reports on (the step's idempotency token, or its undo's). Each
delivery id is used once. `running` is a heartbeat that extends the lease; a
report for a step that no longer waits for one is a 409.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib.approvals.policy import rollback_token
from lib.data import db
from lib.executor import tools as toolbox
from lib.executor.recording import finish
from lib.executor.store import STEP_COLUMNS, audit_step, load_plan, load_tools
from lib.plans import status as plan_status
from lib.trail import audit, events
from lib.web.problems import Problem, field_error


class StepReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step_id: UUID = Field(description="the step reported on: equal to the path's")
    idempotency_token: str = Field(
        min_length=1, max_length=300, description="the token the run was started with (the step's, or its undo's)"
    )
    status: Literal["succeeded", "failed", "running"] = Field(description="running: a heartbeat (the lease goes on)")
    output: Any = None
    error: str | None = Field(default=None, max_length=5000)


class ReportAnswer(BaseModel):
    step_id: UUID
    phase: Literal["run", "undo"]
    step_status: str
    lease_until: datetime | None = None


def signers(params: dict[str, str]) -> list[tuple[str, str]]:
    """Who may sign a report for this step, and with which secret: the step's
    tool, and the tool its undo calls (when it is another)."""
    try:
        step_id = uuid.UUID(params["stepId"])
    except (KeyError, ValueError):
        return []
    with db.transaction() as conn:
        row = conn.execute("SELECT tool_id, rollback FROM public.plan_steps WHERE id = %s", (step_id,)).fetchone()
        if row is None:
            return []
        tools = load_tools(conn)
    ids = [row["tool_id"], (row["rollback"] or {}).get("tool_id", row["tool_id"])]
    found = []
    for tool_id in dict.fromkeys(ids):
        tool = tools.get(tool_id)
        secret = toolbox.callback_secret(tool) if tool is not None else None
        if secret:
            found.append((f"tool:{tool_id}", secret))
    return found


def receive(conn: Any, step_id: UUID, principal: Any, report: StepReport) -> tuple[ReportAnswer, Any]:
    """Apply one report; returns the answer and the plan to carry on (or None)."""
    if report.step_id != step_id:
        raise field_error(422, ["body", "step_id"], f"this is the report endpoint of step {step_id}")
    plan_id = conn.execute("SELECT plan_id FROM public.plan_steps WHERE id = %s", (step_id,)).fetchone()["plan_id"]
    plan = load_plan(conn, plan_id, lock=True)  # plan first, then step: the order every writer takes
    step = conn.execute(
        f"SELECT {STEP_COLUMNS}, (SELECT started_at FROM public.tool_metrics m WHERE m.step_id = s.id "  # noqa: S608
        "AND m.attempt = s.attempts ORDER BY m.id DESC LIMIT 1) AS attempt_started_at "
        "FROM public.plan_steps s WHERE s.id = %s FOR UPDATE OF s",
        (step_id,),
    ).fetchone()
    assert plan is not None and step is not None
    phase: Literal["run", "undo"]
    if report.idempotency_token == step["idempotency_token"]:
        phase = "run"
        signer = step["tool_id"]
    elif report.idempotency_token == rollback_token(step):
        phase = "undo"
        signer = (step["rollback"] or {}).get("tool_id", step["tool_id"])
    else:
        raise Problem(409, "this report names another run than this step's (its idempotency token)", type="misdirected")
    if principal.subject != f"tool:{signer}":
        raise Problem(401, f"a report on this run must be signed by tool {signer}", type="bad-signature")
    delivered = conn.execute(
        "INSERT INTO public.step_callbacks (delivery_id, step_id, phase, status) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
        (principal.claims["webhook_id"], step_id, phase, report.status),
    ).fetchone()
    if delivered is None:
        raise Problem(409, "this delivery (webhook-id) was used before", type="delivery-reused")
    if phase == "run":
        return _run_report(conn, plan, step, report)
    return _undo_report(conn, plan, step, report)


def _run_report(conn: Any, plan: dict[str, Any], step: dict[str, Any], report: StepReport) -> tuple[ReportAnswer, Any]:
    if step["status"] != "running" or step["external_run"] is None:
        raise Problem(
            409, f"step {step['item_key']} is {step['status']}: it waits for no report", type="step-not-waiting"
        )
    if report.status == "running":
        lease = float(step["external_run"].get("lease_seconds") or 3600)
        row = conn.execute(
            "UPDATE public.plan_steps SET lease_until = now() + make_interval(secs => %s), updated_at = now() "
            "WHERE id = %s RETURNING lease_until",
            (lease, step["id"]),
        ).fetchone()
        events.emit(conn, "step.heartbeat", plan["id"], {"step_id": str(step["id"]), "item_key": step["item_key"]})
        return ReportAnswer(
            step_id=step["id"], phase="run", step_status="running", lease_until=row["lease_until"]
        ), None
    started = step["attempt_started_at"] or step["external_run"].get("accepted_at")
    duration_ms = _ms_since(conn, started)
    ok = report.status == "succeeded"
    tool = load_tools(conn).get(step["tool_id"])
    finish(
        conn,
        plan,
        step,
        ok=ok,
        output=report.output,
        error=None if ok else (report.error or "the tool reported a failure"),
        duration_ms=duration_ms,
        tool=tool,
        tokens=(None, None),
        attempt=step["attempts"],
        holder=None,
    )
    return ReportAnswer(step_id=step["id"], phase="run", step_status=report.status), plan["id"]


def _undo_report(conn: Any, plan: dict[str, Any], step: dict[str, Any], report: StepReport) -> tuple[ReportAnswer, Any]:
    if step["status"] != "succeeded" or step["undo_run"] is None:
        raise Problem(409, f"the undo of {step['item_key']} waits for no report", type="step-not-waiting")
    if report.status == "running":
        lease = float(step["undo_run"].get("lease_seconds") or 3600)
        row = conn.execute(
            "UPDATE public.plan_steps SET undo_run = jsonb_set(undo_run, '{lease_until}', "
            "to_jsonb(now() + make_interval(secs => %s))), updated_at = now() WHERE id = %s "
            "RETURNING (undo_run->>'lease_until')::timestamptz AS lease_until",
            (lease, step["id"]),
        ).fetchone()
        return ReportAnswer(
            step_id=step["id"], phase="undo", step_status="succeeded", lease_until=row["lease_until"]
        ), None
    if report.status == "succeeded":
        conn.execute(
            "UPDATE public.plan_steps SET status = 'rolled_back', undo_run = NULL, updated_at = now() WHERE id = %s",
            (step["id"],),
        )
        events.emit(conn, "step.rolled_back", plan["id"], {"step_id": str(step["id"]), "item_key": step["item_key"]})
        audit_step(conn, plan, step, "step.rolled_back", {"reported": True, "output": report.output})
        return ReportAnswer(step_id=step["id"], phase="undo", step_status="rolled_back"), plan["id"]
    error = report.error or "the tool reported the undo failed"
    conn.execute("UPDATE public.plan_steps SET undo_run = NULL, updated_at = now() WHERE id = %s", (step["id"],))
    plan_status.change(conn, plan["id"], "failed", f"rollback stopped at {step['item_key']}: {error}", "plan.failed")
    audit.record(
        conn,
        actor=f"tool:{step['tool_id']}",
        action="plan.rollback_failed",
        plan_id=plan["id"],
        step_id=step["id"],
        details={"error": error},
        snapshot=True,
    )
    return ReportAnswer(step_id=step["id"], phase="undo", step_status="succeeded"), None


def _ms_since(conn: Any, started: Any) -> int:
    if started is None:
        return 0
    row = conn.execute(
        "SELECT greatest(0, (extract(epoch FROM clock_timestamp() - %s::timestamptz) * 1000))::bigint AS ms",
        (started,),
    ).fetchone()
    return int(min(row["ms"], 2**31 - 1))
