"""Deciding: one person's approve or deny, applied under the approval's row lock
so concurrent deciders line up and exactly one decision wins. An expired
request answers 410 (recorded as a denial); a decided one 409 with the
standing decision; a stale one (its digest moved) is cancelled and asked anew.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from lib.approvals.expiry import expire
from lib.approvals.outcomes import cancel, finish, grant, refuse
from lib.approvals.policy import DecisionRequest, authorize, target, vote_source, voter_of
from lib.approvals.store import LOCK_WITH_TARGET
from lib.approvals.views import ApprovalView, current_view, view_later
from lib.trail import audit, events, notify
from lib.web.problems import Problem, not_found

# One vote per person and request: the unique indexes decide (a person's
# second vote, a webhook delivery used before), and the vote counts only if
# the database's clock, read now, after the row lock was granted, is still
# before the expiry. The count beside it sees the votes before this one.
VOTE = """
WITH clock AS (SELECT clock_timestamp() AS now),
vote AS (
  INSERT INTO public.approval_events (approval_id, event, actor, actor_sub, person_id, actor_role, source,
                                      client_claim, reason, digest, webhook_id, occurred_at)
  SELECT %(id)s, %(decision)s, %(actor)s, %(person)s, %(person)s, %(role)s, %(source)s,
         %(claim)s, %(reason)s, %(digest)s, %(webhook)s, clock.now
    FROM clock WHERE clock.now < %(expires)s
  ON CONFLICT DO NOTHING
  RETURNING id)
SELECT (SELECT id FROM vote) AS id,
       (SELECT now FROM clock) AS now,
       (SELECT now FROM clock) >= %(expires)s AS overdue,
       (SELECT count(DISTINCT person_id) FROM public.approval_events
         WHERE approval_id = %(id)s AND event = 'approve') AS earlier_approvals,
       EXISTS (SELECT 1 FROM public.approval_events
                WHERE approval_id = %(id)s AND person_id = %(person)s AND event IN ('approve', 'deny')) AS voted_before,
       (%(webhook)s::text IS NOT NULL
        AND EXISTS (SELECT 1 FROM public.approval_events WHERE webhook_id = %(webhook)s)) AS delivery_used
"""


def decide(
    conn: Any, approval_id: UUID, principal: Any, body: DecisionRequest, client: str | None = None
) -> tuple[int, Any, bool]:
    """Apply one decision under the row lock. Returns (status, body, commit):
    200 with the approval; 409 with the standing decision; 410 for an
    expired request (recorded as a denial, so the reply still commits).

    Statements are counted here: a decision is the busiest write of the
    approvals flow, and each statement costs a round trip and a plan."""
    row = conn.execute(LOCK_WITH_TARGET, (approval_id,)).fetchone()
    if row is None:
        raise not_found("approval", approval_id)
    voter = voter_of(conn, principal, body, approval_id)
    source = vote_source(principal)
    if row["status"] != "pending":
        view = current_view(conn, row, datetime.now(UTC))
        return 409, _problem(409, f"already decided: {row['status']}", "approval-decided", view), False
    plan, step = row["target_plan"], row["target_step"]
    if target(plan, step, row["kind"])[1] != row["digest"]:
        cancel(conn, row, "what it approves changed (plan version, inputs or policy) since it was asked", voter.name)
        detail = "what this approval was asked for has changed; it was cancelled and will be asked anew"
        return 409, _problem(409, detail, "approval-stale", current_view(conn, row, datetime.now(UTC))), True
    authorize(principal, row, plan, voter, body)
    vote = conn.execute(
        VOTE,
        {
            "id": row["id"],
            "decision": body.decision,
            "actor": voter.name,
            "person": voter.person_id,
            "role": principal.role,
            "source": source,
            "claim": (client or "")[:40] or None if source != "webhook" else None,
            "reason": body.reason,
            "digest": row["digest"],
            "webhook": principal.claims.get("webhook_id"),
            "expires": row["expires_at"],
        },
    ).fetchone()
    now = vote["now"]
    if vote["overdue"]:
        expire(conn, row, noticed_by=voter.name, source=source, details={"late_decision": body.decision})
        view = current_view(conn, row, now)
        return 410, _problem(410, "this approval expired; it counts as a denial", "approval-expired", view), True
    if vote["id"] is None:
        if vote["voted_before"]:
            raise Problem(409, f"{voter.name} has already decided on this approval", type="approval-already-voted")
        if vote["delivery_used"]:
            raise Problem(
                409, "this webhook delivery (webhook-id) has already decided an approval", type="delivery-reused"
            )
        raise Problem(409, "a concurrent decision got in the way; retry", type="retry", headers={"Retry-After": "1"})
    if body.decision == "deny":
        finish(conn, row, "denied", body.reason or "", voter.name)
        refuse(conn, row, "denied", body.reason or "", voter.name)
    else:
        votes = vote["earlier_approvals"] + 1
        if votes >= row["required_approvals"]:
            finish(conn, row, "approved", body.reason, voter.name)
            grant(conn, row, plan, voter.name)
        else:
            events.emit(
                conn,
                "approval.decided",
                row["plan_id"],
                {
                    "approval_id": str(row["id"]),
                    "decision": "approve",
                    "by": voter.name,
                    "status": "pending",
                    "approvals": votes,
                    "required": row["required_approvals"],
                },
            )
            notify.approval_outcome(conn, row, "pending", voter.name, None, f"{votes} of {row['required_approvals']}")
    # The answer's view is read after the writes above; queued, it travels
    # with the audit entry's snapshot read: no round trip of its own.
    view_now = view_later(conn, row["id"])
    # Last, so the plan's audit chain (one row lock per plan, held to the
    # commit) is held for as short a time as possible: decisions on steps of
    # one plan queue there.
    audit.record(
        conn,
        actor=principal if source != "webhook" else voter.name,
        action=f"approval.{body.decision}",
        plan_id=row["plan_id"],
        step_id=row["step_id"],
        backlog_item_ids=[step["backlog_item_id"]] if step else (),
        pack_ids=[step["pack_id"]] if step else (),
        details={
            "approval_id": str(row["id"]),
            "reason": body.reason,
            "source": source,
            "client_claim": client if source != "webhook" else None,
            "person_id": voter.person_id,
            "digest": row["digest"],
        },
        snapshot=True,
    )
    return 200, view_now(now), True


def _problem(status: int, detail: str, kind: str, view: ApprovalView) -> dict[str, Any]:
    from lib.web.problems import PROBLEM_BASE

    return {
        "type": PROBLEM_BASE + kind,
        "title": {409: "Conflict", 410: "Gone"}[status],
        "status": status,
        "detail": detail,
        "approval": json.loads(view.model_dump_json()),
    }
