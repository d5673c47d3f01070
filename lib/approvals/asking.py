"""Asking for approval, after HumanLayer's `require_approval`: a sensitive step
(its tool has an approval_policy) or a plan whose verdict is warn waits for
people. A request is made once per thing-to-approve and digest; the
executor's check finds where a step stands, asking anew when what it
approves changed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from lib.approvals.expiry import expire
from lib.approvals.outcomes import cancel
from lib.approvals.policy import requesters, summary_of, target
from lib.approvals.store import APPROVAL_COLUMNS, append_history, by_id, by_token_and_digest, step_findings
from lib.data import storage, uploads
from lib.planner.models import ApprovalPolicy, Tool
from lib.trail import audit, events, notify


class ApprovalPending(Exception):
    """The step may not run yet: a person has been asked."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"waiting for approval {approval_id}")
        self.approval_id = approval_id


class ApprovalDenied(Exception):
    """A person said no (or nobody answered in time); the reason travels with it."""

    def __init__(self, approval_id: str, status: str, reason: str) -> None:
        super().__init__(f"approval {approval_id} {status}: {reason}")
        self.approval_id, self.status, self.reason = approval_id, status, reason


# Who asked for the work may not approve it: the plan's requesters, and the
# authors of the items it covers (the step's item, or for a plan approval,
# every item of the plan), read where the request is written.
INSERT_REQUEST = """
INSERT INTO public.approvals (kind, plan_id, step_id, tool_id, plan_version, policy_version, digest,
                              idempotency_token, required_approvals, approver_role, requested_by,
                              requested_by_subs, requested_at, expires_at, inputs_summary, findings)
SELECT %(kind)s, %(plan)s, %(step)s, %(tool)s, %(version)s, %(policy_version)s, %(digest)s,
       %(token)s, %(required)s, %(role)s, %(requested_by)s,
       ARRAY(SELECT DISTINCT who FROM (
               SELECT unnest(%(requesters)s::text[]) AS who
               UNION ALL
               SELECT unnest(ARRAY[b.created_by_sub, b.updated_by_sub]) FROM public.backlog_items b
                WHERE b.id = ANY (CASE WHEN %(step)s::uuid IS NULL
                                       THEN (SELECT backlog_item_ids FROM public.plans WHERE id = %(plan)s)
                                       ELSE ARRAY[%(item)s::uuid] END)
             ) who WHERE who IS NOT NULL ORDER BY who),
       %(now)s, %(expires)s, %(summary)s, %(findings)s
ON CONFLICT (idempotency_token, digest) DO NOTHING RETURNING id
"""


def request(
    conn: Any,
    plan: dict[str, Any],
    step: dict[str, Any] | None,
    tool: Tool | None,
    policy: ApprovalPolicy,
    now: datetime | None = None,
    kind: str = "step",
) -> dict[str, Any]:
    """Ask (once per token and digest) and return the request row. `kind`:
    "step" (or a plan approval, without a step), or "rollback" for a step's
    undo whose tool needs approval."""
    now = now or datetime.now(UTC)
    kind = kind if step is not None else "plan"
    token, current = target(plan, step, kind)
    findings = step_findings(conn, plan["id"], step["id"] if step else None)
    expires = now + timedelta(seconds=policy.timeout_seconds)
    row = conn.execute(
        INSERT_REQUEST,
        {
            "kind": kind,
            "plan": plan["id"],
            "step": step["id"] if step else None,
            "item": step["backlog_item_id"] if step else None,
            "tool": tool.id if tool else None,
            "version": plan["version"],
            "policy_version": plan["policy_version"],
            "digest": current,
            "token": token,
            "required": policy.required_approvals,
            "role": policy.approver_role,
            "requested_by": plan.get("executed_by") or plan["created_by"],
            "requesters": requesters(plan),
            "now": now,
            "expires": expires,
            "summary": json.dumps(summary_of(step, plan, kind)),
            "findings": json.dumps(findings, default=str),
        },
    ).fetchone()
    if row is None:
        return by_token_and_digest(conn, token, current)
    approval_id = row["id"]
    artifact_key, artifact_digest = uploads.stage(  # uploaded after the commit, never inside it
        conn,
        f"approvals/{approval_id}",
        storage.canonical_json(
            {
                "approval_id": approval_id,
                "plan": {"id": plan["id"], "title": plan["title"], "version": plan["version"]},
                "step": step,
                "tool": tool.model_dump() if tool else None,
                "digest": current,
                "findings": findings,
            }
        ),
    )
    created: dict[str, Any] = conn.execute(
        f"UPDATE public.approvals a SET artifacts = %s WHERE id = %s RETURNING {APPROVAL_COLUMNS}",  # noqa: S608
        (json.dumps([{"name": "request.json", "key": artifact_key, "sha256": artifact_digest}]), approval_id),
    ).fetchone()
    append_history(
        conn, approval_id, "requested", plan.get("executed_by") or plan["created_by"], "system", None, current
    )
    events.emit(
        conn,
        "approval.requested",
        plan["id"],
        {
            "approval_id": str(approval_id),
            "kind": kind,
            "step_id": str(step["id"]) if step else None,
            "item_key": step["item_key"] if step else None,
            "tool_id": tool.id if tool else None,
            "required_approvals": policy.required_approvals,
            "expires_at": expires.isoformat(),
        },
    )
    notify.approval_requested(conn, created, plan, step)
    audit.record(
        conn,
        actor="executor",
        action="approval.requested",
        plan_id=plan["id"],
        step_id=step["id"] if step else None,
        backlog_item_ids=[step["backlog_item_id"]] if step else (),
        pack_ids=[step["pack_id"]] if step else plan.get("pack_ids") or (),
        details={"approval_id": str(approval_id), "digest": current, "tool_id": tool.id if tool else None},
    )
    return created


