"""Execution built for serverless, measured against the dev server as `make dev`
runs it (its own process, a pool of worker threads apart from the request
threads, as Vercel runs worker invocations apart from requests):

- answer: an approval decision's answer time while the step it frees sleeps
  8 s, and how long after the answer that step starts;
- fan-out: 20 plans, each four sequential 8 s steps, executed at once: each
  plan's time from its execute to its completion, and the makespan, beside
  the critical path (32 s).

    python -m bench.execution_bench [answer|fanout|all]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.common import dev_server, percentile, request, scratch_database, token

STEP_SECONDS = 8.0
FAN_OUT_PLANS = 20
STEPS_PER_PLAN = 4


def _tools(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tools (id, name, kind, config, cost_model) VALUES "
            "('bench.sleep', 'sleep', 'builtin', '{\"action\": \"sleep\"}', '{\"usd_per_call\": 0}'), "
            "('bench.gate', 'gate', 'builtin', '{\"action\": \"echo\"}', '{\"usd_per_call\": 0}')"
        )
        conn.execute(
            "UPDATE tools SET sensitive = true, "
            "approval_policy = '{\"required_approvals\": 1, \"timeout_seconds\": 3600}' WHERE id = 'bench.gate'"
        )


def _items(host: str, port: int, planner: str, pack: str, chain: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """A chain of items (each waits for the one before): (tool, inputs) each."""
    items = []
    for i, (tool, inputs) in enumerate(chain):
        item = {"key": f"{pack}-{i}", "title": f"step {i}", "tool_id": tool, "inputs": inputs}
        if i:
            item["depends_on"] = [f"{pack}-{i - 1}"]
        items.append(item)
    status, body = request(host, port, "POST", "/api/backlog", {"pack_id": pack, "items": items}, planner)
    assert status == 201, body
    return [i["id"] for i in body["items"]]


def _plan(host: str, port: int, planner: str, ids: list[str]) -> str:
    status, body = request(host, port, "POST", "/api/auto-planner/plan", {"backlog_item_ids": ids}, planner)
    assert status == 201, body
    return str(body["plan"]["id"])


def _wait(url: str, query: str, params: tuple[Any, ...], wanted: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        while True:
            rows = conn.execute(query, params).fetchall()
            if len(rows) >= wanted or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def answer(decisions: int = 12) -> dict[str, Any]:
    """Decide approvals whose step is followed by an 8 s step: the answer's
    latency, and how long after it the freed step starts."""
    with scratch_database("answer") as url:
        _tools(url)
        with dev_server(url, threads=8) as (host, port):
            planner, approver = token("planner"), token("approver")
            plans = []
            for n in range(decisions):
                chain = [("bench.gate", {"n": n}), ("bench.sleep", {"seconds": STEP_SECONDS})]
                plans.append(_plan(host, port, planner, _items(host, port, planner, f"ans{n}", chain)))
            for plan_id in plans:
                request(host, port, "POST", "/api/auto-planner/execute", {"plan_id": plan_id}, planner)
            pending = _wait(
                url, "SELECT id, plan_id FROM approvals WHERE status = 'pending'", (), decisions, timeout=60
            )
            latencies, starts = [], []
            for row in pending:
                sent = time.time()
                status, body = request(
                    host, port, "POST", f"/api/approvals/{row['id']}", {"decision": "approve"}, approver
                )
                answered = time.time()
                assert status == 200, body
                latencies.append(answered - sent)
                started = _wait(
                    url,
                    "SELECT s.started_at FROM plan_steps s WHERE s.plan_id = %s AND s.tool_id = 'bench.sleep' "
                    "AND s.started_at IS NOT NULL",
                    (row["plan_id"],),
                    1,
                    timeout=10,
                )
                starts.append(started[0]["started_at"].timestamp() - answered if started else float("nan"))
    return {"latencies": latencies, "starts": starts}


def fan_out() -> dict[str, Any]:
    """20 plans of four sequential 8 s steps, all executed at once."""
    with scratch_database("fanout") as url:
        _tools(url)
        # as many worker threads as Vercel would run invocations for these plans
        with dev_server(url, threads=8, extra_env={"NOFX_DEV_WORKERS": "64", "NOFX_DB_POOL_MAX": "24"}) as (
            host,
            port,
        ):
            planner = token("planner")
            chain = [("bench.sleep", {"seconds": STEP_SECONDS})] * STEPS_PER_PLAN
            plans = [
                _plan(host, port, planner, _items(host, port, planner, f"fan{n}-{uuid.uuid4().hex[:4]}", chain))
                for n in range(FAN_OUT_PLANS)
            ]
            executed = {}
            for plan_id in plans:
                executed[plan_id] = time.time()
                status, body = request(host, port, "POST", "/api/auto-planner/execute", {"plan_id": plan_id}, planner)
                assert status == 202, body
            done = _wait(
                url,
                "SELECT id::text AS id, updated_at FROM plans WHERE status = 'completed' AND id = ANY(%s::uuid[])",
                (plans,),
                len(plans),
                timeout=180,
            )
    durations = [row["updated_at"].timestamp() - executed[row["id"]] for row in done]
    makespan = max(r["updated_at"].timestamp() for r in done) - min(executed.values()) if done else float("nan")
    return {"durations": durations, "makespan": makespan, "completed": len(done), "plans": len(plans)}


def answer_table(result: dict[str, Any]) -> str:
    lat = [x * 1000 for x in result["latencies"]]
    starts = [x for x in result["starts"] if x == x]
    return "\n".join(
        [
            "| measure | p50 | p99 | max | goal |",
            "| --- | ---: | ---: | ---: | --- |",
            f"| decision answer, the freed step sleeps {STEP_SECONDS:.0f} s | {statistics.median(lat):.1f} ms | "
            f"{percentile(lat, 99):.1f} ms | {max(lat):.1f} ms | p50 < 50 ms |",
            f"| the freed step starts, after the answer | {statistics.median(starts) * 1000:.0f} ms | "
            f"{percentile(starts, 99) * 1000:.0f} ms | {max(starts) * 1000:.0f} ms | < 2 s |",
        ]
    )


def fan_out_table(result: dict[str, Any]) -> str:
    durations = sorted(result["durations"])
    critical = STEP_SECONDS * STEPS_PER_PLAN
    return "\n".join(
        [
            "| plans completed | each plan, execute to completed (p50 / max) | makespan | critical path | goal |",
            "| ---: | --- | ---: | ---: | --- |",
            f"| {result['completed']}/{result['plans']} | {statistics.median(durations):.1f} s / {max(durations):.1f} s"
            f" | {result['makespan']:.1f} s | {critical:.0f} s | every plan within 60 s |",
        ]
    )


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "all"
    if which in ("answer", "all"):
        print(answer_table(answer()), flush=True)
    if which in ("fanout", "all"):
        print(fan_out_table(fan_out()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
