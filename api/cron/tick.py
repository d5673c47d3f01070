"""GET /api/cron/tick: the scheduler's heartbeat (Vercel Cron, `Authorization: Bearer $CRON_SECRET`).

Expires overdue approvals, delivers due notifications, resumes plans that
have runnable steps, forgets old idempotency keys.
"""

from lib.ops import cron
from lib.web.endpoint import Endpoint

app = Endpoint("/api/cron/tick", tags=["system"])


@app.get(public=True, response=cron.TickReport, problems=(401,))
def tick(ctx):
    """One tick; safe to run on several instances at once."""
    cron.authorize(ctx.request.header("authorization"))
    return cron.tick()
