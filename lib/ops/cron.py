"""The tick: every minute, the work nobody's request is waiting for.

It runs no plan itself. It expires overdue approvals, delivers due
notifications, retries snapshot and artifact uploads that storage refused,
forgets old idempotency keys, measures the Supabase footprint hourly, verifies the audit entries
written since the last tick (moving each chain's checkpoint), and dispatches one worker
invocation per plan that is due (runnable steps, a lease that lapsed, an
approval that arrived, a rollback that stalled), then answers: a thousand
active plans are a thousand worker invocations, not one long tick.

Safe to run concurrently: approvals expire under FOR UPDATE SKIP LOCKED,
notifications are claimed the same way, a stalled rollback is claimed by
moving its heartbeat, and a plan dispatched twice is harmless (leases
decide who runs a step).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from pydantic import BaseModel

from lib import settings
from lib.approvals import expiry
from lib.data import db, uploads
from lib.executor import rollback, worker
from lib.ops import usage
from lib.trail import checkpoints, notify
from lib.web.problems import Problem

KEEP_IDEMPOTENCY_KEYS = "24 hours"
# plans dispatched by one tick at most; the rest are due on the next
MAX_DISPATCH = 1000


class TickReport(BaseModel):
    expired_approvals: int
    notifications: dict[str, int]
    plans_dispatched: int
    rollbacks_dispatched: int
    idempotency_keys_forgotten: int
    uploads: dict[str, int]
    audit_entries_verified: int
    audit_chains_broken: list[str]
    usage_measured: bool
    seconds: float


def authorize(header: str | None) -> None:
    secret = settings.secret("CRON_SECRET")
    expected = f"Bearer {secret}" if secret else None
    if not expected or not header or not hmac.compare_digest(header, expected):
        raise Problem(401, "the cron tick needs Authorization: Bearer $CRON_SECRET", type="unauthorized")


def tick(later: Any) -> TickReport:
    """One tick. `later(work)` runs work after the tick has answered (the
    request's after_reply, or the dev server's pool); the dispatches go there."""
    started = time.monotonic()
    with db.transaction() as conn:
        expired = expiry.expire_overdue(conn)
        forgotten = conn.execute(
            f"DELETE FROM public.idempotency_keys WHERE created_at < now() - interval '{KEEP_IDEMPOTENCY_KEYS}'"  # noqa: S608
        ).rowcount
        rollbacks = [r["id"] for r in rollback.stalled_rollbacks(conn, limit=MAX_DISPATCH)]
        due = worker.due_plans(conn, limit=MAX_DISPATCH)
    with db.transaction() as conn:
        measured = usage.refresh_if_due(conn)
    sent = notify.deliver_due()
    uploaded = uploads.upload_due()
    verified = checkpoints.advance(db.reading)
    # undoing first: a rolled-back plan's steps must not be run meanwhile
    later(lambda runner: worker.dispatch([*rollbacks, *due], "tick", runner))
    return TickReport(
        expired_approvals=expired,
        notifications=sent,
        plans_dispatched=len(due),
        rollbacks_dispatched=len(rollbacks),
        idempotency_keys_forgotten=forgotten,
        uploads=uploaded,
        audit_entries_verified=verified.entries,
        audit_chains_broken=verified.broken,
        usage_measured=measured,
        seconds=round(time.monotonic() - started, 3),
    )
