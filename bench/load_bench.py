"""Load: 200 plans and 1,000 approval decisions from 16 concurrent clients
against the local dev server (its own process), then the checks that matter
more than speed: nothing lost, no step run twice, every audit chain intact.

    python -m bench.load_bench [plans] [approvals_per_plan]
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import dev_server, fan_out, median_ms, percentile, request, scratch_database
from lib.trail import audit
from lib.web import auth

CLIENTS = 16


def prepare(url: str, plans: int, gated: int) -> list[list[str]]:
    """Per plan: `gated` independent steps that need an approval, then one
    step that waits for all of them."""
    groups = []
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO tools (id, name, kind, config, sensitive, approval_policy, cost_model) VALUES "
            "('load.gate', 'gated', 'builtin', '{\"action\": \"echo\"}', true, "
            '\'{"required_approvals": 1, "timeout_seconds": 3600}\', \'{"usd_per_call": 0}\'), '
            "('load.echo', 'echo', 'builtin', '{\"action\": \"echo\"}', false, NULL, '{\"usd_per_call\": 0}')"
        )
        conn.execute("INSERT INTO packs (id, name) VALUES ('load', 'load')")
        for p in range(plans):
            ids = [str(uuid.uuid4()) for _ in range(gated + 1)]
            for i, item_id in enumerate(ids[:-1]):
                conn.execute(
                    "INSERT INTO backlog_items (id, key, title, pack_id, tool_id, inputs) VALUES "
                    "(%s, %s, 'gated', 'load', 'load.gate', %s)",
                    (item_id, f"L{p}-{i}", json.dumps({"i": i})),
                )
            conn.execute(
                "INSERT INTO backlog_items (id, key, title, pack_id, tool_id, depends_on) VALUES "
                "(%s, %s, 'after', 'load', 'load.echo', %s::uuid[])",
                (ids[-1], f"L{p}-end", ids[:-1]),
            )
            groups.append(ids)
        conn.commit()
    return groups


def run_against(url: str, host: str, port: int, plans: int, gated: int) -> dict[str, Any]:
    groups = prepare(url, plans, gated)
    planner = auth.mint_token("planner", email="load-planner@nofx.local", subject=str(uuid.uuid4()))
    approver = auth.mint_token("approver", email="load-approver@nofx.local", subject=str(uuid.uuid4()))
    plan_ids: list[str] = []
    lock = threading.Lock()

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(host, port, timeout=120)

    def post(conn: http.client.HTTPConnection, path: str, body: Any, token: str) -> tuple[int, Any]:
        return request(host, port, "POST", path, body, token, conn=conn)

    def plan(conn: http.client.HTTPConnection, ids: list[str]) -> int:
        status, body = post(conn, "/api/auto-planner/plan", {"backlog_item_ids": ids}, planner)
        if status == 201:
            with lock:
                plan_ids.append(body["plan"]["id"])
        return status

    def execute(conn: http.client.HTTPConnection, plan_id: str) -> int:
        return post(conn, "/api/auto-planner/execute", {"plan_id": plan_id}, planner)[0]

    phases: dict[str, Any] = {}
    phases["plan"] = fan_out(CLIENTS, groups, connect, plan)
    phases["execute"] = fan_out(CLIENTS, list(plan_ids), connect, execute)
    # execute answers at once; the workers it dispatched ask for the approvals
    pending = wait_for(
        url, "SELECT id FROM approvals WHERE status = 'pending' ORDER BY requested_at", len(plan_ids) * gated
    )
    phases["approve"] = fan_out(
        CLIENTS,
        pending,
        connect,
        lambda c, aid: post(c, f"/api/approvals/{aid}", {"decision": "approve", "reason": "load"}, approver)[0],
    )
    # each approval dispatched a worker for its plan: wait for them to finish
    wait_for(url, "SELECT id FROM plans WHERE status = 'completed' AND id = ANY(%s::uuid[])", len(plan_ids), plan_ids)
    return {"phases": phases, "checks": verify(url, plan_ids, plans, gated, len(pending))}


def wait_for(url: str, query: str, wanted: int, *params: Any, timeout: float = 120.0) -> list[str]:
    """The query's ids once it returns `wanted` of them (or when time is up)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        while True:
            ids = [str(r["id"]) for r in conn.execute(query, params or None)]
            if len(ids) >= wanted or time.monotonic() > deadline:
                return ids
            time.sleep(0.05)


