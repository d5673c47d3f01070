"""GET /api/health: is the database reachable, and which migrations are applied."""

from lib.ops import health
from lib.web.endpoint import Endpoint

app = Endpoint("/api/health", tags=["system"])


@app.get(public=True, response=health.Health)
def read(ctx):
    """Database reachability and the applied migrations."""
    return health.check()
