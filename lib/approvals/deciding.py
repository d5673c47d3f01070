"""Human approvals on PostgreSQL, after HumanLayer's `require_approval`.

A sensitive step (its tool has an approval_policy) or a plan whose verdict is
warn waits for people. The request is a row in `approvals`, created once per
thing-to-approve and digest; decisions lock that row (SELECT ... FOR UPDATE)
so concurrent deciders line up and exactly one decision wins; every request,
vote, expiry and cancellation is a row in the append-only `approval_events`.

The digest binds an approval to exactly what it approves: plan id and version,
step, tool, the step's inputs and the policy version. A decision never
authorizes a step whose current digest differs: the stale request is
cancelled with the reason and a new one is asked for.

Rules: the requester (who planned or executed the plan) may not approve; a
policy may require N distinct approvers; one denial decides; an expired
request is a denial (410 to whoever answers late).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from lib.data import storage
from lib.planner.models import ApprovalPolicy, Tool
from lib.plans import status as plan_status
from lib.trail import audit, events
from lib.web.problems import Problem, field_error, not_found

PLAN_APPROVAL_POLICY = ApprovalPolicy(required_approvals=1, timeout_seconds=24 * 3600, approver_role="approver")
INPUT_PREVIEW_CHARS = 200

APPROVAL_COLUMNS = """
  a.id, a.kind, a.plan_id, a.step_id, a.tool_id, a.plan_version, a.policy_version, a.digest, a.idempotency_token,
  a.status, a.required_approvals, a.approver_role, a.requested_by, a.requested_by_subs, a.requested_at,
  a.expires_at, a.decided_at, a.decision_reason, a.inputs_summary, a.findings, a.artifacts
"""


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


# ------------------------------------------------------------- the digest ----


def digest(
    plan_id: Any, plan_version: int, step_id: Any, tool_id: str | None, inputs: Any, policy_version: str | None
) -> str:
    material = json.dumps(
        {
            "plan": str(plan_id),
            "version": plan_version,
            "step": str(step_id) if step_id else None,
            "tool": tool_id,
            "inputs": inputs,
            "policy": policy_version,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def _target(plan: dict[str, Any], step: dict[str, Any] | None) -> tuple[str, str]:
    """(idempotency token, current digest) of what is to be approved."""
    if step is None:
        return f"plan:{plan['id']}", digest(
            plan["id"], plan["version"], None, None, plan["input_fingerprint"], plan["policy_version"]
        )
    # the round moves when an admin retries a denied step, so it is asked anew
    round_ = step.get("approval_round", 0)
    return step["idempotency_token"], digest(
        plan["id"],
        plan["version"],
        step["id"],
        step["tool_id"],
        {"inputs": step["inputs"], "round": round_} if round_ else step["inputs"],
        plan["policy_version"],
    )


def _summarize(inputs: Any) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        return {"value": str(inputs)[:INPUT_PREVIEW_CHARS]}
    out = {}
    for key, value in inputs.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[key] = text if len(text) <= INPUT_PREVIEW_CHARS else text[:INPUT_PREVIEW_CHARS] + "…"
    return out


def _step_findings(conn: Any, plan_id: Any, step_id: Any) -> list[dict[str, Any]]:
    query = (
        "SELECT details->'findings' AS findings FROM public.plan_evaluations WHERE plan_id = %s AND generation = "
        "(SELECT evaluation_generation FROM public.plans WHERE id = %s) AND "
    )
    if step_id is None:  # a plan approval: why the plan warned (or was allowed past a block)
        rows = conn.execute(query + "scope = 'plan' AND gate <> 'overall'", (plan_id, plan_id)).fetchall()
        return [f for r in rows for f in (r["findings"] or []) if f.get("severity") != "info"]
    rows = conn.execute(query + "scope = 'step' AND step_id = %s", (plan_id, plan_id, step_id)).fetchall()
    return [f for r in rows for f in (r["findings"] or [])]


# -------------------------------------------------------------- requests ----


def requesters(plan: dict[str, Any]) -> list[str]:
    """Everyone who asked for this work: they may not approve it themselves."""
    names = [plan.get("created_by_sub"), plan.get("created_by"), plan.get("executed_by_sub"), plan.get("executed_by")]
    return sorted({n for n in names if n})


def request(
    conn: Any,
    plan: dict[str, Any],
    step: dict[str, Any] | None,
    tool: Tool | None,
    policy: ApprovalPolicy,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Ask (once per token and digest) and return the request row."""
    now = now or datetime.now(UTC)
    token, current = _target(plan, step)
    findings = _step_findings(conn, plan["id"], step["id"] if step else None)
    summary = _summarize(step["inputs"]) if step else {"plan": plan["title"], "verdict": plan.get("verdict")}
    row = conn.execute(
        "INSERT INTO public.approvals (kind, plan_id, step_id, tool_id, plan_version, policy_version, digest, "
        "idempotency_token, required_approvals, approver_role, requested_by, requested_by_subs, requested_at, "
        "expires_at, inputs_summary, findings) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (idempotency_token, digest) DO NOTHING RETURNING id",
        (
            "step" if step else "plan",
            plan["id"],
            step["id"] if step else None,
            tool.id if tool else None,
            plan["version"],
            plan["policy_version"],
            current,
            token,
            policy.required_approvals,
            policy.approver_role,
            plan.get("executed_by") or plan["created_by"],
            requesters(plan),
            now,
            now + timedelta(seconds=policy.timeout_seconds),
            json.dumps(summary),
            json.dumps(findings, default=str),
        ),
    ).fetchone()
    if row is None:
        return _by_token_and_digest(conn, token, current)
    approval_id = row["id"]
    artifact_key, artifact_digest = storage.put_json(
        f"approvals/{approval_id}",
        {
            "approval_id": approval_id,
            "plan": {"id": plan["id"], "title": plan["title"], "version": plan["version"]},
            "step": step,
            "tool": tool.model_dump() if tool else None,
            "digest": current,
            "findings": findings,
        },
    )
    created: dict[str, Any] = conn.execute(
        f"UPDATE public.approvals a SET artifacts = %s WHERE id = %s RETURNING {APPROVAL_COLUMNS}",  # noqa: S608
        (json.dumps([{"name": "request.json", "key": artifact_key, "sha256": artifact_digest}]), approval_id),
    ).fetchone()
    _history(
        conn,
        approval_id,
        "requested",
        plan.get("executed_by") or plan["created_by"],
        None,
        None,
        "system",
        None,
        current,
    )
    events.emit(
        conn,
        "approval.requested",
        plan["id"],
        {
            "approval_id": str(approval_id),
            "kind": "step" if step else "plan",
            "step_id": str(step["id"]) if step else None,
            "item_key": step["item_key"] if step else None,
            "tool_id": tool.id if tool else None,
            "required_approvals": policy.required_approvals,
            "expires_at": (now + timedelta(seconds=policy.timeout_seconds)).isoformat(),
        },
    )
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


