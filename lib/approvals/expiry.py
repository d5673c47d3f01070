"""Nobody answered in time: an overdue request expires, which counts as a
denial. Found by the cron tick, the executor or a late decision.
"""

from __future__ import annotations

from typing import Any

from lib.approvals.outcomes import refuse
from lib.approvals.store import APPROVAL_COLUMNS, append_history
from lib.trail import audit, events, notify


def expire(
    conn: Any, approval: dict[str, Any], *, noticed_by: Any, source: str, details: dict[str, Any] | None = None
) -> None:
    """Nobody answered in time: a denial, with the step denied and the plan
    blocked, in the history and the audit trail. `noticed_by` and `source`
    say who found it overdue: the cron tick, the executor, a late decision."""
    reason = f"nobody decided before {approval['expires_at'].isoformat()}"
    updated = conn.execute(
        "UPDATE public.approvals SET status = 'expired', decided_at = clock_timestamp(), decision_reason = %s "
        "WHERE id = %s AND status = 'pending' RETURNING id",
        (reason, approval["id"]),
    ).fetchone()
    if updated is None:
        return
    append_history(conn, approval["id"], "expired", "system", source, reason, approval["digest"])
    events.emit(conn, "approval.expired", approval["plan_id"], {"approval_id": str(approval["id"]), "reason": reason})
    notify.approval_outcome(conn, approval, "expired", None, reason)
    refuse(conn, approval, "expired", reason, "system")
    audit.record(
        conn,
        actor=noticed_by,
        action="approval.expired",
        plan_id=approval["plan_id"],
        step_id=approval["step_id"],
        details={"approval_id": str(approval["id"]), **(details or {})},
        snapshot=True,
    )


def expire_overdue(conn: Any, limit: int = 100) -> int:
    rows = conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE status = 'pending' AND expires_at <= now() "  # noqa: S608
        "ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    for row in rows:
        expire(conn, row, noticed_by="cron", source="cron")
    return len(rows)
