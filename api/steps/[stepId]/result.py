"""POST /api/steps/:stepId/result: a long-running tool reports (the tool's own signature).

Standard Webhooks signed with the secret the tool's config names
(`callback_secret_env`), `{step_id, idempotency_token, status: succeeded |
failed | running, output?, error?}`. Bound to the step and the run it reports
on; each delivery once (a replay of the same delivery answers as the first
did). `running` extends the lease. A finished run dispatches a worker for the
plan after the answer.
"""

from lib.executor import callbacks, worker
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/steps/{stepId}/result", tags=["system"])


@app.post(
    public=True,
    webhook_secret=callbacks.signers,
    body=callbacks.StepReport,
    response=callbacks.ReportAnswer,
    problems=(401, 409, 422),
)
def report(ctx):
    """Apply the tool's report under the plan's and the step's row locks."""
    answer, carry_on = callbacks.receive(ctx.conn, ctx.uuid_param("stepId"), ctx.principal, ctx.body)
    if carry_on is not None:
        runner = background.current(ctx)
        background.after_reply(ctx, lambda: worker.dispatch([carry_on], "tool report", runner))
    return answer
