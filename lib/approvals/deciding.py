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
from lib.approvals.policy import DecisionRequest, acting_person, authorize, target, vote_source
from lib.approvals.store import LOCK_WITH_TARGET
from lib.approvals.views import ApprovalView, current_view
from lib.trail import audit, events
from lib.web.problems import Problem, not_found


def decide(
    conn: Any, approval_id: UUID, principal: Any, body: DecisionRequest, client: str | None = None
) -> tuple[int, Any, bool]:
    """Apply one decision under the row lock. Returns (status, body, commit):
    200 with the approval; 409 with the standing decision; 410 for an
    expired request (recorded as a denial, so the reply still commits).

    Statements are counted here: a decision is the busiest write of the
    approvals flow, and each statement costs a round trip and a plan."""
    now = datetime.now(UTC)
    row = conn.execute(LOCK_WITH_TARGET, (approval_id,)).fetchone()
    if row is None:
        raise not_found("approval", approval_id)
    actor, actor_sub = acting_person(principal, body)
    if row["status"] == "pending" and row["expires_at"] <= now:
        expire(
            conn, row, noticed_by=actor, source=vote_source(principal, client), details={"late_decision": body.decision}
        )
        return (
            410,
            _problem(
                410, "this approval expired; it counts as a denial", "approval-expired", current_view(conn, row, now)
            ),
            True,
        )
    if row["status"] != "pending":
        return (
            409,
            _problem(409, f"already decided: {row['status']}", "approval-decided", current_view(conn, row, now)),
            False,
        )
    plan, step = row["target_plan"], row["target_step"]
    if target(plan, step)[1] != row["digest"]:
        cancel(conn, row, "what it approves changed (plan version, inputs or policy) since it was asked", actor)
        return (
            409,
            _problem(
                409,
                "what this approval was asked for has changed; it was cancelled and will be asked anew",
                "approval-stale",
                current_view(conn, row, now),
            ),
            True,
        )
    authorize(principal, row, actor, actor_sub, body)
    source = vote_source(principal, client)
    vote = conn.execute(
        # one vote per person and request: the partial unique index decides.
        # The count beside it sees the votes before this one.
        "WITH vote AS (INSERT INTO public.approval_events (approval_id, event, actor, actor_sub, actor_role, source, "
        "reason, digest, webhook_id) VALUES (%(id)s, %(decision)s, %(actor)s, %(sub)s, %(role)s, %(source)s, "
        "%(reason)s, %(digest)s, %(webhook)s) "
        "ON CONFLICT (approval_id, actor) WHERE event IN ('approve', 'deny') DO NOTHING RETURNING id) "
        "SELECT (SELECT id FROM vote) AS id, (SELECT count(DISTINCT actor) FROM public.approval_events "
        "WHERE approval_id = %(id)s AND event = 'approve') AS earlier_approvals",
        {
            "id": row["id"],
            "decision": body.decision,
            "actor": actor,
            "sub": actor_sub,
            "role": principal.role,
            "source": source,
            "reason": body.reason,
            "digest": row["digest"],
            "webhook": principal.claims.get("webhook_id"),
        },
    ).fetchone()
    if vote["id"] is None:
        raise Problem(409, f"{actor} has already decided on this approval", type="approval-already-voted")
    if body.decision == "deny":
        finish(conn, row, "denied", body.reason or "", actor)
        refuse(conn, row, "denied", body.reason or "", actor)
    else:
        votes = vote["earlier_approvals"] + 1
        if votes >= row["required_approvals"]:
            finish(conn, row, "approved", body.reason, actor)
            grant(conn, row, plan, actor)
        else:
            events.emit(
                conn,
                "approval.decided",
                row["plan_id"],
                {
                    "approval_id": str(row["id"]),
                    "decision": "approve",
                    "by": actor,
                    "status": "pending",
                    "approvals": votes,
                    "required": row["required_approvals"],
                },
            )
    view = current_view(conn, row, now)
    # Last, so the plan's audit chain (one row lock per plan, held to the
    # commit) is held for as short a time as possible: decisions on steps of
    # one plan queue there.
    audit.record(
        conn,
        actor=principal if principal.source != "webhook" else actor,
        action=f"approval.{body.decision}",
        plan_id=row["plan_id"],
        step_id=row["step_id"],
        backlog_item_ids=[step["backlog_item_id"]] if step else (),
        pack_ids=[step["pack_id"]] if step else (),
        details={"approval_id": str(row["id"]), "reason": body.reason, "source": source, "digest": row["digest"]},
        snapshot=True,
    )
    return 200, view, True


def _problem(status: int, detail: str, kind: str, view: ApprovalView) -> dict[str, Any]:
    from lib.web.problems import PROBLEM_BASE

    return {
        "type": PROBLEM_BASE + kind,
        "title": {409: "Conflict", 410: "Gone"}[status],
        "status": status,
        "detail": detail,
        "approval": json.loads(view.model_dump_json()),
    }
