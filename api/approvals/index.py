"""GET /api/approvals: the approval queue, oldest first (viewer).

`?status=pending` (default), `?plan_id=`, `?tool=`, `?pack=`, `?q=` (search
item key, step title, plan title, tool), `?limit=`, `?offset=`; each approval
with its plan, step, tool, findings, time left, signed, expiring artifact
URLs and its past. `total` counts every match, so no request is out of reach.
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
    tool: str | None = Field(default=None, max_length=200, description="one tool id")
    pack: str | None = Field(default=None, max_length=200, description="one pack id")
    q: str | None = Field(default=None, max_length=200, description="text in the item key, step or plan title, tool")
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)


@app.get(role="viewer", query=QueueQuery, response=views.ApprovalQueue)
def read(ctx):
    """Approvals by status and filters, oldest first, in natural key order within an instant."""
    q = ctx.query
    filters = views.Filters(
        status=None if q.status == "all" else q.status, plan_id=q.plan_id, tool=q.tool, pack=q.pack, q=q.q
    )
    return views.queue(ctx.conn, filters, q.limit, q.offset)
