"""The cron tick: the work nobody's request is waiting for.

Safe to run concurrently: approvals expire under FOR UPDATE SKIP LOCKED,
notifications are claimed the same way, plans are advanced through the
executor's own claiming, and a stalled rollback (an admin's, or a plan's
rollback_on_failure) is claimed by moving its heartbeat (its undo calls
carry idempotency keys, and each step is recorded rolled back once, should
two runs meet).
"""

from __future__ import annotations

import hmac
import time

from pydantic import BaseModel

from lib import settings
from lib.approvals import expiry
from lib.data import db
from lib.executor import rollback, runner
from lib.trail import notify
from lib.web.problems import Problem

KEEP_IDEMPOTENCY_KEYS = "24 hours"


class TickReport(BaseModel):
    expired_approvals: int
    notifications: dict[str, int]
    plans_advanced: int
    steps_run: int
    rollbacks_resumed: int
    idempotency_keys_forgotten: int
    seconds: float


def authorize(header: str | None) -> None:
    secret = settings.secret("CRON_SECRET")
    expected = f"Bearer {secret}" if secret else None
    if not expected or not header or not hmac.compare_digest(header, expected):
        raise Problem(401, "the cron tick needs Authorization: Bearer $CRON_SECRET", type="unauthorized")


def tick() -> TickReport:
    started = time.monotonic()
    budget = float(settings.env("NOFX_TICK_BUDGET_SECONDS", "20") or 20)
    with db.transaction() as conn:
        expired = expiry.expire_overdue(conn)
        forgotten = conn.execute(
            f"DELETE FROM public.idempotency_keys WHERE created_at < now() - interval '{KEEP_IDEMPOTENCY_KEYS}'"  # noqa: S608
        ).rowcount
        plans = [
            r["id"]
            for r in conn.execute(
                "SELECT p.id FROM public.plans p WHERE p.status IN ('executing', 'approved', 'paused') "
                "ORDER BY p.updated_at LIMIT 20"
            )
        ]
        rollbacks = rollback.stalled_rollbacks(conn)
    sent = notify.deliver_due()
    # Undoing comes before new work. A rollback keeps to the budget (it stops
    # before an undo it has no time for and resumes on a later tick); steps
    # started in the plans' turn may run their own timeout past it, which
    # the function's maxDuration leaves room for.
    for stalled in rollbacks:
        rollback.roll_back(stalled["id"], "cron", stalled["reason"], started + budget)
    steps = 0
    advanced = 0
    for plan_id in plans:
        left = budget - (time.monotonic() - started)
        if left <= 1:
            break
        steps += runner.advance(plan_id, left).ran
        advanced += 1
    return TickReport(
        expired_approvals=expired,
        notifications=sent,
        plans_advanced=advanced,
        steps_run=steps,
        rollbacks_resumed=len(rollbacks),
        idempotency_keys_forgotten=forgotten,
        seconds=round(time.monotonic() - started, 3),
    )