def verify(url: str, plan_ids: list[str], plans: int, gated: int, approvals: int) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        statuses = {
            r["status"]: r["n"]
            for r in conn.execute(
                "SELECT status, count(*) AS n FROM plans WHERE id = ANY(%s::uuid[]) GROUP BY status", (plan_ids,)
            )
        }
        steps = conn.execute(
            "SELECT count(*) AS steps, count(*) FILTER (WHERE attempts = 1) AS once, "
            "count(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM plan_steps "
            "WHERE plan_id = ANY(%s::uuid[])",
            (plan_ids,),
        ).fetchone()
        runs = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT step_id) AS distinct_steps FROM tool_metrics "
            "WHERE plan_id = ANY(%s::uuid[])",
            (plan_ids,),
        ).fetchone()
        decided = conn.execute(
            "SELECT count(*) AS n FROM approvals WHERE plan_id = ANY(%s::uuid[]) AND status = 'approved'", (plan_ids,)
        ).fetchone()["n"]
        chains = audit.verify_all(conn)
    return {
        "plans_created": len(plan_ids),
        "plans_wanted": plans,
        "plans_completed": statuses.get("completed", 0),
        "plan_statuses": statuses,
        "approvals_requested": approvals,
        "approvals_approved": decided,
        "approvals_wanted": plans * gated,
        "steps": steps["steps"],
        "steps_succeeded": steps["succeeded"],
        "steps_run_once": steps["once"],
        "tool_runs": runs["n"],
        "tool_runs_distinct_steps": runs["distinct_steps"],
        "chains": len(chains),
        "chains_broken": sum(1 for c in chains if not c.ok),
    }


def run(plans: int = 200, gated: int = 5) -> dict[str, Any]:
    with scratch_database("load") as url, dev_server(url, threads=CLIENTS) as (host, port):
        return run_against(url, host, port, plans, gated)


def report(result: dict[str, Any]) -> str:
    lines = ["| phase | requests | non-2xx | throughput | p50 | p99 |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, (lat, elapsed, statuses) in result["phases"].items():
        bad = sum(1 for s in statuses if not 200 <= s < 300)
        lines.append(
            f"| {name} | {len(lat):,} | {bad} | {len(lat) / elapsed:.0f}/s | {median_ms(lat):.0f} ms | "
            f"{percentile(lat, 0.99) * 1000:.0f} ms |"
        )
    c = result["checks"]
    lines += [
        "",
        f"plans: {c['plans_created']}/{c['plans_wanted']} created, {c['plans_completed']} completed; "
        f"approvals: {c['approvals_approved']}/{c['approvals_wanted']} approved; steps: {c['steps_succeeded']}/"
        f"{c['steps']} succeeded, {c['steps_run_once']} ran exactly once, {c['tool_runs']} tool runs for "
        f"{c['tool_runs_distinct_steps']} steps; audit chains: {c['chains']} verified, "
        f"{c['chains_broken']} broken",
    ]
    return "\n".join(lines)


def failed_checks(c: dict[str, Any]) -> list[str]:
    """What went wrong, in words; empty when nothing was lost or run twice."""
    wrong = []
    if c["plans_created"] != c["plans_wanted"] or c["plans_completed"] != c["plans_wanted"]:
        wrong.append("not every plan was created and completed")
    if c["approvals_approved"] != c["approvals_wanted"]:
        wrong.append("not every approval was approved")
    if not c["steps"] or c["steps_succeeded"] != c["steps"] or c["steps_run_once"] != c["steps"]:
        wrong.append("not every step succeeded exactly once")
    if c["tool_runs"] != c["steps"] or c["tool_runs_distinct_steps"] != c["steps"]:
        wrong.append("tool runs do not match steps one to one")
    if c["chains_broken"]:
        wrong.append("an audit chain is broken")
    return wrong


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    result = run(*args)
    print(report(result))
    problems = failed_checks(result["checks"])
    if problems:
        sys.exit("load checks failed: " + "; ".join(problems))
