"""Write a small backlog into the real database for one test.

    ids = seed_backlog(conn, "t1", {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"]})

Keys get the prefix (t1-A ...), the pack is the prefix, so tests sharing a
database never see each other's items. Returns key -> item id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

TOOLS = [
    # id, mutating, sensitive, approval_policy, rollback_template, cost_model, config
    ("t.read", False, False, None, None, {"usd_per_call": 0.01}, {"action": "echo"}),
    (
        "t.write",
        True,
        False,
        None,
        {"tool_id": "t.write", "inputs": {"undo": "{{inputs.target}}"}},
        {"usd_per_call": 0.02},
        {"action": "echo"},
    ),
    (
        "t.deploy",
        True,
        True,
        {"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"},
        {"tool_id": "t.deploy", "inputs": {"version": "{{inputs.previous}}"}},
        {"usd_per_call": 0.1},
        {"action": "echo"},
    ),
    ("t.noundo", True, False, None, None, {"usd_per_call": 0.0}, {"action": "echo"}),
    ("t.unpriced", False, False, None, None, None, {"action": "echo"}),
]


def ensure_tools(conn: Any) -> None:
    for tid, mutating, sensitive, policy, rollback, cost, config in TOOLS:
        conn.execute(
            "INSERT INTO tools (id, name, kind, config, mutating, sensitive, approval_policy, rollback_template, "
            "cost_model, default_duration_ms) VALUES (%s, %s, 'builtin', %s, %s, %s, %s, %s, %s, 1000) "
            "ON CONFLICT (id) DO NOTHING",
            (
                tid,
                tid,
                json.dumps(config),
                mutating,
                sensitive,
                json.dumps(policy) if policy else None,
                json.dumps(rollback) if rollback else None,
                json.dumps(cost) if cost else None,
            ),
        )


def seed_backlog(
    conn: Any,
    prefix: str,
    deps: Mapping[str, Sequence[str]],
    *,
    tool: str = "t.read",
    tools: Mapping[str, str] | None = None,
    status: Mapping[str, str] | None = None,
    priority: Mapping[str, int] | None = None,
    inputs: Mapping[str, dict] | None = None,
    extra_deps: Mapping[str, Sequence[str]] | None = None,
    pack: str | None = None,
) -> dict[str, str]:
    """Insert items (key -> keys it depends on). `extra_deps` adds raw ids (e.g. missing ones)."""
    ensure_tools(conn)
    pack = pack or prefix.lower()
    conn.execute("INSERT INTO packs (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (pack, pack))
    ids = {key: str(uuid.uuid4()) for key in deps}
    for key in deps:
        conn.execute(
            "INSERT INTO backlog_items (id, key, title, pack_id, tool_id, inputs, priority, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                ids[key],
                f"{prefix}-{key}",
                f"item {key}",
                pack,
                (tools or {}).get(key, tool),
                json.dumps((inputs or {}).get(key, {"target": key, "previous": "v0"})),
                (priority or {}).get(key, 3),
                (status or {}).get(key, "open"),
            ),
        )
    for key, needs in deps.items():
        dep_ids = [ids[n] for n in needs] + list((extra_deps or {}).get(key, []))
        if dep_ids:
            conn.execute("UPDATE backlog_items SET depends_on = %s::uuid[] WHERE id = %s", (dep_ids, ids[key]))
    return ids
