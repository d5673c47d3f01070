"""Notifications through an outbox: Slack and Zig Todo (lib/trail/channels.py),
with the messages of lib/trail/messages.py.

What people are told: a plan blocked or warned (Slack); an approval request
(Slack, with its votes and outcome in the request's thread; Zig Todo, which
shows the todo and answers through POST /api/approvals/:id) and its outcome.

Each message is a row written in the caller's transaction (so a rolled back
plan never notifies). `deliver_due` sends due rows after the commit: it
claims them in one short transaction (FOR UPDATE SKIP LOCKED, so two
instances never send the same message; the claim counts the attempt and
leases the row for LEASE), sends with no transaction open, and records the
outcomes in a second short transaction. A failure is retried with exponential
backoff by the next call (the cron tick), and after MAX_ATTEMPTS the row is
marked failed and a `notification.failed` event says so. An instance that
dies mid-send leaves its rows to be claimed again when the lease runs out. A
Slack or Zig Todo outage never fails a plan.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from lib import settings
from lib.data import db
from lib.trail import channels, events, messages

log = logging.getLogger("nofx.notify")
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5.0
# longer than a claim's posts can take (20 rows, 5 s each)
LEASE = timedelta(minutes=10)


def enabled() -> bool:
    return channels.enabled(channels.SLACK) or channels.enabled(channels.ZIG_TODO)


INSERT = """
INSERT INTO public.notifications (channel, plan_id, approval_id, event, payload, thread_of, dedupe_key)
VALUES (%(channel)s, %(plan)s, %(approval)s, %(event)s, %(payload)s,
        (SELECT id FROM public.notifications
          WHERE approval_id = %(approval)s AND event = 'approval.requested' AND channel = %(channel)s
            AND %(threaded)s
          ORDER BY id LIMIT 1),
        %(dedupe)s)
ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
"""


def _enqueue(
    conn: Any,
    channel: str,
    event: str,
    payload: dict[str, Any],
    plan_id: Any = None,
    approval_id: Any = None,
    dedupe_key: str | None = None,
    threaded: bool = False,
) -> None:
    conn.execute(
        INSERT,
        {
            "channel": channel,
            "plan": plan_id,
            "approval": approval_id,
            "event": event,
            "payload": json.dumps(payload, default=str),
            "threaded": threaded,
            "dedupe": dedupe_key,
        },
    )


def plan_verdict(conn: Any, plan_id: str, title: str, verdict: str, score: int, top_findings: list[str]) -> None:
    """A blocked plan, or a warned one, to Slack."""
    if verdict not in ("block", "warn") or not channels.enabled(channels.SLACK):
        return
    payload = messages.plan_verdict(plan_id, title, verdict, score, top_findings, settings.public_url())
    _enqueue(conn, channels.SLACK, f"plan.{'blocked' if verdict == 'block' else 'warned'}", payload, plan_id)


def enqueue_blocked_plan(conn: Any, plan_id: str, title: str, score: int, top_findings: list[str]) -> None:
    plan_verdict(conn, plan_id, title, "block", score, top_findings)


def approval_requested(conn: Any, approval: dict[str, Any], plan: dict[str, Any], step: dict[str, Any] | None) -> None:
    """The request to Slack and to Zig Todo, once per approval."""
    base, now = settings.public_url(), datetime.now(UTC)
    approval_id, plan_id = approval["id"], plan["id"]
    if channels.enabled(channels.SLACK):
        payload = messages.approval_requested_slack(approval, plan, step, now, base)
        _enqueue(
            conn,
            channels.SLACK,
            "approval.requested",
            payload,
            plan_id,
            approval_id,
            f"slack:approval.requested:{approval_id}",
        )
    if channels.enabled(channels.ZIG_TODO):
        payload = messages.approval_requested_zig(approval, plan, step, base)
        _enqueue(
            conn,
            channels.ZIG_TODO,
            "approval.requested",
            payload,
            plan_id,
            approval_id,
            f"nofx-approval-requested-{approval_id}",
        )


def approval_outcome(
    conn: Any, approval: dict[str, Any], status: str, by: str | None, reason: str | None, votes: str | None = None
) -> None:
    """A vote ("1 of 2", status pending) or the outcome: in the request's Slack
    thread, and (outcomes only) to Zig Todo so the todo closes."""
    approval_id, plan_id = approval["id"], approval["plan_id"]
    if channels.enabled(channels.SLACK):
        payload = messages.approval_outcome_slack(status, by, reason, votes)
        _enqueue(conn, channels.SLACK, f"approval.{status}", payload, plan_id, approval_id, threaded=True)
    if status != "pending" and channels.enabled(channels.ZIG_TODO):
        payload = messages.approval_resolved_zig(str(approval_id), status, by, reason)
        # after the request (thread_of), so a todo is never closed before it is opened
        _enqueue(
            conn,
            channels.ZIG_TODO,
            "approval.resolved",
            payload,
            plan_id,
            approval_id,
            f"nofx-approval-resolved-{approval_id}",
            threaded=True,
        )


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


# One claim: the due rows (of one plan, or of any), each attempt counted and
# the row leased. The attempt count is the lease's token: an outcome is only
# recorded while the row still carries the attempt that was claimed. A reply
# in a thread waits until the message it replies to has been sent (or given
# up on, then it goes out on its own).
CLAIM = """
UPDATE public.notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + %(lease)s
 WHERE n.id IN (SELECT m.id FROM public.notifications m
                 WHERE m.status = 'pending' AND m.next_attempt_at <= now()
                   AND (%(plan)s::uuid IS NULL OR m.plan_id = %(plan)s::uuid)
                   AND (m.thread_of IS NULL OR EXISTS (SELECT 1 FROM public.notifications p
                                                        WHERE p.id = m.thread_of AND p.status <> 'pending'))
                 ORDER BY m.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING n.id, n.channel, n.plan_id, n.payload, n.attempts, n.dedupe_key,
          (SELECT p.external_id FROM public.notifications p WHERE p.id = n.thread_of) AS thread_ts
"""


def deliver_due(limit: int = 20, plan_id: UUID | str | None = None) -> dict[str, int]:
    """Send what is due (only `plan_id`'s rows when given); returns counts.
    Safe to call from any instance. A round that delivered messages is
    followed by one more, for the replies that waited for them (a thread's
    outcome right after its request)."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    if not enabled():
        return counts
    import httpx

    with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
        for _ in range(2):
            with db.transaction() as conn:
                claimed = conn.execute(CLAIM, {"lease": LEASE, "plan": plan_id, "limit": limit}).fetchall()
            if not claimed:
                break
            # no transaction is open while a channel is slow
            outcomes = [(row, *channels.send(client, row)) for row in sorted(claimed, key=lambda r: r["id"])]
            with db.transaction() as conn:
                recorded = [_record(conn, row, error, external_id) for row, error, external_id in outcomes]
            for outcome in recorded:
                counts[outcome] += 1
            if "delivered" not in recorded:
                break
    return counts


# Each outcome is recorded only while the row still carries the attempt this
# claim made (a row whose lease ran out may have been claimed again).
DELIVERED = """
UPDATE public.notifications SET status = 'delivered', delivered_at = now(), last_error = NULL,
       external_id = %(external_id)s
 WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s
"""
FAILED = """
UPDATE public.notifications SET status = 'failed', last_error = %(error)s
 WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s
"""
RETRY = """
UPDATE public.notifications SET last_error = %(error)s, next_attempt_at = now() + %(backoff)s
 WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s
"""


def _record(conn: Any, row: dict[str, Any], error: str | None, external_id: str | None = None) -> str:
    attempts = row["attempts"]
    args = {
        "id": row["id"],
        "attempts": attempts,
        "error": error,
        "backoff": backoff(attempts),
        "external_id": external_id,
    }
    if error is None:
        conn.execute(DELIVERED, args)
        return "delivered"
    if attempts < MAX_ATTEMPTS and not error.startswith(channels.PERMANENT):
        conn.execute(RETRY, args)
        return "retry"
    if conn.execute(FAILED, args).rowcount:
        events.emit(
            conn,
            "notification.failed",
            row["plan_id"],
            {"channel": row["channel"], "attempts": attempts, "error": error},
        )
    return "failed"


def deliver_quietly(plan_id: UUID | str | None = None) -> None:
    """After a commit: try now (only `plan_id`'s rows when given), and leave
    failures to the retry schedule. Free when no channel is configured."""
    if not enabled():
        return
    try:
        deliver_due(plan_id=plan_id)
    except Exception:
        log.warning("notification delivery failed; will retry", exc_info=True)
