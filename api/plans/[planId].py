"""GET /api/plans/:planId: the plan, its steps and their statuses (viewer)."""

from typing import Literal

from pydantic import BaseModel, Field

from lib.planner import views
from lib.web.endpoint import Endpoint

app = Endpoint("/api/plans/{planId}", tags=["planner"])


class StepPage(BaseModel):
    limit: int = Field(default=views.MAX_STEPS_IN_RESPONSE, ge=1, le=views.MAX_STEPS_IN_RESPONSE)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)
    graph: Literal["summary", "full"] = Field(default="summary", description="full: every id of the graph's lists")


@app.get(role="viewer", query=StepPage, response=views.PlanCreated, problems=(404,))
def read(ctx):
    """A stored plan with its steps (paged by stage and position)."""
    q = ctx.query
    return views.plan_detail(
        ctx.conn, ctx.uuid_param("planId"), limit=q.limit, offset=q.offset, full_graph=q.graph == "full"
    )
