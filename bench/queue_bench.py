"""The approval queue at a team's scale: `GET /api/approvals` over HTTP with
500 pending requests (50 plans of ten), page sizes 50 and 100, a page deep
in the queue, a search, a filter and the nav badge's count (`limit=1`);
beside them, in the same run, the queue's SQL alone with and without the
context columns (each request's past, overrides, rollback, releases), so the
price of showing a request's past is its own figure. Medians.

    .venv/bin/python -m bench.queue_bench [pending]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.approvals_bench import prepare
from bench.common import dev_server, request, scratch_database, token
from lib.approvals import views
from lib.approvals.context import CONTEXT_SQL

ROUNDS = 9


def _median_ms(call: Any) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def run(pending: int = 500) -> dict[str, Any]:
    with scratch_database("queue") as url:
        prepare(url, pending)
        viewer = token("viewer")
        rows: dict[str, Any] = {}
        with dev_server(url) as (host, port):
            reads = {
                "page of 50": "/api/approvals?limit=50",
                "page of 100": "/api/approvals?limit=100",
                "page of 100 at offset 400": "/api/approvals?limit=100&offset=400",
                "search q=B4- (one plan)": "/api/approvals?q=B4-&limit=100",
                "filter pack=bench, page of 100": "/api/approvals?pack=bench&limit=100",
                "badge count (limit=1)": "/api/approvals?limit=1",
            }
            for label, path in reads.items():
                status, body = request(host, port, "GET", path, token=viewer)
                assert status == 200, body
                rows[label] = (_median_ms(lambda p=path: request(host, port, "GET", p, token=viewer)), body["total"])
        bare = views.QUEUE.replace(CONTEXT_SQL, "NULL AS past, NULL AS overrides")
        params = {"status": "pending", "plan": None, "tool": None, "pack": None, "q": None, "limit": 100, "offset": 0}
        with psycopg.connect(url, row_factory=dict_row) as conn:
            with_context = _median_ms(lambda: conn.execute(views.QUEUE, params).fetchall())
            without = _median_ms(lambda: conn.execute(bare, params).fetchall())
        return {"pending": pending, "http": rows, "sql": (with_context, without)}


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['pending']} pending approvals",
        "",
        "| GET /api/approvals | median ms | total |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {label} | {ms:.1f} | {total} |" for label, (ms, total) in result["http"].items()]
    with_context, without = result["sql"]
    lines += [
        "",
        "| the queue's SQL, page of 100 | median ms |",
        "| --- | ---: |",
        f"| with each request's past, overrides, rollback, releases | {with_context:.1f} |",
        f"| without them | {without:.1f} |",
        f"| ratio | {with_context / without:.2f}x |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 500)))
