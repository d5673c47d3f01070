"""GET /api/metrics: counts and durations per tool and status, Prometheus text (admin)."""

from lib.ops import metrics
from lib.web.endpoint import Endpoint, Reply

app = Endpoint("/api/metrics", tags=["system"])


@app.get(role="admin")
def read(ctx):
    """Prometheus text exposition format 0.0.4."""
    return Reply(200, metrics.exposition(ctx.conn), content_type=metrics.CONTENT_TYPE)
