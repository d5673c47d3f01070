"""POST /api/worker/advance: advance one plan in an invocation of its own (server secret).

`Authorization: Bearer $NOFX_WORKER_SECRET`, `{plan_id, reason?}`. Answers
202 at once; the plan's runnable steps (or its rollback) run after the
reply, within this invocation's budget, and when time runs out with work
left it dispatches its next invocation. At-least-once: a doubled dispatch is
harmless (leases decide who runs a step).
"""

from lib.executor import worker
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/worker/advance", tags=["system"])


@app.post(
    public=True,
    server_secret_env="NOFX_WORKER_SECRET",  # noqa: S106 - the variable's name, not its value
    body=worker.AdvanceRequest,
    response=worker.Accepted,
    status=202,
    idempotency="none",  # a dispatch sent twice is two runs, which the leases make harmless
    problems=(401, 422),
)
def advance(ctx):
    """Accept the plan; its work runs after the reply."""
    plan_id, reason, runner = ctx.body.plan_id, ctx.body.reason, background.current(ctx)
    background.after_reply(ctx, lambda: worker.run(plan_id, reason, runner))
    return worker.Accepted(plan_id=plan_id)
