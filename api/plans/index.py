"""GET /api/plans: the plans, newest first (viewer). `?status=&limit=`."""

from typing import Literal

from pydantic import BaseModel, Field

from lib.plans import listing
from lib.web.endpoint import Endpoint

app = Endpoint("/api/plans", tags=["planner"])

Status = Literal[
    "draft", "ready", "blocked", "approved", "executing", "paused", "completed", "failed", "cancelled", "rolled_back"
]


class PlanQuery(BaseModel):
    status: Status | None = None
    limit: int = Field(default=50, ge=1, le=500)


@app.get(role="viewer", query=PlanQuery, response=listing.PlanList)
def read(ctx):
    """Plans with their status, verdict and size."""
    return listing.list_plans(ctx.conn, ctx.query.status, ctx.query.limit)
