"""What an approval's end does: granted (the step may run, or the plan is
cleared), refused (the step denied, the plan blocked, the reason kept) or
cancelled (withdrawn with the reason, as when a rollback starts).
"""

from __future__ import annotations

from typing import Any

from lib.approvals.store import APPROVAL_COLUMNS, append_history
from lib.plans import status as plan_status
from lib.trail import audit, events, notify


def cancel(conn: Any, approval: dict[str, Any], reason: str, actor: str = "system") -> None:
    conn.execute(
        "UPDATE public.approvals SET status = 'cancelled', decided_at = clock_timestamp(), decision_reason = %s "
        "WHERE id = %s AND status = 'pending'",
        (reason, approval["id"]),
    )
    append_history(conn, approval["id"], "cancelled", actor, "system", reason, approval["digest"])
    events.emit(conn, "approval.cancelled", approval["plan_id"], {"approval_id": str(approval["id"]), "reason": reason})
    notify.approval_outcome(conn, approval, "cancelled", None, reason)
    audit.record(
        conn,
        actor=actor,
        action="approval.cancelled",
        plan_id=approval["plan_id"],
        step_id=approval["step_id"],
        details={"approval_id": str(approval["id"]), "reason": reason},
    )


def cancel_all(conn: Any, plan_id: Any, reason: str, actor: str, step_id: Any = None) -> None:
    """Cancel the plan's pending requests (only the step's, given one)."""
    for approval in conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE plan_id = %s AND status = 'pending' "  # noqa: S608
        "AND (%s::uuid IS NULL OR step_id = %s) FOR UPDATE",
        (plan_id, step_id, step_id),
    ).fetchall():
        cancel(conn, approval, reason, actor)


def stop_for_rollback(conn: Any, plan_id: Any, reason: str, actor: str) -> None:
    """The plan starts rolling back: blocked with the rolling-back reason (no
    step may start; the cron tick resumes an undo that stalls), and its
    pending approvals cancelled, so no decision can move the plan while its
    steps are undone. Whoever orders the rollback, an admin or the executor."""
    cancel_all(conn, plan_id, f"plan rolled back by {actor}", actor)
    plan_status.change(conn, plan_id, "blocked", plan_status.ROLLING_BACK + reason, None)


def refuse(conn: Any, approval: dict[str, Any], status: str, reason: str, actor: str) -> None:
    """A denial or an expiry: the step is denied (a refused undo leaves its
    step as it is) and the plan blocked, the reason kept; the plan's other
    pending requests are withdrawn at once, so nobody approves what can no
    longer run. A denial stands until an admin overrides it."""
    what = {"step": "step", "plan": "plan", "rollback": "rollback"}[approval["kind"]]
    if approval["kind"] == "step":
        conn.execute(
            "UPDATE public.plan_steps SET status = 'denied', error = %s, lease_until = NULL, updated_at = now() "
            "WHERE id = %s AND status IN ('pending', 'awaiting_approval', 'approved')",
            (f"approval {status}: {reason}", approval["step_id"]),
        )
    blocked = f"{what} approval {status} by {actor}: {reason}"
    withdraw_others(conn, approval, f"withdrawn: the plan was blocked when a {blocked}", actor)
    # a refused undo stops the rollback: the plan is no longer "rolling back"
    # (the tick would resume it), it waits for an admin
    plan_status.change(
        conn,
        approval["plan_id"],
        "blocked",
        blocked,
        "plan.blocked",
        {"reason": reason, "approval_id": str(approval["id"]), "approval_status": status},
        only_from=plan_status.OPEN,
    )


def withdraw_others(conn: Any, approval: dict[str, Any], reason: str, actor: str) -> None:
    """Cancel the plan's other pending requests. Their steps wait again, one
    approval round on, so if an admin's override lets the plan carry on,
    they are asked anew rather than found cancelled."""
    others = conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE plan_id = %s AND status = 'pending' "  # noqa: S608
        "AND id <> %s FOR UPDATE",
        (approval["plan_id"], approval["id"]),
    ).fetchall()
    for other in others:
        cancel(conn, other, reason, actor)
        if other["kind"] == "step":
            conn.execute(
                "UPDATE public.plan_steps SET status = 'pending', approval_round = approval_round + 1, "
                "updated_at = now() WHERE id = %s AND status IN ('awaiting_approval', 'approved')",
                (other["step_id"],),
            )


def finish(conn: Any, row: dict[str, Any], status: str, reason: str | None, actor: str) -> None:
    conn.execute(
        "UPDATE public.approvals SET status = %s, decided_at = clock_timestamp(), decision_reason = %s WHERE id = %s",
        (status, reason or (f"approved by {actor}" if status == "approved" else None), row["id"]),
    )
    events.emit(
        conn,
        "approval.decided",
        row["plan_id"],
        {
            "approval_id": str(row["id"]),
            "decision": "approve" if status == "approved" else "deny",
            "status": status,
            "by": actor,
            "reason": reason,
        },
    )
    notify.approval_outcome(conn, row, status, actor, reason)


def grant(conn: Any, row: dict[str, Any], plan: dict[str, Any], actor: str) -> None:
    """Approved: the step may run; a plan approval clears the plan to run; an
    approved undo runs when the rollback resumes."""
    if row["kind"] == "rollback":
        return
    if row["step_id"] is not None:
        conn.execute(
            "UPDATE public.plan_steps SET status = 'approved', updated_at = now() "
            "WHERE id = %s AND status = 'awaiting_approval'",
            (row["step_id"],),
        )
        return
    plan_status.change(
        conn,
        row["plan_id"],
        "approved",
        f"approved by {actor}",
        "plan.approved",
        {"by": actor, "approval_id": str(row["id"])},
        only_from=("paused", "ready", "executing"),
    )
