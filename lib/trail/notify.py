"""Slack notifications through an outbox.

`enqueue_*` writes a row in the caller's transaction (so a rolled back plan
never notifies). `deliver_due` posts due rows to SLACK_WEBHOOK_URL after the
commit: it claims them in one short transaction (FOR UPDATE SKIP LOCKED, so
two instances never post the same message; the claim counts the attempt and
leases the row for LEASE), posts with no transaction open, and records the
outcomes in a second short transaction. A failure is retried with exponential
backoff by the next call (the cron tick), and after MAX_ATTEMPTS the row is
marked failed and a `notification.failed` event says so. An instance that
dies mid-post leaves its rows to be claimed again when the lease runs out. A
Slack outage never fails a plan.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from lib import settings
from lib.data import db
from lib.trail import events

log = logging.getLogger("nofx.notify")
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5.0
# longer than a claim's posts can take (20 rows, 5 s each)
LEASE = timedelta(minutes=10)


def enabled() -> bool:
    return bool(settings.env("SLACK_WEBHOOK_URL"))


def enqueue_blocked_plan(conn: Any, plan_id: str, title: str, score: int, top_findings: list[str]) -> None:
    if not enabled():
        return
    link = f"{settings.public_url()}/#/plans/{plan_id}"
    bullet_list = "\n".join(f"• {finding}" for finding in top_findings) or "• (no findings recorded)"
    payload = {
        "text": f"Plan blocked: {title} (score {score})\n{bullet_list}\n<{link}|Open the plan>",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Plan blocked:* {title} (score {score})"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": bullet_list}},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open the plan"}, "url": link},
                ],
            },
        ],
    }
    conn.execute(
        "INSERT INTO public.notifications (channel, plan_id, payload) VALUES ('slack', %s, %s)",
        (plan_id, json.dumps(payload)),
    )


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


# One claim: the due rows (of one plan, or of any), each attempt counted and
# the row leased. The attempt count is the lease's token: an outcome is only
# recorded while the row still carries the attempt that was claimed.
CLAIM = """
UPDATE public.notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + %(lease)s
 WHERE n.id IN (SELECT id FROM public.notifications
                 WHERE status = 'pending' AND next_attempt_at <= now()
                   AND (%(plan)s::uuid IS NULL OR plan_id = %(plan)s::uuid)
                 ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING n.id, n.plan_id, n.payload, n.attempts
"""


def deliver_due(limit: int = 20, plan_id: UUID | str | None = None) -> dict[str, int]:
    """Post what is due (only `plan_id`'s rows when given); returns counts.
    Safe to call from any instance."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    url = settings.env("SLACK_WEBHOOK_URL")
    if not url:
        return counts
    with db.transaction() as conn:
        claimed = conn.execute(CLAIM, {"lease": LEASE, "plan": plan_id, "limit": limit}).fetchall()
    if not claimed:
        return counts
    import httpx

    # no transaction is open while Slack is slow
    with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
        outcomes = [(row, _post(client, url, row["payload"])) for row in sorted(claimed, key=lambda r: r["id"])]
    with db.transaction() as conn:
        for row, error in outcomes:
            counts[_record(conn, row, error)] += 1
    return counts


# Each outcome is recorded only while the row still carries the attempt this
# claim made (a row whose lease ran out may have been claimed again).
DELIVERED = """
UPDATE public.notifications SET status = 'delivered', delivered_at = now(), last_error = NULL
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


def _record(conn: Any, row: dict[str, Any], error: str | None) -> str:
    attempts = row["attempts"]
    args = {"id": row["id"], "attempts": attempts, "error": error, "backoff": backoff(attempts)}
    if error is None:
        conn.execute(DELIVERED, args)
        return "delivered"
    if attempts < MAX_ATTEMPTS:
        conn.execute(RETRY, args)
        return "retry"
    if conn.execute(FAILED, args).rowcount:
        events.emit(
            conn, "notification.failed", row["plan_id"], {"channel": "slack", "attempts": attempts, "error": error}
        )
    return "failed"


def _post(client: Any, url: str, payload: Any) -> str | None:
    try:
        response = client.post(url, json=payload)
    except Exception as exc:  # noqa: BLE001 - any transport failure is a retry, never a crash
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def deliver_quietly(plan_id: UUID | str | None = None) -> None:
    """After a commit: try now (only `plan_id`'s rows when given), and leave
    failures to the retry schedule. Free when Slack is not configured."""
    if not enabled():
        return
    try:
        deliver_due(plan_id=plan_id)
    except Exception:
        log.warning("notification delivery failed; will retry", exc_info=True)
