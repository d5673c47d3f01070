"""POST /api/automation/override-requests/:id: an admin grants or declines (admin).

`{decision: grant|decline, reason}`; 200 the request. Granting applies the
override by this admin, with this reason, as POST /api/automation/override
would; what it sets in motion runs in a worker dispatched after the answer.
Already decided: 409; the admin who asked: 403.
"""

from lib.executor import worker
from lib.plans import override_requests
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/automation/override-requests/{id}", tags=["automation"])


@app.post(
    role="admin",
    body=override_requests.DecisionBody,
    response=override_requests.OverrideRequestView,
    problems=(403, 404, 409, 422),
    connection="pipelined",  # a decline: the lock, then the rest with the commit
)
def decide(ctx):
    """Grant (apply the override) or decline an override request."""
    view = override_requests.decide(ctx.conn, ctx.uuid_param("id"), ctx.body, ctx.principal)
    if view.status == "granted" and view.action != "cancel":
        runner = background.current(ctx)
        background.after_reply(ctx, lambda: worker.dispatch([view.plan_id], f"override {view.action}", runner))
    return view
