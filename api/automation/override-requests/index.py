"""POST /api/automation/override-requests: a planner asks an admin for an override (planner).
GET /api/automation/override-requests: the requests, newest first (viewer).

`{plan_id, action?: allow|skip|retry|cancel|rollback (allow), step_id?, gate?, reason}`;
201 the request (an open one for the same thing: 200 as it stands).
`?status=open|granted|declined|all`, `?plan_id=`, `?limit=`.
"""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from lib.plans import override_requests
from lib.web.endpoint import Endpoint, Reply

app = Endpoint("/api/automation/override-requests", tags=["automation"])


class ListQuery(BaseModel):
    status: Literal["open", "granted", "declined", "all"] = "open"
    plan_id: UUID | None = None
    limit: int = Field(default=100, ge=1, le=500)


@app.get(role="viewer", query=ListQuery, response=override_requests.RequestList)
def read(ctx):
    """Override requests by status and plan."""
    q = ctx.query
    return override_requests.listing(ctx.conn, None if q.status == "all" else q.status, q.plan_id, q.limit)


@app.post(
    role="planner",
    body=override_requests.AskBody,
    response=override_requests.OverrideRequestView,
    status=201,
    problems=(409, 422),
    connection="pipelined",  # the request, its event and audit entry: two round trips
)
def ask(ctx):
    """Ask for an override of a blocked plan, with a reason an admin reads."""
    view, new = override_requests.ask(ctx.conn, ctx.body, ctx.principal)
    return view if new else Reply(200, view)