def _by_token_and_digest(conn: Any, token: str, current: str) -> dict[str, Any]:
    return conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE idempotency_token = %s AND digest = %s",  # noqa: S608
        (token, current),
    ).fetchone()


def _by_id(conn: Any, approval_id: Any, lock: str = "") -> dict[str, Any] | None:
    """The approval; `lock` is a locking clause ("FOR UPDATE", "FOR UPDATE SKIP LOCKED") or none."""
    row: dict[str, Any] | None = conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM public.approvals a WHERE id = %s {lock}",  # noqa: S608 - constants only
        (approval_id,),
    ).fetchone()
    return row


def _history(
    conn: Any,
    approval_id: Any,
    event: str,
    actor: str,
    actor_sub: str | None,
    actor_role: str | None,
    source: str,
    reason: str | None,
    current_digest: str,
    webhook_id: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO public.approval_events (approval_id, event, actor, actor_sub, actor_role, source, reason, digest, "
        "webhook_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (approval_id, event, actor, actor_sub, actor_role, source, reason, current_digest, webhook_id),
    )


def cancel(conn: Any, approval: dict[str, Any], reason: str, actor: str = "system") -> None:
    conn.execute(
        "UPDATE public.approvals SET status = 'cancelled', decided_at = now(), decision_reason = %s "
        "WHERE id = %s AND status = 'pending'",
        (reason, approval["id"]),
    )
    _history(conn, approval["id"], "cancelled", actor, None, None, "system", reason, approval["digest"])
    events.emit(conn, "approval.cancelled", approval["plan_id"], {"approval_id": str(approval["id"]), "reason": reason})
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


# A decision's locking read: the approval with the plan and step it approves
# (as JSON, for the digest and the audit entry), in one statement.
LOCK_WITH_TARGET = f"""
SELECT {APPROVAL_COLUMNS},
  (SELECT row_to_json(p) FROM (SELECT id, version, status, input_fingerprint, policy_version
                                 FROM public.plans WHERE id = a.plan_id) p) AS target_plan,
  (SELECT row_to_json(s) FROM (SELECT id, backlog_item_id, pack_id, tool_id, inputs, idempotency_token,
                                      approval_round FROM public.plan_steps WHERE id = a.step_id) s) AS target_step
  FROM public.approvals a WHERE a.id = %s FOR UPDATE OF a
"""  # noqa: S608 - constants only


# --------------------------------------------------- the executor's check ----

State = Literal["approved", "pending", "denied"]


def check(
    conn: Any,
    plan: dict[str, Any],
    step: dict[str, Any] | None,
    tool: Tool | None,
    policy: ApprovalPolicy,
    now: datetime | None = None,
    wait: bool = True,
) -> tuple[State, dict[str, Any]]:
    """Where this step (or plan) stands, asking anew when nothing valid exists.

    A pending request for another digest is cancelled (what it was asked for
    changed) and a new one made; an overdue request expires (a denial).

    With wait=False (the executor's claim, which holds step rows), a request
    someone is deciding right now is reported pending instead of waited for:
    waiting there while the decision waits for the step row would deadlock.
    The deciding request resumes the plan itself."""
    now = now or datetime.now(UTC)
    token, current = _target(plan, step)
    newest = conn.execute(
        "SELECT id FROM public.approvals WHERE idempotency_token = %s "
        "ORDER BY (digest = %s) DESC, requested_at DESC LIMIT 1",
        (token, current),
    ).fetchone()
    latest = None
    if newest is not None:
        latest = _by_id(conn, newest["id"], "FOR UPDATE" if wait else "FOR UPDATE SKIP LOCKED")
        if latest is None:  # being decided this moment
            busy = _by_id(conn, newest["id"])
            assert busy is not None
            return "pending", busy
    if latest is not None and latest["digest"] != current:
        if latest["status"] == "pending":
            cancel(conn, latest, "what it approves changed (plan version, inputs or policy) since it was asked")
        latest = None
    if latest is None:
        latest = request(conn, plan, step, tool, policy, now)
    if latest["status"] == "pending" and latest["expires_at"] <= now:
        expire(conn, latest, noticed_by="executor", source="system")
        latest = _by_id(conn, latest["id"])
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


def expire(
    conn: Any, approval: dict[str, Any], *, noticed_by: Any, source: str, details: dict[str, Any] | None = None
) -> None:
    """Nobody answered in time: a denial, with the step denied and the plan
    blocked, in the history and the audit trail. `noticed_by` and `source`
    say who found it overdue: the cron tick, the executor, a late decision."""
    reason = f"nobody decided before {approval['expires_at'].isoformat()}"
    updated = conn.execute(
        "UPDATE public.approvals SET status = 'expired', decided_at = now(), decision_reason = %s "
        "WHERE id = %s AND status = 'pending' RETURNING id",
        (reason, approval["id"]),
    ).fetchone()
    if updated is None:
        return
    _history(conn, approval["id"], "expired", "system", None, None, source, reason, approval["digest"])
    events.emit(conn, "approval.expired", approval["plan_id"], {"approval_id": str(approval["id"]), "reason": reason})
    _refuse(conn, approval, "expired", reason, "system")
    audit.record(
        conn,
        actor=noticed_by,
        action="approval.expired",
        plan_id=approval["plan_id"],
        step_id=approval["step_id"],
        details={"approval_id": str(approval["id"]), **(details or {})},
        snapshot=True,
    )


def _refuse(conn: Any, approval: dict[str, Any], status: str, reason: str, actor: str) -> None:
    """A denial or an expiry: the step is denied and the plan blocked, the reason kept."""
    if approval["step_id"] is not None:
        conn.execute(
            "UPDATE public.plan_steps SET status = 'denied', error = %s, lease_until = NULL, updated_at = now() "
            "WHERE id = %s AND status IN ('pending', 'awaiting_approval', 'approved')",
            (f"approval {status}: {reason}", approval["step_id"]),
        )
    what = "step" if approval["step_id"] else "plan"
    plan_status.change(
        conn,
        approval["plan_id"],
        "blocked",
        f"{what} approval {status} by {actor}: {reason}",
        "plan.blocked",
        {"reason": reason, "approval_id": str(approval["id"]), "approval_status": status},
        only_from=plan_status.OPEN,
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


# ----------------------------------------------------- require_approval ----


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


# ------------------------------------------------------------- decisions ----


class DecisionRequest(BaseModel):
    """approve or deny; a denial says why."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]
    reason: str | None = Field(default=None, max_length=2000, validate_default=True)
    approver: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="who decided in the calling system (required for the signed Zig Todo webhook)",
    )

    @field_validator("reason")
    @classmethod
    def denial_needs_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("decision") == "deny" and not (reason and reason.strip()):
            raise ValueError("a denial needs a reason")
        return reason


class Artifact(BaseModel):
    name: str
    url: str
    expires_at: datetime
    sha256: str | None = None


class HistoryEntry(BaseModel):
    event: str
    actor: str
    source: str
    reason: str | None
    occurred_at: datetime


class ApprovalView(BaseModel):
    id: UUID
    kind: str
    status: str
    plan: dict[str, Any]
    step: dict[str, Any] | None
    tool_id: str | None
    digest: str
    required_approvals: int
    approvals: int = Field(description="distinct people who approved so far")
    approver_role: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    seconds_left: int
    decided_at: datetime | None
    decision_reason: str | None
    inputs_summary: dict[str, Any]
    findings: list[dict[str, Any]]
    artifacts: list[Artifact]
    history: list[HistoryEntry]


class ApprovalQueue(BaseModel):
    approvals: list[ApprovalView]


# What a view needs besides the approval row, in one round trip.
# What a view shows beside the approval row: read in the same statement as
# the rows (the queue is one query however long it is).
CONTEXT_COLUMNS = """
  (SELECT row_to_json(p) FROM (SELECT id, title, status, version FROM public.plans
                                WHERE id = a.plan_id) p) AS plan,
  (SELECT row_to_json(s) FROM (SELECT id, item_key, title, status, stage FROM public.plan_steps
                                WHERE id = a.step_id) s) AS step,
  (SELECT coalesce(json_agg(h ORDER BY h.id), '[]'::json) FROM (
       SELECT id, event, actor, source, reason, occurred_at FROM public.approval_events
        WHERE approval_id = a.id) h) AS history
"""


def _view(
    row: dict[str, Any],
    now: datetime,
    url_ttl: int = storage.DEFAULT_TTL,
    urls: dict[str, str] | None = None,
) -> ApprovalView:
    """The approval as the API shows it, from a row read with CONTEXT_COLUMNS.
    `urls`: its artifacts' links when the caller signed a page of them at once."""
    plan, step = row["plan"], row["step"]
    history = [{**h, "occurred_at": datetime.fromisoformat(h["occurred_at"])} for h in row["history"]]
    if urls is None:
        urls = storage.backend().signed_urls([a["key"] for a in row["artifacts"] or []], url_ttl)
    expires = now + timedelta(seconds=url_ttl)
    artifacts = [
        Artifact(name=a["name"], url=urls[a["key"]], expires_at=expires, sha256=a.get("sha256"))
        for a in row["artifacts"] or []
    ]
    return ApprovalView(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        plan=plan,
        step=step,
        tool_id=row["tool_id"],
        digest=row["digest"],
        required_approvals=row["required_approvals"],
        approvals=sum(1 for h in history if h["event"] == "approve"),
        approver_role=row["approver_role"],
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        expires_at=row["expires_at"],
        seconds_left=max(0, int((row["expires_at"] - now).total_seconds())),
        decided_at=row["decided_at"],
        decision_reason=row["decision_reason"],
        inputs_summary=row["inputs_summary"],
        findings=row["findings"],
        artifacts=artifacts,
        history=[HistoryEntry(**h) for h in history],
    )


def queue(conn: Any, status: str | None, plan_id: UUID | None, limit: int) -> ApprovalQueue:
    now = datetime.now(UTC)
    rows = conn.execute(
        f"SELECT {APPROVAL_COLUMNS}, {CONTEXT_COLUMNS} FROM public.approvals a "  # noqa: S608
        "WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(plan)s::uuid IS NULL OR plan_id = %(plan)s) "
        "ORDER BY requested_at, id LIMIT %(limit)s",
        {"status": status, "plan": plan_id, "limit": limit},
    ).fetchall()
    # every artifact link of the page signed at once (one request on Supabase)
    urls = storage.backend().signed_urls([a["key"] for r in rows for a in r["artifacts"] or []])
    return ApprovalQueue(approvals=[_view(r, now, urls=urls) for r in rows])


def queue_one(conn: Any, approval_id: UUID) -> ApprovalView:
    view = _read_view(conn, approval_id, datetime.now(UTC))
    if view is None:
        raise not_found("approval", approval_id)
    return view


def _read_view(conn: Any, approval_id: Any, now: datetime) -> ApprovalView | None:
    """One approval as this transaction sees it, with its context, in one read."""
    row = conn.execute(
        f"SELECT {APPROVAL_COLUMNS}, {CONTEXT_COLUMNS} FROM public.approvals a WHERE a.id = %s",  # noqa: S608
        (approval_id,),
    ).fetchone()
    return None if row is None else _view(row, now)


def _current(conn: Any, row: dict[str, Any], now: datetime) -> ApprovalView:
    """The approval of `row`, which this transaction holds locked, as it now stands."""
    view = _read_view(conn, row["id"], now)
    assert view is not None
    return view


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
    actor, actor_sub = _actor(principal, body)
    if row["status"] == "pending" and row["expires_at"] <= now:
        expire(conn, row, noticed_by=actor, source=_source(principal, client), details={"late_decision": body.decision})
        return (
            410,
            _problem(410, "this approval expired; it counts as a denial", "approval-expired", _current(conn, row, now)),
            True,
        )
    if row["status"] != "pending":
        return (
            409,
            _problem(409, f"already decided: {row['status']}", "approval-decided", _current(conn, row, now)),
            False,
        )
    plan, step = row["target_plan"], row["target_step"]
    if _target(plan, step)[1] != row["digest"]:
        cancel(conn, row, "what it approves changed (plan version, inputs or policy) since it was asked", actor)
        return (
            409,
            _problem(
                409,
                "what this approval was asked for has changed; it was cancelled and will be asked anew",
                "approval-stale",
                _current(conn, row, now),
            ),
            True,
        )
    _authorize(principal, row, actor, actor_sub, body)
    source = _source(principal, client)
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
        _finish(conn, row, "denied", body.reason or "", actor)
        _refuse(conn, row, "denied", body.reason or "", actor)
    else:
        votes = vote["earlier_approvals"] + 1
        if votes >= row["required_approvals"]:
            _finish(conn, row, "approved", body.reason, actor)
            _grant(conn, row, plan, actor)
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
    view = _current(conn, row, now)
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


def _actor(principal: Any, body: DecisionRequest) -> tuple[str, str | None]:
    if principal.source == "webhook":
        if not body.approver:
            raise field_error(422, ["body", "approver"], "the webhook must say who decided")
        return f"zig-todo:{body.approver}", None
    if body.approver and body.approver not in (principal.name, principal.subject):
        raise field_error(422, ["body", "approver"], "only the signed webhook may decide on someone else's behalf")
    return principal.name, principal.subject


def _source(principal: Any, client: str | None) -> str:
    if principal.source == "webhook":
        return "webhook"
    return "console" if client == "console" else "api"


def _authorize(principal: Any, row: dict[str, Any], actor: str, actor_sub: str | None, body: DecisionRequest) -> None:
    from lib.web.auth import RANK

    if principal.role is None or RANK[principal.role] < RANK[row["approver_role"]]:
        raise Problem(403, f"this approval needs the {row['approver_role']} role", type="forbidden")
    if body.decision == "approve":
        identities = {actor, actor_sub, principal.email, (body.approver or None)} - {None}
        if identities & set(row["requested_by_subs"] or []):
            raise Problem(403, "the requester of an approval may not approve it", type="self-approval")


def _finish(conn: Any, row: dict[str, Any], status: str, reason: str | None, actor: str) -> None:
    conn.execute(
        "UPDATE public.approvals SET status = %s, decided_at = now(), decision_reason = %s WHERE id = %s",
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


def _grant(conn: Any, row: dict[str, Any], plan: dict[str, Any], actor: str) -> None:
    """Approved: the step may run; a plan approval clears the plan to run."""
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


def _problem(status: int, detail: str, kind: str, view: ApprovalView) -> dict[str, Any]:
    from lib.web.problems import PROBLEM_BASE

    return {
        "type": PROBLEM_BASE + kind,
        "title": {409: "Conflict", 410: "Gone"}[status],
        "status": status,
        "detail": detail,
        "approval": json.loads(view.model_dump_json()),
    }
