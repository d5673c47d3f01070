"""The approval queue as the API and the console show it: each request with
its plan, step, findings, time left, signed artifact links and history,
read in one statement however long the queue is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from lib.approvals.context import CONTEXT_SQL, Context, context_of
from lib.approvals.store import APPROVAL_COLUMNS
from lib.data import storage
from lib.web.problems import not_found


class Artifact(BaseModel):
    name: str
    url: str | None  # None while its upload waits (lib/data/uploads.py)
    expires_at: datetime
    sha256: str | None = None


class HistoryEntry(BaseModel):
    event: str
    actor: str
    person_id: str | None = Field(default=None, description="the stable id (JWT sub) of the person who acted")
    source: str = Field(description="where it verifiably came from: api, webhook, cron or system")
    client_claim: str | None = Field(default=None, description="what the client said it was (unverified)")
    reason: str | None
    occurred_at: datetime


class ApprovalView(Context):
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
    requester_ids: list[str] = Field(
        description="the people who asked (planned, executed, wrote it): they may not approve"
    )
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
    total: int = Field(description="approvals that match the filters, on every page")
    offset: int
    limit: int
    next_offset: int | None = Field(description="pass as ?offset= for the next page; null on the last")


# What a view shows beside the approval row: read in the same statement as
# the rows (the queue is one query however long it is).
CONTEXT_COLUMNS = f"""
  (SELECT row_to_json(p) FROM (SELECT id, title, status, version FROM public.plans
                                WHERE id = a.plan_id) p) AS plan,
  (SELECT row_to_json(s) FROM (SELECT id, item_key, title, status, stage FROM public.plan_steps
                                WHERE id = a.step_id) s) AS step,
  (SELECT coalesce(json_agg(h ORDER BY h.id), '[]'::json) FROM (
       SELECT id, event, actor, person_id, source, client_claim, reason, occurred_at FROM public.approval_events
        WHERE approval_id = a.id) h) AS history,
{CONTEXT_SQL}
"""  # noqa: S608 - constants only


def _view(
    row: dict[str, Any],
    now: datetime,
    url_ttl: int = storage.DEFAULT_TTL,
    urls: dict[str, str | None] | None = None,
) -> ApprovalView:
    """The approval as the API shows it, from a row read with CONTEXT_COLUMNS.
    `urls`: its artifacts' links when the caller signed a page of them at once."""
    plan, step = row["plan"], row["step"]
    history = [{**h, "occurred_at": datetime.fromisoformat(h["occurred_at"])} for h in row["history"]]
    if urls is None:
        urls = storage.links([a["key"] for a in row["artifacts"] or []], url_ttl)
    expires = now + timedelta(seconds=url_ttl)
    artifacts = [
        Artifact(name=a["name"], url=urls[a["key"]], expires_at=expires, sha256=a.get("sha256"))
        for a in row["artifacts"] or []
    ]
    return ApprovalView(
        **dict(context_of(row)),
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
        requester_ids=row["requested_by_subs"] or [],
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


@dataclass(frozen=True)
class Filters:
    """Which approvals a page shows: all of them match every filter given."""

    status: str | None = "pending"
    plan_id: UUID | None = None
    tool: str | None = None
    pack: str | None = None
    q: str | None = None


# Which requests match, shared by the page and the count.
MATCHES = """
  FROM public.approvals a
  LEFT JOIN public.plan_steps qs ON qs.id = a.step_id
  JOIN public.plans qp ON qp.id = a.plan_id
 WHERE (%(status)s::text IS NULL OR a.status = %(status)s)
   AND (%(plan)s::uuid IS NULL OR a.plan_id = %(plan)s)
   AND (%(tool)s::text IS NULL OR a.tool_id = %(tool)s)
   AND (%(pack)s::text IS NULL OR qs.pack_id = %(pack)s)
   AND (%(q)s::text IS NULL OR qs.item_key ILIKE %(q)s OR qs.title ILIKE %(q)s OR qp.title ILIKE %(q)s
        OR a.tool_id ILIKE %(q)s)
"""

# Plan by plan, oldest first: a plan's requests (asked a few microseconds
# apart, in its stage order) sit together, as asked when its first one was,
# and among them by item key in natural order: PAY-2 before PAY-10. The
# order and the count are worked out on ids alone; only the page's rows are
# read with their context (a queue of thousands costs what its page costs).
QUEUE = f"""
WITH page AS (
  SELECT a.id, count(*) OVER () AS total,
         min(a.requested_at) OVER (PARTITION BY a.plan_id, a.status) AS batch_at,
         regexp_replace(coalesce(qs.item_key, ''), '[0-9]+$', '') COLLATE "C" AS key_text,
         nullif(substring(qs.item_key FROM '([0-9]+)$'), '')::numeric AS key_number,
         a.requested_at
  {MATCHES}
  ORDER BY batch_at, key_text, key_number NULLS FIRST, a.requested_at, a.id
  LIMIT %(limit)s OFFSET %(offset)s)
SELECT {APPROVAL_COLUMNS}, {CONTEXT_COLUMNS}, page.total
  FROM page JOIN public.approvals a ON a.id = page.id
 ORDER BY page.batch_at, page.key_text, page.key_number NULLS FIRST, page.requested_at, page.id
"""  # noqa: S608 - built from constants
COUNT = f"SELECT count(*) AS total {MATCHES}"


def _like(text: str | None) -> str | None:
    """A search as an ILIKE pattern matching it anywhere, its own % and _ literal."""
    if not text or not text.strip():
        return None
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def queue(conn: Any, filters: Filters, limit: int, offset: int = 0) -> ApprovalQueue:
    now = datetime.now(UTC)
    params = {
        "status": filters.status,
        "plan": filters.plan_id,
        "tool": filters.tool,
        "pack": filters.pack,
        "q": _like(filters.q),
        "limit": limit,
        "offset": offset,
    }
    rows = conn.execute(QUEUE, params).fetchall()
    # past the end there is no row to carry the count: count alone
    total = rows[0]["total"] if rows else (conn.execute(COUNT, params).fetchone()["total"] if offset else 0)
    # every artifact link of the page signed at once (one request on Supabase)
    urls = storage.links([a["key"] for r in rows for a in r["artifacts"] or []])
    return ApprovalQueue(
        approvals=[_view(r, now, urls=urls) for r in rows],
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + len(rows) if offset + len(rows) < total else None,
    )


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


def current_view(conn: Any, row: dict[str, Any], now: datetime) -> ApprovalView:
    """The approval of `row`, which this transaction holds locked, as it now stands."""
    view = _read_view(conn, row["id"], now)
    assert view is not None
    return view


def view_later(conn: Any, approval_id: Any) -> Callable[[datetime], ApprovalView]:
    """The approval as this transaction will see it once the statements
    before it have run: the read is queued now (in a pipeline it travels with
    the next round trip) and read when the returned function is called."""
    cursor = conn.execute(
        f"SELECT {APPROVAL_COLUMNS}, {CONTEXT_COLUMNS} FROM public.approvals a WHERE a.id = %s",  # noqa: S608
        (approval_id,),
    )
    return lambda now: _view(cursor.fetchone(), now)
