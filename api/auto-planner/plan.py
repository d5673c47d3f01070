"""POST /api/auto-planner/plan: build a plan from backlog items (planner).

`{backlog_item_ids?, pack_ids?, options?}`; no ids means every open item.
201 `{plan, steps, evaluations, verdict}`; 200 when an open plan for the same
input already exists, or for a dry run. 403 feature-disabled when
FEATURE_AUTO_PLANNER is off.
"""

from lib.planner import create, views
from lib.trail import notify
from lib.web import background
from lib.web.endpoint import Endpoint, Reply

app = Endpoint("/api/auto-planner/plan", tags=["planner"])


@app.post(
    role="planner",
    flag="FEATURE_AUTO_PLANNER",
    body=views.PlanRequest,
    response=views.PlanCreated,
    status=201,
    max_body=8 << 20,
    idempotency="separate",  # no transaction held while LLM providers answer; a duplicate gets 409 meanwhile
    problems=(422,),
    also=(200,),  # an open plan for the same input was returned, or a dry run
)
def plan(ctx):
    """Plan the backlog: stages, tokens, rollback, gate verdicts; persisted in one transaction."""
    key = ctx.request.header("idempotency-key")
    # the transaction is opened when planning is ready to write (a model
    # comparison runs before it, with no transaction held open)
    status, body = create.create(lambda: ctx.conn, ctx.body, ctx.principal, key, ctx.after_send)
    if status == 201 and body.verdict in ("block", "warn"):  # Slack told after the answer; the tick retries
        background.after_reply(ctx, lambda: notify.deliver_quietly(body.plan.id))
    return Reply(status, body, headers={"Location": f"/api/plans/{body.plan.id}"} if status == 201 else {})
