"""What an approver needs beside the request itself, so a re-asked request
never hides its past: earlier requests for the same step (their decisions,
reasons and what changed since), the overrides on its plan, what rollback
would do, and for a plan approval the steps it releases and the items the
planner pulled in. Read as columns of the same statement as the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from lib.planner.progress import PulledIn, pulled_in_sql

RELEASES_SHOWN = 200

# Correlated to the outer `public.approvals a`. Earlier requests share the
# thing they ask about (the step's or the plan's idempotency token).
CONTEXT_SQL = f"""
  (SELECT coalesce(json_agg(x ORDER BY x.requested_at DESC), '[]'::json) FROM (
     SELECT e.id, e.status, e.requested_at, e.decided_at, e.decision_reason, e.inputs_summary, e.digest,
            (SELECT coalesce(json_agg(v ORDER BY v.id), '[]'::json) FROM (
                SELECT id, event, actor, reason, occurred_at FROM public.approval_events
                 WHERE approval_id = e.id AND event <> 'requested') v) AS votes
       FROM public.approvals e
      WHERE e.plan_id = a.plan_id AND e.idempotency_token = a.idempotency_token AND e.id <> a.id
        AND e.requested_at <= a.requested_at
      ORDER BY e.requested_at DESC LIMIT 20) x) AS past,
  (SELECT coalesce(json_agg(o ORDER BY o.created_at DESC), '[]'::json) FROM (
     SELECT action, scope, gate, step_id, actor, reason, created_at FROM public.overrides
      WHERE plan_id = a.plan_id AND (scope <> 'step' OR step_id = a.step_id)
      ORDER BY created_at DESC LIMIT 20) o) AS overrides,
  (SELECT rollback FROM public.plan_steps WHERE id = a.step_id) AS rollback,
  CASE WHEN a.kind = 'plan' THEN (
    SELECT coalesce(json_agg(r ORDER BY r.stage, r.position), '[]'::json) FROM (
      SELECT s.id AS step_id, s.item_key, s.title, s.tool_id, b.environment, s.requires_approval, s.status,
             s.stage, s.position
        FROM public.plan_steps s LEFT JOIN public.backlog_items b ON b.id = s.backlog_item_id
       WHERE s.plan_id = a.plan_id ORDER BY s.stage, s.position LIMIT {RELEASES_SHOWN}) r) END AS releases,
  CASE WHEN a.kind = 'plan' THEN (SELECT (totals ->> 'steps')::int FROM public.plans WHERE id = a.plan_id)
  END AS releases_total,
  CASE WHEN a.kind = 'plan' THEN {pulled_in_sql("a.plan_id")} END AS pulled_in
"""  # noqa: S608 - constants only


class Change(BaseModel):
    field: str
    before: Any
    after: Any


class Vote(BaseModel):
    event: str
    actor: str
    reason: str | None
    occurred_at: datetime


class PastRequest(BaseModel):
    id: UUID
    status: str
    requested_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    decided_by: list[str] = Field(description="who approved or denied it")
    votes: list[Vote]
    changed: list[Change] = Field(description="inputs that differ between that request and this one")


class OverrideNote(BaseModel):
    action: str
    scope: str
    gate: str | None
    step_id: UUID | None
    actor: str
    reason: str
    created_at: datetime


class Release(BaseModel):
    step_id: UUID
    item_key: str
    title: str
    tool_id: str
    environment: str | None
    requires_approval: bool
    status: str


class Context(BaseModel):
    past: list[PastRequest] = Field(
        default_factory=list, description="earlier requests for the same step, newest first"
    )
    overrides: list[OverrideNote] = Field(default_factory=list, description="overrides of this plan touching this step")
    rollback: dict[str, Any] | None = Field(default=None, description="what undoing the step would do")
    releases: list[Release] = Field(default_factory=list, description="a plan approval: the steps it releases")
    releases_total: int | None = None
    pulled_in: list[PulledIn] = Field(default_factory=list, description="a plan approval: items added as dependencies")


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The inputs that differ, in key order; a key on one side only counts."""
    keys = sorted(set(before) | set(after))
    return [Change(field=k, before=before.get(k), after=after.get(k)) for k in keys if before.get(k) != after.get(k)]


def context_of(row: dict[str, Any]) -> Context:
    """The context columns of a row read with CONTEXT_SQL, shaped."""
    current = row.get("inputs_summary") or {}
    past = [
        PastRequest(
            id=p["id"],
            status=p["status"],
            requested_at=p["requested_at"],
            decided_at=p["decided_at"],
            decision_reason=p["decision_reason"],
            decided_by=list(dict.fromkeys(v["actor"] for v in p["votes"] if v["event"] in ("approve", "deny"))),
            votes=p["votes"],
            changed=changes(p["inputs_summary"] or {}, current),
        )
        for p in row.get("past") or []
    ]
    return Context(
        past=past,
        overrides=row.get("overrides") or [],
        rollback=row.get("rollback"),
        releases=row.get("releases") or [],
        releases_total=row.get("releases_total"),
        pulled_in=row.get("pulled_in") or [],
    )
