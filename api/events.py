"""GET /api/events: events after a cursor, oldest first (viewer).

`?after=ID&plan_id=&type=&limit=`; pass the last id you saw as `after`.
"""

from uuid import UUID

from pydantic import BaseModel, Field

from lib.trail import events
from lib.web.endpoint import Endpoint

app = Endpoint("/api/events", tags=["events"])


class EventQuery(BaseModel):
    after: int | None = Field(default=None, ge=0, le=2**63 - 1, description="the id of the last event you have")
    plan_id: UUID | None = None
    type: str | None = Field(default=None, pattern=r"^[a-z_]+\.[a-z_]+$")
    limit: int = Field(default=100, ge=1, le=1000)
    tail: bool = Field(default=False, description="return no events, only the cursor to follow from now on")


@app.get(role="viewer", query=EventQuery, response=events.EventPage)
def read(ctx):
    """Events in the order they can no longer be overtaken (a safe cursor)."""
    q = ctx.query
    if q.tail:
        return events.tail(ctx.conn)
    return events.page(ctx.conn, q.after, q.plan_id, q.type, q.limit)
