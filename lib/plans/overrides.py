"""Overrides: an admin's recorded act, with a reason, on one named scope.

- allow (plan or one gate): a blocked plan may run. A gate override covers only
  that gate: if another gate still blocks, the plan stays blocked. It may
  carry `expires_at`; once past, it no longer counts.
- skip (step): the step counts as done without running.
- retry (step): a failed or denied step runs again (a denied one is asked anew).
- cancel (plan): nothing more runs; pending approvals are cancelled.
- rollback (plan): the succeeded steps are undone, last first.

Every override is a row in `overrides` (never edited), audited with a
snapshot, emitted as `override.applied`, and shown in GET /api/gates/:planId
next to the verdict it overrode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from lib.approvals import outcomes
from lib.data import db
from lib.gates.models import GateName
from lib.plans import status as plan_status
from lib.plans.status import TERMINAL
from lib.trail import audit, events
from lib.web.problems import Problem, field_error

Action = Literal["allow", "skip", "retry", "cancel", "rollback"]


def said(reason: str) -> str:
    """A reason as stored: trimmed, and at least 3 characters once trimmed
    (what the tables' CHECKs hold; "   ab" is a 422 naming the field, not a 500)."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason needs at least 3 characters besides spaces")
    return reason.strip()


class OverrideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan_id: UUID
    step_id: UUID | None = None
    gate: GateName | None = None
    action: Action
    reason: str = Field(min_length=3, max_length=2000, description="why; required, goes into the audit trail")
    expires_at: AwareDatetime | None = Field(default=None, description="an allow override stops counting after this")

    @model_validator(mode="after")
    def scope_fits_action(self) -> OverrideRequest:
        if self.step_id is not None and self.gate is not None:
            raise ValueError("name a step_id or a gate, not both")
        if self.action in ("skip", "retry") and self.step_id is None:
            raise ValueError(f"{self.action} needs a step_id")
        if self.action in ("cancel", "rollback") and (self.step_id or self.gate):
            raise ValueError(f"{self.action} applies to the whole plan: no step_id or gate")
        if self.action == "allow" and self.step_id is not None:
            raise ValueError("allow applies to the plan or one gate, not a step")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError("expires_at is in the past")
        return self

    @field_validator("reason")
    @classmethod
    def said_something(cls, value: str) -> str:
        return said(value)

    @property
    def scope(self) -> str:
        return "step" if self.step_id else "gate" if self.gate else "plan"


class OverrideView(BaseModel):
    id: UUID
    plan_id: UUID
    scope: str
    gate: str | None
    step_id: UUID | None
    action: str
    reason: str
    actor: str
    created_at: datetime
    expires_at: datetime | None
    active: bool
    overridden_verdict: dict[str, Any]
    plan_status: str


def active_allows(conn: Any, plan_id: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = conn.execute(
        "SELECT id, scope, gate FROM public.overrides WHERE plan_id = %s AND action = 'allow' "
        "AND (expires_at IS NULL OR expires_at > now())",
        (plan_id,),
    ).fetchall()
    return rows


def blocking_gates(conn: Any, plan_id: Any) -> set[str]:
    return {
        r["gate"]
        for r in conn.execute(
            "SELECT gate FROM public.plan_evaluations WHERE plan_id = %s AND scope = 'plan' AND gate <> 'overall' "
            "AND verdict = 'block' AND generation = (SELECT evaluation_generation FROM public.plans WHERE id = %s)",
            (plan_id, plan_id),
        )
    }


def allows(conn: Any, plan: dict[str, Any]) -> bool:
    """Do active allow overrides cover every gate that blocks this plan?"""
    overrides = active_allows(conn, plan["id"])
    if any(o["scope"] == "plan" for o in overrides):
        return True
    blocking = blocking_gates(conn, plan["id"])
    return bool(blocking) and blocking <= {o["gate"] for o in overrides}


def rollback_ordered(conn: Any, plan_id: Any) -> bool:
    """An admin ordered this plan rolled back: it may not run again."""
    row = conn.execute(
        "SELECT 1 FROM public.overrides WHERE plan_id = %s AND action = 'rollback' LIMIT 1", (plan_id,)
    ).fetchone()
    return row is not None


def _verdict_now(conn: Any, plan: dict[str, Any], request: OverrideRequest) -> dict[str, Any]:
    gates = {
        r["gate"]: {"verdict": r["verdict"], "score": r["score"]}
        for r in conn.execute(
            "SELECT gate, verdict, score FROM public.plan_evaluations WHERE plan_id = %s AND scope = 'plan' "
            "AND generation = %s",
            (plan["id"], plan["evaluation_generation"]),
        )
    }
    state: dict[str, Any] = {
        "plan_status": plan["status"],
        "verdict": plan["verdict"],
        "score": plan["score"],
        "generation": plan["evaluation_generation"],
    }
    if request.gate:
        state["gate"] = {request.gate: gates.get(request.gate)}
    elif request.action == "allow":
        state["gates"] = gates
    if request.step_id:
        step = conn.execute("SELECT status, error FROM public.plan_steps WHERE id = %s", (request.step_id,)).fetchone()
        state["step"] = step
    return state


def apply(conn: Any, request: OverrideRequest, principal: Any) -> tuple[OverrideView, bool]:
    """Record and apply; returns (the override, whether to roll back after commit)."""
    plan = conn.execute(
        "SELECT id, title, status, status_reason, verdict, score, evaluation_generation, pack_ids "  # noqa: S608
        f"FROM public.plans WHERE id = %s AND {db.bounded()} FOR UPDATE",
        (request.plan_id,),
    ).fetchone()
    if plan is None:
        raise field_error(422, ["body", "plan_id"], f"no plan {request.plan_id}")
    step = None
    if request.step_id:
        step = conn.execute(
            "SELECT id, item_key, status, backlog_item_id, pack_id FROM public.plan_steps "
            "WHERE id = %s AND plan_id = %s FOR UPDATE",
            (request.step_id, request.plan_id),
        ).fetchone()
        if step is None:
            raise field_error(422, ["body", "step_id"], "no such step in this plan")
    _check_applicable(request, plan, step)
    overridden = _verdict_now(conn, plan, request)
    row = conn.execute(
        "INSERT INTO public.overrides (plan_id, scope, gate, step_id, action, reason, actor, actor_sub, expires_at, "
        "overridden_verdict) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, created_at",
        (
            request.plan_id,
            request.scope,
            request.gate,
            request.step_id,
            request.action,
            request.reason,
            principal.name,
            principal.subject,
            request.expires_at,
            json.dumps(overridden, default=str),
        ),
    ).fetchone()
    roll_back = _effect(conn, request, plan, step, principal)
    events.emit(
        conn,
        "override.applied",
        request.plan_id,
        {
            "override_id": str(row["id"]),
            "action": request.action,
            "scope": request.scope,
            "gate": request.gate,
            "step_id": str(request.step_id) if request.step_id else None,
            "by": principal.name,
            "reason": request.reason,
        },
    )
    audit.record(
        conn,
        actor=principal,
        action=f"override.{request.action}",
        plan_id=request.plan_id,
        step_id=request.step_id,
        backlog_item_ids=[step["backlog_item_id"]] if step and step["backlog_item_id"] else (),
        pack_ids=plan["pack_ids"],
        details={
            "override_id": str(row["id"]),
            "scope": request.scope,
            "gate": request.gate,
            "reason": request.reason,
            "expires_at": request.expires_at,
            "overridden": overridden,
        },
        snapshot=True,
    )
    status = conn.execute("SELECT status FROM public.plans WHERE id = %s", (request.plan_id,)).fetchone()["status"]
    view = OverrideView(
        id=row["id"],
        plan_id=request.plan_id,
        scope=request.scope,
        gate=request.gate,
        step_id=request.step_id,
        action=request.action,
        reason=request.reason,
        actor=principal.name,
        created_at=row["created_at"],
        expires_at=request.expires_at,
        active=True,
        overridden_verdict=overridden,
        plan_status=status,
    )
    return view, roll_back


def _check_applicable(request: OverrideRequest, plan: dict[str, Any], step: dict[str, Any] | None) -> None:
    def conflict(detail: str) -> Problem:
        return Problem(409, detail, type="override-not-applicable")

    if request.action == "allow" and plan["status"] in TERMINAL:
        raise conflict(f"plan is {plan['status']}: nothing to allow")
    if request.action == "cancel" and plan["status"] in TERMINAL:
        raise conflict(f"plan is already {plan['status']}")
    if request.action == "rollback" and plan["status"] in ("cancelled", "rolled_back"):
        raise conflict(f"plan is {plan['status']}: nothing to roll back")
    if request.action in ("allow", "skip", "retry") and plan_status.rolling_back(plan):
        # it would set the plan ready or executing while its steps are undone
        raise conflict(f"plan is {plan['status_reason'] or plan['status']}: it can only be rolled back or cancelled")
    if request.action == "skip" and step is not None and step["status"] in ("succeeded", "skipped", "rolled_back"):
        raise conflict(f"step {step['item_key']} is {step['status']}: nothing to skip")
    if request.action == "retry" and step is not None and step["status"] not in ("failed", "denied"):
        raise conflict(f"step {step['item_key']} is {step['status']}: only a failed or denied step can be retried")


def _resume_status(conn: Any, plan: dict[str, Any]) -> None:
    """After a skip or a retry, a plan that stopped can carry on."""
    if plan["status"] in ("failed", "blocked", "paused") and not _gate_blocked(conn, plan):
        plan_status.change(conn, plan["id"], "executing", "resumed by an override", "plan.executing")


def _gate_blocked(conn: Any, plan: dict[str, Any]) -> bool:
    return plan["verdict"] == "block" and not allows(conn, plan)


def _effect(
    conn: Any, request: OverrideRequest, plan: dict[str, Any], step: dict[str, Any] | None, principal: Any
) -> bool:
    if request.action == "allow":
        if plan["status"] == "blocked" and allows(conn, plan):
            denied = conn.execute(
                "SELECT 1 FROM public.plan_steps WHERE plan_id = %s AND status = 'denied' LIMIT 1", (plan["id"],)
            ).fetchone()
            if denied is None:
                # override.applied tells clients; plan.ready is the planner's event (with the verdict)
                plan_status.change(conn, plan["id"], "ready", f"allowed by {principal.name}: {request.reason}", None)
        return False
    if request.action == "skip":
        assert step is not None
        outcomes.cancel_all(conn, plan["id"], f"step skipped by {principal.name}", principal.name, step_id=step["id"])
        conn.execute(
            "UPDATE public.plan_steps SET status = 'skipped', lease_until = NULL, leased_by = NULL, "
            "updated_at = now() WHERE id = %s",
            (step["id"],),
        )
        events.emit(conn, "step.skipped", plan["id"], {"step_id": str(step["id"]), "item_key": step["item_key"]})
        _resume_status(conn, plan)
        return False
    if request.action == "retry":
        assert step is not None
        conn.execute(
            "UPDATE public.plan_steps SET status = 'pending', error = NULL, lease_until = NULL, leased_by = NULL, "
            "approval_round = approval_round + CASE WHEN status = 'denied' THEN 1 ELSE 0 END, updated_at = now() "
            "WHERE id = %s",
            (step["id"],),
        )
        _resume_status(conn, plan)
        return False
    if request.action == "cancel":
        outcomes.cancel_all(conn, plan["id"], f"plan cancelled by {principal.name}", principal.name)
        # nothing will run now: a step is no longer waiting for (or cleared by) an approval
        conn.execute(
            "UPDATE public.plan_steps SET status = 'pending', updated_at = now() "
            "WHERE plan_id = %s AND status IN ('awaiting_approval', 'approved')",
            (plan["id"],),
        )
        plan_status.change(
            conn,
            plan["id"],
            "cancelled",
            f"cancelled by {principal.name}: {request.reason}",
            "plan.cancelled",
            {"by": principal.name},
        )
        return False
    # rollback: stop the plan here (blocked: neither the executor nor the tick
    # runs it, an admin may order the rollback again), undo after the commit
    outcomes.stop_for_rollback(conn, plan["id"], request.reason, principal.name)
    return True


def for_plan(conn: Any, plan_id: Any) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, scope, gate, step_id, action, reason, actor, created_at, expires_at, overridden_verdict, "
        "(action = 'allow' AND (expires_at IS NULL OR expires_at > now())) AS active "
        "FROM public.overrides WHERE plan_id = %s ORDER BY created_at",
        (plan_id,),
    ).fetchall()
    return [dict(r) for r in rows]
