"""Plan statuses the executor, overrides and approvals agree on (the
contract's list is in the plans table's CHECK constraint), and the one way
to change a plan's status (but for a verdict's, which evaluations.record
sets with the verdict in the same UPDATE)."""

from __future__ import annotations

from typing import Any

# nothing will happen to the plan any more
TERMINAL = ("completed", "failed", "cancelled", "rolled_back")
# the rest: one such plan per input fingerprint (plans_one_open_per_fingerprint)
OPEN = ("draft", "ready", "blocked", "approved", "executing", "paused")
# the executor may start steps of it
RUNNABLE = ("executing", "approved")
# a blocked plan's reason while its succeeded steps are undone (an admin's
# rollback, or rollback_on_failure): the cron tick resumes one that stalls
ROLLING_BACK = "rolling back: "


def rolling_back(plan: dict[str, Any]) -> bool:
    """Its succeeded steps are being undone, or have been: a step that
    succeeds now must be undone too."""
    if plan["status"] == "rolled_back":
        return True
    return plan["status"] == "blocked" and (plan.get("status_reason") or "").startswith(ROLLING_BACK)


def change(
    conn: Any,
    plan_id: Any,
    status: str,
    reason: str | None,
    event: str | None,
    data: dict[str, Any] | None = None,
    *,
    only_from: tuple[str, ...] | None = None,
) -> bool:
    """Set the plan's status and reason, and tell clients (`event`, with the
    status and reason in its data, which `data` may add to) in the same
    transaction. With `only_from`, only a plan in one of those statuses
    changes; returns whether it did (no event when it did not)."""
    update = "UPDATE public.plans SET status = %s, status_reason = %s, updated_at = now() WHERE id = %s"
    if only_from is None:
        # the caller holds the plan: the change applies, and nothing needs
        # reading back (a pipelined transaction sends it with what follows)
        conn.execute(update, (status, reason, plan_id))
    elif (
        conn.execute(
            update + " AND status = ANY(%s) RETURNING 1", (status, reason, plan_id, list(only_from))
        ).fetchone()
        is None
    ):
        return False
    if event:
        from lib.trail import events

        events.emit(conn, event, plan_id, {"status": status, "reason": reason, **(data or {})})
    return True
