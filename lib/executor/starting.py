"""The execute request's checks and first transition, in its transaction: a
blocked plan runs only under an allow override covering every blocking
gate; a plan whose verdict is warn needs a plan approval first.
"""

from __future__ import annotations

from typing import Any

from lib.approvals import asking, policy
from lib.data import db
from lib.plans import status as plan_status
from lib.plans.status import TERMINAL as TERMINAL_PLAN
from lib.trail import audit


def _lock_plan() -> str:
    """The plan locked (waiting at most the lock timeout), with whether an
    admin ordered it rolled back: one statement."""
    return (
        "SELECT p.id, p.version, p.title, p.status, p.status_reason, p.verdict, p.options, p.input_fingerprint, "  # noqa: S608
        "p.policy_version, p.created_by, p.created_by_sub, p.executed_by, p.executed_by_sub, p.pack_ids, "
        "EXISTS (SELECT 1 FROM public.overrides o WHERE o.plan_id = p.id AND o.action = 'rollback') "
        "AS rollback_ordered "
        f"FROM public.plans p WHERE p.id = %s AND {db.bounded()} FOR UPDATE OF p"
    )


def start(conn: Any, plan_id: Any, principal: Any) -> dict[str, Any]:
    """The execute request's checks and first transition, in its transaction.

    A blocked plan runs only under an active allow override that covers every
    blocking gate; a plan whose verdict is warn needs a plan approval first."""
    from lib.plans import overrides
    from lib.web.problems import Problem, not_found

    plan = conn.execute(_lock_plan(), (plan_id,)).fetchone()  # one read: the plan, locked, and what stops it
    if plan is None:
        raise not_found("plan", plan_id)
    if plan["status"] in TERMINAL_PLAN:
        raise Problem(409, f"plan is {plan['status']}; nothing to execute", type="plan-finished")
    if plan["rollback_ordered"]:
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
    plan["first_time"] = first_time
    return plan


def record(conn: Any, plan: dict[str, Any], principal: Any) -> None:
    """The audit entry of a plan's first execute (with its snapshot): last, so
    the answer's reads queued before it travel with its snapshot read."""
    if plan["first_time"]:
        audit.record(
            conn,
            actor=principal,
            action="plan.execution_requested",
            plan_id=plan["id"],
            pack_ids=plan["pack_ids"],
            details={"status": plan["status"]},
            snapshot=True,
        )
