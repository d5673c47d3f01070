"""The machinery's metrics for GET /api/metrics, each read from where the fact
is already recorded (no counter rows written on the hot paths):

- events emitted, by type (`events`);
- Realtime broadcasts in the last hour: each event of the hour is matched
  with its message on `nofx:events` in `realtime.messages` (sent) or not
  (missing: Supabase's realtime.send swallowed an error); left out where
  realtime.messages cannot be read;
- notifications by channel: delivered, given up, waiting, and the retries
  they took (`notifications.attempts` beyond the first);
- idempotency replays over the 24 hours keys are kept (`idempotency_keys.replays`);
- step attempts (`tool_metrics`, one row per attempt from its start), the
  retries among them, and the runs taken over after a lease lapsed (the
  `step.started` events that say so);
- the age of the oldest due work, per kind: a runnable step (since its last
  dependency finished, or its lease lapsed), a notification, an upload, an
  overdue approval. How far behind the workers and the tick are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

Sample = Callable[[str, dict[str, Any], Any], str]

EVENTS = "SELECT type, count(*) AS n FROM public.events GROUP BY type ORDER BY type"

BROADCASTS = """
WITH recent AS (SELECT id FROM public.events WHERE occurred_at > now() - interval '1 hour'),
     sent AS (SELECT DISTINCT (payload->>'id')::bigint AS id FROM realtime.messages
               WHERE topic = 'nofx:events' AND inserted_at > now() - interval '65 minutes')
SELECT count(s.id) AS sent, count(*) - count(s.id) AS missing
  FROM recent r LEFT JOIN sent s ON s.id = r.id
"""

NOTIFICATIONS = """
SELECT channel, status, count(*) AS n, coalesce(sum(greatest(attempts - 1, 0)), 0) AS retries
  FROM public.notifications GROUP BY channel, status ORDER BY channel, status
"""

REPLAYS = "SELECT coalesce(sum(replays), 0) AS n FROM public.idempotency_keys"

ATTEMPTS = """
SELECT (SELECT count(*) FROM public.tool_metrics WHERE attempt IS NOT NULL) AS attempts,
       (SELECT count(*) FROM public.tool_metrics WHERE attempt > 1) AS retries,
       (SELECT count(*) FROM public.events
         WHERE type = 'step.started' AND (data->>'retry_after_lease_expiry')::boolean) AS lease_expired
"""

OLDEST_DUE = """
SELECT
  (SELECT extract(epoch FROM now() - min(since)) FROM (
     SELECT greatest(s.updated_at, (SELECT max(d.finished_at) FROM public.plan_steps d
                                     WHERE d.id = ANY (s.depends_on))) AS since
       FROM public.plan_steps s JOIN public.plans p ON p.id = s.plan_id
      WHERE p.status IN ('approved', 'executing') AND s.status IN ('pending', 'approved')
        AND NOT EXISTS (SELECT 1 FROM public.plan_steps d
                         WHERE d.id = ANY (s.depends_on) AND d.status NOT IN ('succeeded', 'skipped'))
     UNION ALL
     SELECT s.lease_until FROM public.plan_steps s WHERE s.status = 'running' AND s.lease_until < now()
  ) due) AS step,
  (SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM public.notifications
    WHERE status = 'pending' AND next_attempt_at <= now()) AS notification,
  (SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM public.storage_outbox
    WHERE next_attempt_at <= now()) AS upload,
  (SELECT extract(epoch FROM now() - min(expires_at)) FROM public.approvals
    WHERE status = 'pending' AND expires_at <= now()) AS approval_expiry
"""


def _head(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def lines(conn: Any, sample: Sample) -> list[str]:
    out: list[str] = []
    out += _head("nofx_events_total", "counter", "Events emitted, by type.")
    out += [sample("nofx_events_total", {"type": r["type"]}, r["n"]) for r in conn.execute(EVENTS)]

    try:
        row = conn.execute(BROADCASTS).fetchone()
    except psycopg.Error:  # realtime.messages not readable here: say nothing rather than guess
        if not conn.autocommit:
            conn.rollback()
        row = None
    if row is not None:
        out += _head(
            "nofx_realtime_broadcasts_last_hour",
            "gauge",
            "The last hour's events with (sent) and without (missing) their message on nofx:events.",
        )
        out += [sample("nofx_realtime_broadcasts_last_hour", {"outcome": k}, row[k]) for k in ("sent", "missing")]

    notes = conn.execute(NOTIFICATIONS).fetchall()
    out += _head(
        "nofx_notifications", "gauge", "Notifications by channel and status (delivered, failed: given up, pending)."
    )
    out += [sample("nofx_notifications", {"channel": r["channel"], "status": r["status"]}, r["n"]) for r in notes]
    retries: dict[str, int] = {}
    for r in notes:
        retries[r["channel"]] = retries.get(r["channel"], 0) + int(r["retries"])
    out += _head("nofx_notification_retries_total", "counter", "Sends tried again after a failure, by channel.")
    out += [sample("nofx_notification_retries_total", {"channel": c}, n) for c, n in sorted(retries.items())]

    out += _head("nofx_idempotency_replays", "gauge", "Stored answers replayed in the last 24 hours (keys kept).")
    out.append(sample("nofx_idempotency_replays", {}, conn.execute(REPLAYS).fetchone()["n"]))

    attempts = conn.execute(ATTEMPTS).fetchone()
    out += _head("nofx_step_attempts_total", "counter", "Step attempts started (claims that ran a tool).")
    out.append(sample("nofx_step_attempts_total", {}, attempts["attempts"]))
    out += _head("nofx_step_retries_total", "counter", "Attempts after a step's first.")
    out.append(sample("nofx_step_retries_total", {}, attempts["retries"]))
    out += _head("nofx_step_lease_expired_total", "counter", "Steps taken over after their lease lapsed.")
    out.append(sample("nofx_step_lease_expired_total", {}, attempts["lease_expired"]))

    oldest = conn.execute(OLDEST_DUE).fetchone()
    out += _head("nofx_oldest_due_seconds", "gauge", "Age of the oldest work that is due and not yet done (0: none).")
    out += [
        sample("nofx_oldest_due_seconds", {"work": kind}, max(0.0, float(oldest[kind] or 0)))
        for kind in ("step", "notification", "upload", "approval_expiry")
    ]
    return out
