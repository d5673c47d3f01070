"""GET /api/gates/:planId: the aggregated gate results (viewer).
POST /api/gates/:planId: re-evaluate after policies or metrics changed (planner).

`{plan_id, verdict, score, gates: {structural, risk, compliance, resource},
steps: [...], models: [...], history: [...]}`; unknown plan: 404.
"""

from pydantic import BaseModel, ConfigDict, Field

from lib.gates import report
from lib.planner import reevaluate
from lib.trail import notify
from lib.web import background
from lib.web.endpoint import Endpoint

app = Endpoint("/api/gates/{planId}", tags=["gates"])


class Reevaluation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500, description="why (goes into the audit trail)")


class StepsPage(BaseModel):
    steps_limit: int = Field(default=report.STEPS_PAGE, ge=1, le=2000)
    steps_offset: int = Field(default=0, ge=0, le=2**31 - 1)


@app.get(role="viewer", query=StepsPage, response=report.GateReport, problems=(404,))
def read(ctx):
    """The latest generation of gate results: per gate, per model, and a page of the flagged steps."""
    q = ctx.query
    return report.report(ctx.conn, ctx.uuid_param("planId"), q.steps_limit, q.steps_offset)


@app.post(role="planner", body=Reevaluation, response=report.GateReport, problems=(404,))
def rerun(ctx):
    """Evaluate the plan again; a new generation is written and history is kept."""
    result = reevaluate.reevaluate(ctx.conn, ctx.uuid_param("planId"), ctx.principal, ctx.body.reason)
    if result.verdict in ("block", "warn"):  # Slack was told to queue it: sent after the answer, retried by the tick
        background.after_reply(ctx, lambda: notify.deliver_quietly(result.plan_id))
    return result
