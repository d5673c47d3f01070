"""GET /api/approvals: the approval queue, oldest first (viewer).

`?status=pending` (default), `?plan_id=`, `?limit=`; each approval with its
plan, step, tool, findings, time left and signed, expiring artifact URLs.
"""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from lib.approvals import views
from lib.web.endpoint import Endpoint

app = Endpoint("/api/approvals", tags=["approvals"])


class QueueQuery(BaseModel):
    status: Literal["pending", "approved", "denied", "expired", "cancelled", "all"] = "pending"
    plan_id: UUID | None = None
    limit: int = Field(default=100, ge=1, le=500)


@app.get(role="viewer", query=QueueQuery, response=views.ApprovalQueue)
def read(ctx):
    """Approvals by status, oldest first."""
    q = ctx.query
    return views.queue(ctx.conn, None if q.status == "all" else q.status, q.plan_id, q.limit)
