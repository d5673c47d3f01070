"""Plans for the plan page's browser tests, made as a planner would: backlog
items in the database (one batch insert for the big one), then
POST /api/auto-planner/plan through the real endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.backlog import ensure_tools, seed_backlog
from tests.support.wsgi_client import Client

BIG_STEPS = 1500
BIG_WIDTH = 13  # item i waits for item i-13: 13 chains, 13 steps a stage -> ceil(1500 / 13) = 116 stages
BIG_STAGES = -(-BIG_STEPS // BIG_WIDTH)


def insert_items(conn: Any, pack: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Backlog items in one batch: each row {key, title, deps: [keys], tool?, environment?}.
    Returns key -> id."""
    ensure_tools(conn)
    conn.execute("INSERT INTO packs (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (pack, pack))
    ids = {r["key"]: str(uuid.uuid4()) for r in rows}
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO backlog_items (id, key, title, pack_id, tool_id, inputs, priority, status, depends_on, "
            "environment) VALUES (%s, %s, %s, %s, %s, %s, 3, 'open', %s::uuid[], %s)",
            [
                (
                    ids[r["key"]],
                    r["key"],
                    r["title"],
                    pack,
                    r.get("tool", "t.read"),
                    json.dumps({"target": r["key"]}),
                    [ids.get(d) or d for d in r.get("deps", [])],
                    r.get("environment"),
                )
                for r in rows
            ],
        )
    return ids


def plan_packs(client: Client, token: str, packs: Sequence[str], **options: Any) -> dict[str, Any]:
    r = client.post("/api/auto-planner/plan", json={"pack_ids": list(packs), "options": options}, token=token)
    assert r.status == 201, r.text
    return r.json()


def big_plan(client: Client, tokens: Mapping[str, str], conn: Any, prefix: str) -> dict[str, Any]:
    """1,500 steps in 116 stages: item i (1-based) comes after item i-13."""
    rows = [
        {
            "key": f"{prefix}-{i}",
            "title": f"Migrate shard {i}",
            "deps": [f"{prefix}-{i - BIG_WIDTH}"] if i > BIG_WIDTH else [],
        }
        for i in range(1, BIG_STEPS + 1)
    ]
    insert_items(conn, prefix, rows)
    body = plan_packs(client, tokens["planner"], [prefix], max_parallel=BIG_WIDTH)
    assert body["steps_total"] == BIG_STEPS and body["plan"]["totals"]["stages"] == BIG_STAGES, body["plan"]["totals"]
    return body


def gate_blocked_plan(client: Client, tokens: Mapping[str, str], conn: Any, prefix: str) -> dict[str, Any]:
    """A -> P where P changes production through a mutating tool nobody approves:
    the risk gate blocks the plan."""
    seed_backlog(conn, prefix, {"A": [], "P": ["A"]}, tools={"P": "t.write"})
    conn.execute("UPDATE backlog_items SET environment = 'production' WHERE key = %s", (f"{prefix}-P",))
    body = plan_packs(client, tokens["planner"], [prefix])
    assert body["plan"]["status"] == "blocked", body["plan"]
    return body
