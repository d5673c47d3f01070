"""The approvals tables as the rest of the package reads and writes them: the
columns, reads by id or by token and digest, the locking read a decision
starts with, and the append-only history (approval_events).
"""

from __future__ import annotations

from typing import Any

from lib.data import db

APPROVAL_COLUMNS = """
  a.id, a.kind, a.plan_id, a.step_id, a.tool_id, a.plan_version, a.policy_version, a.digest, a.idempotency_token,
  a.status, a.required_approvals, a.approver_role, a.requested_by, a.requested_by_subs, a.requested_at,
  a.expires_at, a.decided_at, a.decision_reason, a.inputs_summary, a.findings, a.artifacts
"""


def step_findings(conn: Any, plan_id: Any, step_id: Any) -> list[dict[str, Any]]:
    query = (
        "SELECT details->'findings' AS findings FROM public.plan_evaluations WHERE plan_id = %s AND generation = "
        "(SELECT evaluation_generation FROM public.plans WHERE id = %s) AND "
    )
    if step_id is None:  # a plan approval: why the plan warned (or was allowed past a block)
        rows = conn.execute(query + "scope = 'plan' AND gate <> 'overall'", (plan_id, plan_id)).fetchall()
        return [f for r in rows for f in (r["findings"] or []) if f.get("severity") != "info"]
    rows = conn.execute(query + "scope = 'step' AND step_id = %s", (plan_id, plan_id, step_id)).fetchall()
    return [f for r in rows for f in (r["findings"] or [])]


def by_token_and_digest(conn: Any, token: str, current: str) -> dict[str, Any]:
    return conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE idempotency_token = %s AND digest = %s",  # noqa: S608
        (token, current),
    ).fetchone()


def by_id(conn: Any, approval_id: Any, lock: str = "") -> dict[str, Any] | None:
    """The approval; `lock` is a locking clause ("FOR UPDATE", "FOR UPDATE SKIP LOCKED") or none."""
    row: dict[str, Any] | None = conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE id = %s {lock}",  # noqa: S608 - constants only
        (approval_id,),
    ).fetchone()
    return row


def append_history(
    conn: Any,
    approval_id: Any,
    event: str,
    actor: str,
    source: str,
    reason: str | None,
    current_digest: str,
) -> None:
    """A request, expiry or cancellation in the history; votes are written by
    deciding's own statement (with the person, under the one-vote index)."""
    conn.execute(
        "INSERT INTO public.approval_events (approval_id, event, actor, source, reason, digest, occurred_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, clock_timestamp())",
        (approval_id, event, actor, source, reason, current_digest),
    )


# A decision's locking read: the approval with the plan and step it approves
# (as JSON, for the digest and the audit entry), in one statement.
LOCK_WITH_TARGET = f"""
SELECT {APPROVAL_COLUMNS},
  (SELECT row_to_json(p) FROM (SELECT id, version, status, input_fingerprint, policy_version, created_by_sub,
                                      executed_by_sub FROM public.plans WHERE id = a.plan_id) p) AS target_plan,
  (SELECT row_to_json(s) FROM (SELECT id, backlog_item_id, pack_id, tool_id, inputs, idempotency_token,
                                      approval_round, rollback FROM public.plan_steps WHERE id = a.step_id) s)
    AS target_step
  FROM public.approvals a WHERE a.id = %s AND {db.bounded()} FOR UPDATE OF a
"""  # noqa: S608 - constants only
