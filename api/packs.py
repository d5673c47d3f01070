"""GET /api/packs: the packs and how many open backlog items each holds (viewer)."""

from lib.plans import listing
from lib.web.endpoint import Endpoint

app = Endpoint("/api/packs", tags=["planner"])


@app.get(role="viewer", response=listing.PackList)
def read(ctx):
    """Packs to plan from."""
    return listing.list_packs(ctx.conn)
