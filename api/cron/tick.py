"""GET /api/cron/tick: the scheduler's heartbeat (Vercel Cron or Supabase Cron, `Authorization: Bearer $CRON_SECRET`).

Expires overdue approvals, delivers due notifications, forgets old
idempotency keys, and dispatches one worker invocation per due plan (after
answering; it runs no plan itself).
"""

from lib.ops import cron
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/cron/tick", tags=["system"])


@app.get(public=True, response=cron.TickReport, problems=(401,))
def tick(ctx):
    """One tick; safe to run on several instances at once."""
    cron.authorize(ctx.request.header("authorization"))
    runner = background.current(ctx)
    return cron.tick(lambda work: background.after_reply(ctx, lambda: work(runner)))
