"""Approvals: decision latency (p50, p99) and throughput with 16 concurrent
clients over HTTP against the local dev server (its own process), beside the
raw rate of the same row-locked UPDATE issued directly through psycopg, in
the same run. Beside them, the HTTP stack's own ceiling: the same clients
calling GET /api/health (one trivial query) on the same server.

    python -m bench.approvals_bench [decisions]
"""

from __future__ import annotations

import http.client
import json
import sys
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import dev_server, fan_out, median_ms, percentile, request, scratch_database, token
from lib.approvals import asking
from lib.data import db
from lib.planner import create, views
from lib.planner.models import ApprovalPolicy
from lib.web import auth

CLIENTS = 16
STEPS_PER_PLAN = 10


def prepare(url: str, count: int) -> list[str]:
    """count pending step approvals, spread over plans of ten steps."""
    db.use(url)
    planner = auth.principal_from_claims(auth.verify_token(token("planner")))
    ids: list[str] = []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO tools (id, name, kind, config, sensitive, approval_policy, cost_model) VALUES "
            "('bench.gate', 'bench gate', 'builtin', '{\"action\": \"noop\"}', true, "
            '\'{"required_approvals": 1, "timeout_seconds": 3600}\', \'{"usd_per_call": 0}\')'
        )
        conn.execute("INSERT INTO packs (id, name) VALUES ('bench', 'bench')")
        conn.commit()
        for p in range((count + STEPS_PER_PLAN - 1) // STEPS_PER_PLAN):
            for i in range(STEPS_PER_PLAN):
                conn.execute(
                    "INSERT INTO backlog_items (key, title, pack_id, tool_id, inputs) VALUES "
                    "(%s, %s, 'bench', 'bench.gate', %s)",
                    (f"B{p}-{i}", f"step {i}", json.dumps({"i": i})),
                )
            item_ids = [
                r["id"]
                for r in conn.execute("SELECT id::text AS id FROM backlog_items WHERE key LIKE %s", (f"B{p}-%",))
            ]
            request = views.PlanRequest(backlog_item_ids=item_ids)
            _, created = create.create(conn, request, planner, None)
            plan_id = created.plan.id
            conn.execute(
                "UPDATE plans SET executed_by = 'planner', executed_by_sub = %s WHERE id = %s",
                (planner.subject, plan_id),
            )
            plan = conn.execute("SELECT * FROM plans WHERE id = %s", (plan_id,)).fetchone()
            for step in conn.execute("SELECT * FROM plan_steps WHERE plan_id = %s", (plan_id,)).fetchall():
                row = asking.request(conn, plan, step, None, ApprovalPolicy())
                ids.append(str(row["id"]))
            conn.commit()
    return ids[:count]


def http_decisions(host: str, port: int, approval_ids: list[str]) -> tuple[list[float], float, int]:
    """CLIENTS clients, each on a kept-alive connection, each deciding its share."""
    approver = auth.mint_token("approver", subject=str(uuid.uuid4()), email="bench-approver@nofx.local")
    body = {"decision": "approve", "reason": "bench"}

    def decide(conn: http.client.HTTPConnection, approval_id: str) -> int:
        return request(host, port, "POST", f"/api/approvals/{approval_id}", body, approver, conn=conn)[0]

    latencies, elapsed, statuses = fan_out(
        CLIENTS, approval_ids, lambda: http.client.HTTPConnection(host, port, timeout=60), decide
    )
    return latencies, elapsed, sum(1 for s in statuses if s != 200)


def http_ceiling(host: str, port: int, calls: int) -> tuple[list[float], float]:
    """What the server does with nothing to decide: one trivial query per request."""
    latencies, elapsed, _ = fan_out(
        CLIENTS,
        range(calls),
        lambda: http.client.HTTPConnection(host, port, timeout=60),
        lambda conn, _: request(host, port, "GET", "/api/health", conn=conn),
    )
    return latencies, elapsed


def raw_updates(url: str, approval_ids: list[str]) -> tuple[list[float], float]:
    """The floor: the same row lock and UPDATE, straight through psycopg."""

    def decide(conn: psycopg.Connection, approval_id: str) -> None:
        with conn.transaction():
            conn.execute("SELECT status FROM approvals WHERE id = %s FOR UPDATE", (approval_id,))
            conn.execute(
                "UPDATE approvals SET status = 'approved', decided_at = now(), "
                "decision_reason = 'raw' WHERE id = %s AND status = 'pending'",
                (approval_id,),
            )

    latencies, elapsed, _ = fan_out(
        CLIENTS, approval_ids, lambda: psycopg.connect(url, prepare_threshold=None, autocommit=True), decide
    )
    return latencies, elapsed


def run(decisions: int = 1000) -> dict[str, Any]:
    with scratch_database("approvals") as url:
        ids = prepare(url, decisions * 2)
        through_http, direct = ids[:decisions], ids[decisions:]
        with dev_server(url, threads=CLIENTS) as (host, port):
            lat, elapsed, errors = http_decisions(host, port, through_http)
            health_lat, health_elapsed = http_ceiling(host, port, decisions)
        raw_lat, raw_elapsed = raw_updates(url, direct)
        db.use(None)
    return {
        "decisions": decisions,
        "clients": CLIENTS,
        "errors": errors,
        "http_p50_ms": median_ms(lat),
        "http_p99_ms": percentile(lat, 0.99) * 1000,
        "http_rate": decisions / elapsed,
        "health_p50_ms": median_ms(health_lat),
        "health_p99_ms": percentile(health_lat, 0.99) * 1000,
        "health_rate": decisions / health_elapsed,
        "raw_p50_ms": median_ms(raw_lat),
        "raw_p99_ms": percentile(raw_lat, 0.99) * 1000,
        "raw_rate": decisions / raw_elapsed,
    }


def table(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| path | decisions | p50 | p99 | throughput |",
            "| --- | ---: | ---: | ---: | ---: |",
            f"| POST /api/approvals/:id over HTTP ({r['clients']} clients) | {r['decisions']:,} | "
            f"{r['http_p50_ms']:.1f} ms | {r['http_p99_ms']:.1f} ms | {r['http_rate']:.0f}/s |",
            f"| GET /api/health over HTTP, the stack's ceiling ({r['clients']} clients) | {r['decisions']:,} | "
            f"{r['health_p50_ms']:.1f} ms | {r['health_p99_ms']:.1f} ms | {r['health_rate']:.0f}/s |",
            f"| raw row-locked UPDATE via psycopg ({r['clients']} clients) | {r['decisions']:,} | "
            f"{r['raw_p50_ms']:.1f} ms | {r['raw_p99_ms']:.1f} ms | {r['raw_rate']:.0f}/s |",
            f"| ratio (HTTP / raw throughput) | | | | {100 * r['http_rate'] / r['raw_rate']:.0f}% |",
        ]
    ) + (f"\n\n{r['errors']} decisions failed" if r["errors"] else "")


if __name__ == "__main__":
    print(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)))
