"""GET /api/audit/:planId: a plan's audit trail, the chain check and the
snapshots (signed links, digests verified) (viewer)."""

from typing import Literal

from pydantic import BaseModel, Field

from lib.trail import audit_report
from lib.web.endpoint import Endpoint

app = Endpoint("/api/audit/{planId}", tags=["audit"])


class TrailQuery(BaseModel):
    limit: int = Field(default=500, ge=1, le=5000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)
    # "full": the whole chain and every snapshot, not only what is new since the checkpoint
    verify: Literal["checkpoint", "full"] = "checkpoint"


@app.get(role="viewer", query=TrailQuery, response=audit_report.AuditTrail, problems=(404,))
def read(ctx):
    """The trail (paged), the chain verified from its checkpoint and the page's
    snapshots checked; `?verify=full` checks the whole chain and every snapshot."""
    q = ctx.query
    return audit_report.trail(ctx.conn, ctx.uuid_param("planId"), q.limit, q.offset, full=q.verify == "full")
