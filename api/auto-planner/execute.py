"""POST /api/auto-planner/execute: run a plan's steps in dependency order (planner).

`{plan_id}`; runs within a time budget and pauses at steps that need
approval. 202 `{plan_id, status, steps}`; a blocked plan without an override
is 409; 403 feature-disabled when FEATURE_PLANNER_EXECUTE is off.
"""

from lib.executor import execution
from lib.web.endpoint import Endpoint

app = Endpoint("/api/auto-planner/execute", tags=["planner"])


@app.post(
    role="planner",
    flag="FEATURE_PLANNER_EXECUTE",
    body=execution.ExecuteRequest,
    response=execution.ExecutionState,
    status=202,
    idempotency="separate",  # it commits step by step; a duplicate gets 409 while it runs
    problems=(404, 409),
)
def execute(ctx):
    """Start or resume the plan and run as far as the time budget allows."""
    return execution.execute(ctx.body.plan_id, ctx.principal)
