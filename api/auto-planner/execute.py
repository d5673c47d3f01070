"""POST /api/auto-planner/execute: start a plan's steps in dependency order (planner).

`{plan_id}`. Checks, clears and records the plan in one transaction and
answers 202 `{plan_id, status, steps, runnable, waiting_for, dispatched}` at
once; a worker dispatched after the answer runs the steps and pauses at
steps that need approval. A blocked plan without an override is 409;
403 feature-disabled when FEATURE_PLANNER_EXECUTE is off.
"""

from lib.executor import execution, worker
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/auto-planner/execute", tags=["planner"])


@app.post(
    role="planner",
    flag="FEATURE_PLANNER_EXECUTE",
    body=execution.ExecuteRequest,
    response=execution.ExecutionState,
    status=202,
    problems=(404, 409),
    connection="pipelined",  # checks, transition, audit and answer: a few round trips, not a dozen
)
def execute(ctx):
    """Start or resume the plan; its steps run after the answer."""
    view, go = execution.execute(ctx.conn, ctx.body.plan_id, ctx.principal)
    if go:
        runner = background.current(ctx)
        background.after_reply(ctx, lambda: worker.dispatch([view.plan_id], "execute", runner))
    return view
