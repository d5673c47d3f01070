"""Events: written to the `events` outbox in the transaction that caused them.

A trigger publishes each row through realtime.send (Supabase Broadcast from
Database) and pg_notify. Readers page with a cursor; because identity values
are handed out before commit, a smaller id can become visible after a larger
one. The reader therefore only returns rows of transactions older than every
transaction still running (`tx < pg_snapshot_xmin`) and orders by (tx, id):
nothing can later appear behind a cursor it gave out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from lib.web.problems import field_error

TYPES = (
    "plan.ready",
    "plan.blocked",
    "plan.approved",
    "plan.executing",
    "plan.paused",
    "plan.completed",
    "plan.failed",
    "plan.cancelled",
    "plan.rolled_back",
    "gate.evaluated",
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "approval.cancelled",
    "step.started",
    "step.succeeded",
    "step.failed",
    "step.skipped",
    "step.rolled_back",
    "step.accepted",  # a long-running tool took the step on; it reports later
    "step.heartbeat",  # ...and is still at it (its lease goes on)
    "override.applied",
    "override.requested",
    "override.request_decided",
    "flag.changed",
    "notification.failed",
)

INSERT = "INSERT INTO public.events (type, plan_id, data) VALUES (%s, %s, %s) RETURNING id"


class Event(BaseModel):
    id: int
    type: str
    plan_id: UUID | None
    occurred_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class EventPage(BaseModel):
    events: list[Event]
    next_after: int | None = Field(description="pass as ?after= to read on; null when nothing was returned")


def _row(type: str, plan_id: UUID | str | None, data: Mapping[str, Any] | None) -> tuple[str, Any, str]:
    if type not in TYPES:
        raise ValueError(f"unknown event type {type!r}")
    return type, plan_id, json.dumps(data or {}, default=str)


def emit(conn: Any, type: str, plan_id: UUID | str | None = None, data: Mapping[str, Any] | None = None) -> int | None:
    """Write the event in the caller's transaction; its id, unless the
    statement is queued in a pipeline (then reading it would cost a round trip)."""
    from lib.data import db

    cursor = conn.execute(INSERT, _row(type, plan_id, data))
    if db.in_pipeline(conn):
        return None
    return int(cursor.fetchone()["id"])


def emit_many(conn: Any, items: Iterable[tuple[str, UUID | str | None, Mapping[str, Any] | None]]) -> None:
    """Several events in one pipelined executemany (the same INSERT as emit)."""
    rows = [_row(t, p, d) for t, p, d in items]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(INSERT, rows)


def tail(conn: Any) -> EventPage:
    """No events, and the cursor to follow from now on: the newest event that
    no transaction still running can overtake."""
    row = conn.execute(
        "SELECT id FROM public.events WHERE tx < pg_snapshot_xmin(pg_current_snapshot()) "
        "ORDER BY tx DESC, id DESC LIMIT 1"
    ).fetchone()
    return EventPage(events=[], next_after=row["id"] if row else None)


def page(
    conn: Any,
    after: int | None = None,
    plan_id: UUID | None = None,
    type: str | None = None,
    limit: int = 100,
) -> EventPage:
    cursor = None
    if after:
        cursor = conn.execute("SELECT tx, id FROM public.events WHERE id = %s", (after,)).fetchone()
        if cursor is None:
            raise field_error(422, ["query", "after"], f"no event {after}")
    rows = conn.execute(
        """
        SELECT id, type, plan_id, occurred_at, data
          FROM public.events
         WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
           AND (%(has_cursor)s = false OR (tx, id) > (%(tx)s::xid8, %(id)s::bigint))
           AND (%(plan_id)s::uuid IS NULL OR plan_id = %(plan_id)s::uuid)
           AND (%(type)s::text IS NULL OR type = %(type)s::text)
         ORDER BY tx, id
         LIMIT %(limit)s
        """,
        {
            "has_cursor": cursor is not None,
            "tx": cursor["tx"] if cursor else None,
            "id": cursor["id"] if cursor else None,
            "plan_id": plan_id,
            "type": type,
            "limit": limit,
        },
    ).fetchall()
    events = [Event(**r) for r in rows]
    return EventPage(events=events, next_after=events[-1].id if events else after)
