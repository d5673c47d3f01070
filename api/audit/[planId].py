"""GET /api/audit/:planId: a plan's audit trail, the chain check and the
snapshots (signed links, digests verified) (viewer)."""

from pydantic import BaseModel, Field

from lib.trail import audit_report
from lib.web.endpoint import Endpoint

app = Endpoint("/api/audit/{planId}", tags=["audit"])


class TrailQuery(BaseModel):
    limit: int = Field(default=500, ge=1, le=5000)
    offset: int = Field(default=0, ge=0, le=2**31 - 1)


@app.get(role="viewer", query=TrailQuery, response=audit_report.AuditTrail, problems=(404,))
def read(ctx):
    """The trail (paged), with the whole chain and every snapshot verified."""
    return audit_report.trail(ctx.conn, ctx.uuid_param("planId"), ctx.query.limit, ctx.query.offset)
