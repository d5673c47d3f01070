"""POST /api/approvals/:id: approve or deny (approver, or the signed Zig Todo webhook).
GET /api/approvals/:id: one approval with its history (viewer).

`{decision: approve|deny, reason?, approver?, approval_id?}`; a denial needs a
reason; a signed delivery names the approval (`approval_id`) and the person
(`approver`, by email) it decides for.
200 the approval; already decided: 409 with the standing decision; expired:
410. The decision commits and answers; an approval that frees the plan's
work dispatches a worker after the answer (nobody waits for a tool).
"""

from lib.approvals import deciding, policy, views
from lib.executor import worker
from lib.trail import notify
from lib.web import background
from lib.web.endpoint import Endpoint, Reply
from lib.web.problems import CONTENT_TYPE

app = Endpoint("/api/approvals/{id}", tags=["approvals"])


@app.get(role="viewer", response=views.ApprovalView, problems=(404,))
def read(ctx):
    """One approval, its digest, findings, artifacts and history."""
    found = views.queue_one(ctx.conn, ctx.uuid_param("id"))
    return found


@app.post(
    role="approver",
    body=policy.DecisionRequest,
    response=views.ApprovalView,
    webhook_secret_env="ZIG_TODO_WEBHOOK_SECRET",  # noqa: S106 - the variable's name, not its value
    problems=(404, 409, 410, 422),
    connection="pipelined",  # the decision's statements travel together: a few round trips, not a dozen
)
def decide(ctx):
    """Decide under the approval's row lock: exactly one decision wins."""
    status, body, commit = deciding.decide(
        ctx.conn, ctx.uuid_param("id"), ctx.principal, ctx.body, ctx.request.header("x-nofx-client")
    )
    if notify.enabled():  # the vote or outcome to Slack and Zig Todo, after the answer
        background.after_reply(ctx, notify.deliver_quietly)
    if status != 200:
        return Reply(status, body, content_type=CONTENT_TYPE, commit=commit)
    if body.status == "approved" and body.plan["status"] in ("paused", "executing", "approved", "blocked"):
        # the plan (or its rollback) waited for this: a worker carries it on after the answer
        runner = background.current(ctx)
        background.after_reply(ctx, lambda: worker.dispatch([body.plan["id"]], "approval", runner))
    return body
