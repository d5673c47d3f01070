"""Reading a long audit trail: `GET /api/audit/:planId?limit=50` at 20,000
entries with no checkpoint (the whole chain verified, as every read did
before), with `?verify=full`, and after the tick's checkpoint (only the
checkpointed entry and what follows are verified), side by side, medians.

    .venv/bin/python -m bench.audit_bench [entries]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from contextlib import nullcontext
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import dev_server, request, scratch_database, token
from lib.trail import audit, checkpoints


def _seed(url: str, entries: int) -> str:
    plan_id = str(uuid.uuid4())
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO plans (id, input_fingerprint, created_by, created_by_sub, status) "
            "VALUES (%s, %s, 'bench', 'bench', 'completed')",
            (plan_id, f"bench-{plan_id}"),
        )
        for n in range(entries):
            audit.record(conn, actor="bench", action="step.succeeded", plan_id=plan_id, details={"n": n})
    return plan_id


def run(entries: int = 20_000, rounds: int = 7) -> dict[str, Any]:
    with scratch_database("audit") as url, dev_server(url) as (host, port):
        plan_id = _seed(url, entries)
        viewer = token("viewer")

        def timed(query: str) -> float:
            started = time.perf_counter()
            status, body = request(host, port, "GET", f"/api/audit/{plan_id}{query}", token=viewer)
            elapsed = (time.perf_counter() - started) * 1000
            assert status == 200 and body["chain"]["ok"], body
            return elapsed

        samples: dict[str, list[float]] = {"no checkpoint": [], "verify=full": [], "after checkpoint": []}
        timed("?limit=50")  # warm
        for _ in range(rounds):
            samples["no checkpoint"].append(timed("?limit=50"))
            samples["verify=full"].append(timed("?limit=50&verify=full"))
        started = time.perf_counter()
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            advanced = checkpoints.advance(lambda: nullcontext(conn))
        tick_ms = (time.perf_counter() - started) * 1000
        for _ in range(rounds):
            samples["after checkpoint"].append(timed("?limit=50"))
    return {"entries": entries, "samples": samples, "tick_ms": tick_ms, "tick_entries": advanced.entries}


def table(result: dict[str, Any]) -> str:
    medians = {k: statistics.median(v) for k, v in result["samples"].items()}
    base = medians["no checkpoint"]
    lines = [
        f"| GET /api/audit/:id?limit=50 at {result['entries']:,} entries | median | vs no checkpoint |",
        "| --- | ---: | ---: |",
    ]
    for name, ms in medians.items():
        lines.append(f"| {name} | {ms:.1f} ms | {ms / base:.2f}× |")
    lines.append(
        f"| the tick's first checkpoint of that chain | {result['tick_ms']:.0f} ms"
        f" | ({result['tick_entries']:,} entries) |"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    print(table(run(int(argv[0]) if argv else 20_000)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
