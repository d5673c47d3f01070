"""POST /api/automation/override: an admin's recorded act on one scope (admin).

`{plan_id, step_id?, gate?, action: allow|skip|retry|cancel|rollback, reason, expires_at?}`;
201 the override record. It never reaches beyond its scope.
"""

from lib.executor import execution, runner
from lib.plans import overrides
from lib.web.endpoint import Endpoint

app = Endpoint("/api/automation/override", tags=["automation"])


@app.post(
    role="admin", body=overrides.OverrideRequest, response=overrides.OverrideView, status=201, problems=(409, 422)
)
def override(ctx):
    """Allow a blocked plan or gate, skip or retry a step, cancel or roll back the plan."""
    view, roll_back = overrides.apply(ctx.conn, ctx.body, ctx.principal)
    if roll_back:  # undoing runs tools: after the override is committed
        ctx.after_commit.append(
            lambda: runner.roll_back(
                view.plan_id,
                ctx.principal,
                f"override: {view.reason}",
                __import__("time").monotonic() + execution.budget_seconds(),
            )
        )
    return view
