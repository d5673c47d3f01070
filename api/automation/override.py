"""POST /api/automation/override: an admin's recorded act on one scope (admin).

`{plan_id, step_id?, gate?, action: allow|skip|retry|cancel|rollback, reason, expires_at?}`;
201 the override record. It never reaches beyond its scope. What it sets in
motion (a rollback's undo calls, a retried step) runs in a worker dispatched
after the answer.
"""

from lib.executor import worker
from lib.plans import overrides
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/automation/override", tags=["automation"])


@app.post(
    role="admin", body=overrides.OverrideRequest, response=overrides.OverrideView, status=201, problems=(409, 422)
)
def override(ctx):
    """Allow a blocked plan or gate, skip or retry a step, cancel or roll back the plan."""
    view, _ = overrides.apply(ctx.conn, ctx.body, ctx.principal)
    if view.action != "cancel":  # the plan may move again (or roll back): a worker looks, after the answer
        runner = background.current(ctx)
        background.after_reply(ctx, lambda: worker.dispatch([view.plan_id], f"override {view.action}", runner))
    return view
