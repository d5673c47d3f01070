"""Slack notifications through an outbox.

`enqueue_*` writes a row in the caller's transaction (so a rolled back plan
never notifies). `deliver_due` posts due rows to SLACK_WEBHOOK_URL after the
commit, claiming them with FOR UPDATE SKIP LOCKED so two instances never post
the same message; a failure is retried with exponential backoff by the next
call (the cron tick), and after MAX_ATTEMPTS the row is marked failed and a
`notification.failed` event says so. A Slack outage never fails a plan.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from lib import db, events, settings

log = logging.getLogger("nofx.notify")
MAX_ATTEMPTS = 8
TIMEOUT_SECONDS = 5.0


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
        (plan_id, _json(payload)),
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


def deliver_due(limit: int = 20) -> dict[str, int]:
    """Post what is due; returns counts. Safe to call from any instance."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    url = settings.env("SLACK_WEBHOOK_URL")
    if not url:
        return counts
    import httpx

    with db.transaction() as conn:
        due = conn.execute(
            "SELECT id, plan_id, payload, attempts FROM public.notifications "
            "WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        ).fetchall()
        if not due:
            return counts
        with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
            for row in due:
                error = _post(client, url, row["payload"])
                attempts = row["attempts"] + 1
                if error is None:
                    conn.execute(
                        "UPDATE public.notifications SET status = 'delivered', attempts = %s, delivered_at = now(), "
                        "last_error = NULL WHERE id = %s",
                        (attempts, row["id"]),
                    )
                    counts["delivered"] += 1
                elif attempts >= MAX_ATTEMPTS:
                    conn.execute(
                        "UPDATE public.notifications SET status = 'failed', attempts = %s, last_error = %s "
                        "WHERE id = %s",
                        (attempts, error, row["id"]),
                    )
                    events.emit(
                        conn,
                        "notification.failed",
                        row["plan_id"],
                        {"channel": "slack", "attempts": attempts, "error": error},
                    )
                    counts["failed"] += 1
                else:
                    conn.execute(
                        "UPDATE public.notifications SET attempts = %s, last_error = %s, "
                        "next_attempt_at = now() + %s WHERE id = %s",
                        (attempts, error, backoff(attempts), row["id"]),
                    )
                    counts["retry"] += 1
    return counts


def _post(client: Any, url: str, payload: Any) -> str | None:
    try:
        response = client.post(url, json=payload)
    except Exception as exc:  # noqa: BLE001 - any transport failure is a retry, never a crash
        return f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def deliver_quietly() -> None:
    """After a commit: try now, and leave failures to the retry schedule."""
    try:
        deliver_due()
    except Exception:
        log.warning("notification delivery failed; will retry", exc_info=True)
