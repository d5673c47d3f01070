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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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

    @field_validator("reason")
    @classmethod
    def said_something(cls, value: str) -> str:
        return overrides.said(value)


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


# Asking in one statement: the plan and step checked, the request inserted
# unless an identical one is open, and that open one read beside it (the
# statement's snapshot does not see its own insert, so `standing` is only
# ever an earlier request). With the event and audit entry queued after it,
# a request costs two round trips.
ASK = f"""
WITH target AS (
  SELECT p.id, p.pack_ids,
         (SELECT s.backlog_item_id FROM public.plan_steps s WHERE s.id = %(step)s AND s.plan_id = p.id) AS item,
         %(step)s::uuid IS NULL
           OR EXISTS (SELECT 1 FROM public.plan_steps s WHERE s.id = %(step)s AND s.plan_id = p.id) AS step_ok
    FROM public.plans p WHERE p.id = %(plan)s),
asked AS (
  INSERT INTO public.override_requests (plan_id, action, step_id, gate, reason, requested_by, requested_by_sub)
  SELECT id, %(action)s, %(step)s, %(gate)s, %(reason)s, %(by)s, %(sub)s FROM target WHERE step_ok
  ON CONFLICT DO NOTHING
  RETURNING {COLUMNS})
SELECT (SELECT row_to_json(asked) FROM asked) AS created,
       (SELECT row_to_json(o) FROM (SELECT {COLUMNS} FROM public.override_requests
                                     WHERE plan_id = %(plan)s AND action = %(action)s AND status = 'open'
                                       AND step_id IS NOT DISTINCT FROM %(step)s
                                       AND gate IS NOT DISTINCT FROM %(gate)s) o) AS standing,
       (SELECT step_ok FROM target) AS step_ok, (SELECT pack_ids FROM target) AS pack_ids,
       (SELECT item FROM target) AS item
"""  # noqa: S608 - built from constants


def ask(conn: Any, body: AskBody, principal: Any) -> tuple[OverrideRequestView, bool]:
    """Record the request; (the request, whether it is new). An open request
    for the same thing answers as it stands."""
    params = {
        "plan": body.plan_id,
        "step": body.step_id,
        "action": body.action,
        "gate": body.gate,
        "reason": body.reason,
        "by": principal.name,
        "sub": principal.subject,
    }
    found = conn.execute(ASK, params).fetchone()
    if found["pack_ids"] is None:
        raise field_error(422, ["body", "plan_id"], f"no plan {body.plan_id}")
    if not found["step_ok"]:
        raise field_error(422, ["body", "step_id"], "no such step in this plan")
    row = found["created"]
    if row is None:
        if found["standing"] is None:  # an identical request, asked and decided while we inserted
            raise Problem(409, "an identical request was just decided; ask again", type="conflict")
        return _view(found["standing"]), False
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
        backlog_item_ids=[found["item"]] if found["item"] else (),
        pack_ids=found["pack_ids"],
        details={"request_id": str(row["id"]), "action": body.action, "gate": body.gate, "reason": row["reason"]},
    )
    return _view(row), True


# The request locked, with what its audit entry links to and the
# transaction's clock (the now() its decision is stamped with).
LOCK = f"""
SELECT {", ".join(f"r.{c.strip()}" for c in COLUMNS.split(","))}, p.pack_ids,
       (SELECT s.backlog_item_id FROM public.plan_steps s WHERE s.id = r.step_id) AS item, now() AS now
  FROM public.override_requests r JOIN public.plans p ON p.id = r.plan_id
 WHERE r.id = %s FOR UPDATE OF r
"""  # noqa: S608 - built from constants


def decide(conn: Any, request_id: UUID, body: DecisionBody, principal: Any) -> OverrideRequestView:
    """Grant (apply the override) or decline, under the request's row lock.
    A decline is two round trips: the lock, then its update, event, audit
    entry and commit together (nothing of them is read back)."""
    row = conn.execute(LOCK, (request_id,)).fetchone()
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
    decided = {
        **row,
        "status": "granted" if body.decision == "grant" else "declined",
        "decided_by": principal.name,
        "decided_at": row["now"],
        "decision_reason": body.reason,
        "override_id": override_id,
    }
    conn.execute(
        "UPDATE public.override_requests SET status = %s, decided_by = %s, decided_by_sub = %s, "
        "decided_at = now(), decision_reason = %s, override_id = %s WHERE id = %s",
        (decided["status"], principal.name, principal.subject, decided["decision_reason"], override_id, request_id),
    )
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
        backlog_item_ids=[row["item"]] if row["item"] else (),
        pack_ids=row["pack_ids"],
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
    """The request as the API shows it (who asked is shown by name, not by id)."""
    return OverrideRequestView.model_validate({k: row[k] for k in OverrideRequestView.model_fields})