State = Literal["approved", "pending", "denied"]


def check(
    conn: Any,
    plan: dict[str, Any],
    step: dict[str, Any] | None,
    tool: Tool | None,
    policy: ApprovalPolicy,
    now: datetime | None = None,
    wait: bool = True,
    kind: str = "step",
) -> tuple[State, dict[str, Any]]:
    """Where this step (or plan) stands, asking anew when nothing valid exists.

    A pending request for another digest is cancelled (what it was asked for
    changed) and a new one made; an overdue request expires (a denial).

    With wait=False (the executor's claim, which holds step rows), a request
    someone is deciding right now is reported pending instead of waited for:
    waiting there while the decision waits for the step row would deadlock.
    The deciding request resumes the plan itself. `kind` "rollback" asks
    about a step's undo instead of the step."""
    now = now or datetime.now(UTC)
    token, current = target(plan, step, kind if step is not None else "plan")
    newest = conn.execute(
        "SELECT id FROM public.approvals WHERE idempotency_token = %s "
        "ORDER BY (digest = %s) DESC, requested_at DESC LIMIT 1",
        (token, current),
    ).fetchone()
    latest = None
    if newest is not None:
        latest = by_id(conn, newest["id"], "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED")
        if latest is None:  # being decided this moment
            busy = by_id(conn, newest["id"])
            assert busy is not None
            return "pending", busy
    if latest is not None and latest["digest"] != current:
        if latest["status"] == "pending":
            cancel(conn, latest, "what it approves changed (plan version, inputs or policy) since it was asked")
        latest = None
    if latest is None:
        latest = request(conn, plan, step, tool, policy, now, kind)
    if latest["status"] == "pending" and latest["expires_at"] <= now:
        expire(conn, latest, noticed_by="executor", source="system")
        latest = by_id(conn, latest["id"])
        assert latest is not None
    status = latest["status"]
    if status == "approved":
        return "approved", latest
    if status == "pending":
        return "pending", latest
    return "denied", latest


def plan_approval_pending(conn: Any, plan_id: Any) -> bool:
    """Whether the plan itself still waits for its approval (verdict warn):
    until that is granted, no step of it may start."""
    row = conn.execute(
        "SELECT 1 FROM public.approvals WHERE plan_id = %s AND kind = 'plan' AND status = 'pending' LIMIT 1",
        (plan_id,),
    ).fetchone()
    return row is not None


def require_approval(
    tool_id: str, policy: ApprovalPolicy | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a tool function so it only runs with a valid, granted approval.

        @require_approval("deploy.production")
        def deploy(call: ToolCall) -> ToolResult: ...

    The call carries `plan`, `step` and `tool`, and either `conn` (check in the
    caller's transaction) or `transaction` (a factory for a short one of its
    own, so the tool itself runs outside any transaction). Without a decision
    it asks, once, and raises ApprovalPending; a denial or an expiry raises
    ApprovalDenied with the reason. The check is made right before the tool
    runs, against the step's current digest.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def guarded(call: Any) -> Any:
            tool = call.tool
            if tool is None or tool.id != tool_id:
                raise ValueError(f"this function is guarded for {tool_id}, not {getattr(tool, 'id', None)}")
            effective = policy or tool.approval_policy or ApprovalPolicy()
            if call.conn is not None:
                state, approval = check(call.conn, call.plan, call.step, tool, effective)
            else:
                with call.transaction() as conn:
                    state, approval = check(conn, call.plan, call.step, tool, effective)
            if state == "approved":
                return fn(call)
            if state == "pending":
                raise ApprovalPending(str(approval["id"]))
            raise ApprovalDenied(str(approval["id"]), approval["status"], approval["decision_reason"] or "denied")

        return guarded

    return decorate
