"""POST /api/backlog: add items to a pack, dependencies by key (planner)."""

from lib.planner import backlog
from lib.web.endpoint import Endpoint

app = Endpoint("/api/backlog", tags=["planner"])


@app.post(
    role="planner",
    body=backlog.NewItems,
    response=backlog.CreatedItems,
    status=201,
    problems=(409, 422),
    connection="pipelined",  # reads in one round trip, writes in another
)
def create(ctx):
    """Create backlog items in one transaction; unknown tools and dependencies are 422s naming them."""
    return backlog.create(ctx.conn, ctx.body, ctx.principal)
