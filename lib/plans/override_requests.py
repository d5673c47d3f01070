"""Override requests: a planner who meets a blocked plan asks for an override
(recorded, with a reason) rather than meet an admin-only remedy; an admin
grants it (the override is applied by that admin, with the admin's reason,
exactly as POST /api/automation/override would) or declines it. The person
who asked never decides their own request. Decisions take the request's
row lock, so two admins deciding at once leave one decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lib.plans import overrides
from lib.trail import audit, events
from lib.web.problems import Problem, field_error, not_found


class AskBody(overrides.OverrideRequest):
    """What a planner asks for: the same scope rules as an override."""

    action: overrides.Action = "allow"

    @model_validator(mode="after")
    def no_expiry_yet(self) -> AskBody:
        if self.expires_at is not None:
            raise ValueError("expires_at is the granting admin's to set; leave it out of a request")
        return self


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["grant", "decline"]
    reason: str = Field(min_length=3, max_length=2000, description="why; required, goes into the audit trail")


class OverrideRequestView(BaseModel):
    id: UUID
    plan_id: UUID
    action: str
    step_id: UUID | None
    gate: str | None
    reason: str
    status: Literal["open", "granted", "declined"]
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    override_id: UUID | None


class RequestList(BaseModel):
    requests: list[OverrideRequestView]


COLUMNS = """id, plan_id, action, step_id, gate, reason, status, requested_by, requested_by_sub, requested_at,
  decided_by, decided_at, decision_reason, override_id"""


def ask(conn: Any, body: AskBody, principal: Any) -> tuple[OverrideRequestView, bool]:
    """Record the request; (the request, whether it is new). An open request
    for the same thing answers as it stands."""
    plan = conn.execute("SELECT id, status, pack_ids FROM public.plans WHERE id = %s", (body.plan_id,)).fetchone()
    if plan is None:
        raise field_error(422, ["body", "plan_id"], f"no plan {body.plan_id}")
    if (
        body.step_id is not None
        and not conn.execute(
            "SELECT 1 FROM public.plan_steps WHERE id = %s AND plan_id = %s", (body.step_id, body.plan_id)
        ).fetchone()
    ):
        raise field_error(422, ["body", "step_id"], "no such step in this plan")
    row = conn.execute(
        f"INSERT INTO public.override_requests (plan_id, action, step_id, gate, reason, requested_by, "  # noqa: S608
        "requested_by_sub) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
        f"RETURNING {COLUMNS}",
        (body.plan_id, body.action, body.step_id, body.gate, body.reason.strip(), principal.name, principal.subject),
    ).fetchone()
    if row is None:
        return _view(_open_one(conn, body)), False
    events.emit(
        conn,
        "override.requested",
        body.plan_id,
        {"request_id": str(row["id"]), "action": body.action, "by": principal.name, "reason": row["reason"]},
    )
    audit.record(
        conn,
        actor=principal,
        action="override.requested",
        plan_id=body.plan_id,
        step_id=body.step_id,
        pack_ids=plan["pack_ids"],
        details={"request_id": str(row["id"]), "action": body.action, "gate": body.gate, "reason": row["reason"]},
    )
    return _view(row), True


def _open_one(conn: Any, body: AskBody) -> dict[str, Any]:
    row: dict[str, Any] | None = conn.execute(
        f"SELECT {COLUMNS} FROM public.override_requests WHERE plan_id = %s AND action = %s "  # noqa: S608
        "AND step_id IS NOT DISTINCT FROM %s AND gate IS NOT DISTINCT FROM %s AND status = 'open'",
        (body.plan_id, body.action, body.step_id, body.gate),
    ).fetchone()
    if row is None:  # decided between our insert and this read
        raise Problem(409, "an identical request was just decided; ask again", type="conflict")
    return row


def decide(conn: Any, request_id: UUID, body: DecisionBody, principal: Any) -> OverrideRequestView:
    """Grant (apply the override) or decline, under the request's row lock."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM public.override_requests WHERE id = %s FOR UPDATE",  # noqa: S608
        (request_id,),
    ).fetchone()
    if row is None:
        raise not_found("override request", request_id)
    if row["status"] != "open":
        raise Problem(
            409,
            f"already {row['status']} by {row['decided_by']}",
            type="override-request-decided",
            extra={"request": _view(row).model_dump(mode="json")},
        )
    if row["requested_by_sub"] == principal.subject:
        raise Problem(403, "you asked for this override: another admin decides it", type="self-approval")
    override_id = None
    if body.decision == "grant":
        override, _ = overrides.apply(
            conn,
            overrides.OverrideRequest(
                plan_id=row["plan_id"],
                step_id=row["step_id"],
                gate=row["gate"],
                action=row["action"],
                reason=body.reason,
            ),
            principal,
        )
        override_id = override.id
    decided = conn.execute(
        "UPDATE public.override_requests SET status = %s, decided_by = %s, decided_by_sub = %s, "  # noqa: S608
        f"decided_at = now(), decision_reason = %s, override_id = %s WHERE id = %s RETURNING {COLUMNS}",
        (
            "granted" if body.decision == "grant" else "declined",
            principal.name,
            principal.subject,
            body.reason.strip(),
            override_id,
            request_id,
        ),
    ).fetchone()
    events.emit(
        conn,
        "override.request_decided",
        row["plan_id"],
        {"request_id": str(request_id), "status": decided["status"], "by": principal.name, "reason": body.reason},
    )
    audit.record(
        conn,
        actor=principal,
        action=f"override.request_{decided['status']}",
        plan_id=row["plan_id"],
        step_id=row["step_id"],
        details={"request_id": str(request_id), "reason": body.reason, "override_id": override_id},
    )
    return _view(decided)


def listing(conn: Any, status: str | None, plan_id: UUID | None, limit: int) -> RequestList:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM public.override_requests "  # noqa: S608
        "WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(plan)s::uuid IS NULL OR plan_id = %(plan)s) "
        "ORDER BY requested_at DESC, id LIMIT %(limit)s",
        {"status": status, "plan": plan_id, "limit": limit},
    ).fetchall()
    return RequestList(requests=[_view(r) for r in rows])


def _view(row: dict[str, Any]) -> OverrideRequestView:
    return OverrideRequestView.model_validate({k: v for k, v in row.items() if k != "requested_by_sub"})
