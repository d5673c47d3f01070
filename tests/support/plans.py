"""Build plans for execution tests: tools of the test's own (webhook tools on
a loopback ToolServer, builtins), items, the plan through the real endpoint."""

from __future__ import annotations

import json
from typing import Any

from tests.support.backlog import seed_backlog
from tests.support.wsgi_client import Client

# an approval policy: one approver, an hour to answer
ONE = {"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"}


def webhook_tool(
    conn: Any,
    tool_id: str,
    url: str,
    *,
    mutating: bool = False,
    approval: dict | None = None,
    rollback: dict | None = None,
    retries: int = 1,
    timeout: float = 5.0,
) -> None:
    conn.execute(
        "INSERT INTO tools (id, name, kind, config, mutating, sensitive, approval_policy, rollback_template, "
        "cost_model, default_duration_ms) VALUES (%s, %s, 'webhook', %s, %s, %s, %s, %s, %s, 100) "
        "ON CONFLICT (id) DO UPDATE SET config = EXCLUDED.config, approval_policy = EXCLUDED.approval_policy, "
        "rollback_template = EXCLUDED.rollback_template, mutating = EXCLUDED.mutating",
        (
            tool_id,
            tool_id,
            json.dumps({"url": url, "retries": retries, "timeout_seconds": timeout}),
            mutating,
            approval is not None,
            json.dumps(approval) if approval else None,
            json.dumps(rollback) if rollback else None,
            json.dumps({"usd_per_call": 0.001}),
        ),
    )


def builtin_tool(
    conn: Any,
    tool_id: str,
    action: str,
    *,
    approval: dict | None = None,
    mutating: bool = False,
    rollback: dict | None = None,
) -> None:
    conn.execute(
        "INSERT INTO tools (id, name, kind, config, mutating, sensitive, approval_policy, rollback_template, "
        "cost_model, default_duration_ms) VALUES (%s, %s, 'builtin', %s, %s, %s, %s, %s, %s, 10) "
        "ON CONFLICT (id) DO UPDATE SET approval_policy = EXCLUDED.approval_policy",
        (
            tool_id,
            tool_id,
            json.dumps({"action": action}),
            mutating,
            approval is not None,
            json.dumps(approval) if approval else None,
            json.dumps(rollback) if rollback else None,
            json.dumps({"usd_per_call": 0}),
        ),
    )


def make_plan(
    client: Client,
    token: str,
    conn: Any,
    prefix: str,
    deps: dict[str, list[str]],
    *,
    options: dict | None = None,
    **seed: Any,
) -> dict[str, Any]:
    seed_backlog(conn, prefix, deps, **seed)
    r = client.post(
        "/api/auto-planner/plan", json={"pack_ids": [prefix.lower()], "options": options or {}}, token=token
    )
    assert r.status == 201, r.text
    return r.json()


def run_plan(client: Client, token: str, plan_id: str) -> dict[str, Any]:
    """Execute and return the plan as it stands after its work. The answer
    comes at once (202); the worker it dispatches runs after the answer, from
    the response's close(), which the in-process client calls before it
    returns: by then the plan has run as far as it can."""
    r = client.post("/api/auto-planner/execute", json={"plan_id": plan_id}, token=token)
    assert r.status == 202, r.text
    plan: dict[str, Any] = client.get(f"/api/plans/{plan_id}", token=token).json()["plan"]
    return plan


def steps_by_key(client: Client, token: str, plan_id: str) -> dict[str, dict[str, Any]]:
    body = client.get(f"/api/plans/{plan_id}", token=token).json()
    return {s["item_key"].split("-", 1)[1]: s for s in body["steps"]}


def executed_plan(client: Client, tokens: dict[str, str], conn: Any, prefix: str) -> str:
    """A -> B on an echo tool of its own, executed to completion; the plan id."""
    builtin_tool(conn, f"echo.{prefix}", "echo")
    body = make_plan(client, tokens["planner"], conn, prefix, {"A": [], "B": ["A"]}, tool=f"echo.{prefix}")
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "completed"
    return str(plan_id)
