"""Executing plans on the real PostgreSQL with real (loopback) webhook tools:
order, parallelism, failures with and without rollback, concurrent executes,
a crashed worker's step retried with the same token, the flag."""

from __future__ import annotations

import threading
import time

from lib.executor import recording, runner, running
from tests.support.events import event_types
from tests.support.plans import builtin_tool, make_plan, run_plan, steps_by_key, webhook_tool
from tests.support.wsgi_client import Client

EXECUTE = "/api/auto-planner/execute"


def after_execute(client: Client, tokens, plan_id: str) -> dict:
    """Execute, then the plan and its steps as the worker left them."""
    run_plan(client, tokens["planner"], plan_id)
    return client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()


def execute(client: Client, token: str, plan_id: str):
    return client.post(EXECUTE, json={"plan_id": plan_id}, token=token)


def test_steps_run_in_dependency_order_through_the_webhook(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.order", tool_server.url)
    body = make_plan(
        client, tokens["planner"], conn, "exo", {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"]}, tool="hook.order"
    )
    r = after_execute(client, tokens, body["plan"]["id"])
    assert r["plan"]["status"] == "completed"
    assert {s["status"] for s in r["steps"]} == {"succeeded"}
    order = [c["body"]["item_key"] for c in tool_server.calls]
    assert order[0] == "exo-A" and order[-1] == "exo-D"
    tokens_sent = {c["body"]["item_key"]: c["key"] for c in tool_server.calls}
    planned = {s["item_key"]: s["idempotency_token"] for s in body["steps"]}
    assert tokens_sent == planned  # each tool saw its step's token as Idempotency-Key
    metrics = conn.execute("SELECT count(*) AS n FROM tool_metrics WHERE tool_id = 'hook.order'").fetchone()["n"]
    assert metrics == 4
    items = conn.execute("SELECT DISTINCT status FROM backlog_items WHERE pack_id = 'exo'").fetchall()
    assert [r["status"] for r in items] == ["done"]


def test_parallelism_is_bounded_by_max_parallel(client: Client, tokens, conn, tool_server) -> None:
    tool_server.delay = 0.3
    webhook_tool(conn, "hook.wide", tool_server.url)
    body = make_plan(
        client, tokens["planner"], conn, "exw", {k: [] for k in "ABCDEF"}, tool="hook.wide", options={"max_parallel": 2}
    )
    assert run_plan(client, tokens["planner"], body["plan"]["id"])["status"] == "completed"
    assert tool_server.max_in_flight == 2


def test_a_failing_step_fails_the_plan(client: Client, tokens, conn, tool_server) -> None:
    tool_server.statuses = [200, 400]  # the second call is refused (a 4xx is not retried)
    webhook_tool(conn, "hook.fail", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
    body = make_plan(client, tokens["planner"], conn, "exf", {"A": [], "B": ["A"], "C": ["B"]}, tool="hook.fail")
    r = after_execute(client, tokens, body["plan"]["id"])
    assert r["plan"]["status"] == "failed"
    steps = {s["item_key"]: s for s in r["steps"]}
    assert (steps["exf-A"]["status"], steps["exf-B"]["status"], steps["exf-C"]["status"]) == (
        "succeeded",
        "failed",
        "pending",
    )
    assert "HTTP 400" in steps["exf-B"]["error"] and "failed" in r["plan"]["status_reason"]


def test_a_failing_step_rolls_back_the_succeeded_ones_in_reverse(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.rb", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
    builtin_tool(conn, "fail.rb", "fail")
    body = make_plan(
        client,
        tokens["planner"],
        conn,
        "exr",
        {"A": [], "B": ["A"], "X": ["B"]},
        tool="hook.rb",
        tools={"X": "fail.rb"},
        options={"rollback_on_failure": True},
    )
    r = after_execute(client, tokens, body["plan"]["id"])
    assert r["plan"]["status"] == "rolled_back"
    steps = {s["item_key"]: s["status"] for s in r["steps"]}
    assert steps == {"exr-A": "rolled_back", "exr-B": "rolled_back", "exr-X": "failed"}
    undo_calls = [c for c in tool_server.calls if c["key"].endswith("-rollback")]
    assert [c["body"]["inputs"] for c in undo_calls] == [{"undo": "B"}, {"undo": "A"}]  # last first
    events = event_types(client, tokens["viewer"], body["plan"]["id"], lambda t: "plan.rolled_back" in t)
    assert events.count("step.rolled_back") == 2 and events[-1] == "plan.rolled_back"


def test_a_step_started_near_the_end_of_the_budget_gets_its_own_timeout(
    client: Client, tokens, conn, tool_server
) -> None:
    webhook_tool(conn, "hook.bud", tool_server.url, retries=0)
    body = make_plan(client, tokens["planner"], conn, "exq", {"A": [], "B": ["A"]}, tool="hook.bud")
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    tool_server.delay = 0.5  # longer than the budget left, well within the step timeout
    outcome = runner.advance(plan_id, 0.2)  # as the cron tick runs a plan with 0.2 s of its budget left
    steps = {k: s["status"] for k, s in steps_by_key(client, tokens["viewer"], plan_id).items()}
    assert (outcome.succeeded, outcome.failed) == (1, 0)
    assert steps == {"A": "succeeded", "B": "pending"}  # A finished; B waits for the next call


def test_two_concurrent_executes_run_each_step_once(client: Client, tokens, conn, tool_server) -> None:
    tool_server.delay = 0.2
    webhook_tool(conn, "hook.twice", tool_server.url)
    body = make_plan(
        client,
        tokens["planner"],
        conn,
        "ex2",
        {k: [] for k in "ABCDEFGH"},
        tool="hook.twice",
        options={"max_parallel": 3},
    )
    plan_id = body["plan"]["id"]
    results = []
    barrier = threading.Barrier(2)

    def go() -> None:
        barrier.wait()
        results.append(execute(client, tokens["planner"], plan_id))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [202, 202]
    assert len(tool_server.calls) == 8  # every step ran once, not twice
    assert sorted(set(tool_server.effects.values())) == [1]
    assert tool_server.max_in_flight <= 3  # max_parallel holds across both executors
    assert steps_by_key(client, tokens["viewer"], plan_id)["A"]["attempts"] == 1


def test_a_crashed_step_is_retried_with_the_same_token(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.crash", tool_server.url)
    body = make_plan(client, tokens["planner"], conn, "exc", {"A": []}, tool="hook.crash")
    plan_id = body["plan"]["id"]
    # a worker claimed the step, called the tool, and died before recording
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    conn.execute(
        "UPDATE plan_steps SET status = 'running', attempts = 1, leased_by = 'dead-worker', "
        "lease_until = now() - interval '1 second' WHERE plan_id = %s",
        (plan_id,),
    )
    token = body["steps"][0]["idempotency_token"]
    tool_server.answers[token] = {"done": "exc-A", "key": token}  # the tool did act, the first time
    tool_server.effects[token] = 1
    outcome = runner.advance(plan_id, 10)
    assert outcome.status == "completed"
    (step,) = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["steps"]
    assert step["attempts"] == 2 and step["status"] == "succeeded"
    assert [c["key"] for c in tool_server.calls] == [token]  # same Idempotency-Key on the retry
    assert tool_server.effects[token] == 1  # and the tool did not act twice


def test_a_lost_lease_drops_the_late_result(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.lost", tool_server.url)
    body = make_plan(client, tokens["planner"], conn, "exl", {"A": []}, tool="hook.lost")
    plan_id = body["plan"]["id"]
    step = conn.execute("SELECT * FROM plan_steps WHERE plan_id = %s", (plan_id,)).fetchone()
    conn.execute("UPDATE plan_steps SET status = 'running', leased_by = 'someone-else' WHERE id = %s", (step["id"],))
    late = running.StepRun(step=step, tool=None, result=None, error="late")
    assert recording.record(plan_id, late) == "lost"
    assert conn.execute("SELECT status FROM plan_steps WHERE id = %s", (step["id"],)).fetchone()["status"] == "running"


def test_a_hanging_webhook_times_out_and_fails_the_step(client: Client, tokens, conn, tool_server, monkeypatch) -> None:
    tool_server.hang = 3
    webhook_tool(conn, "hook.hang", tool_server.url, timeout=0.5, retries=1)
    body = make_plan(client, tokens["planner"], conn, "exh", {"A": []}, tool="hook.hang")
    started = time.monotonic()
    r = after_execute(client, tokens, body["plan"]["id"])
    assert r["plan"]["status"] == "failed"
    assert "ReadTimeout" in r["steps"][0]["error"] or "gave up" in r["steps"][0]["error"]
    assert time.monotonic() - started < 3  # two 0.5 s attempts and a short backoff, not the hang


def test_execute_checks(client: Client, tokens, conn, features) -> None:
    builtin_tool(conn, "echo.chk", "echo")
    body = make_plan(client, tokens["planner"], conn, "exk", {"A": []}, tool="echo.chk")
    plan_id = body["plan"]["id"]
    assert execute(client, tokens["viewer"], plan_id).status == 403
    r = client.post(EXECUTE, json={"plan_id": "nope"}, token=tokens["planner"])
    assert r.status == 422 and r.json()["errors"][0]["loc"] == ["body", "plan_id"]
    assert execute(client, tokens["planner"], "7b4b6d7e-0000-4000-8000-000000000000").status == 404
    features("FEATURE_AUTO_PLANNER", False)  # planning's flag does not stop execution
    features("FEATURE_PLANNER_EXECUTE", False)
    off = execute(client, tokens["planner"], plan_id)
    assert off.status == 403 and off.json()["type"].endswith("/feature-disabled")
    features("FEATURE_PLANNER_EXECUTE", True)
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "completed"
    finished = execute(client, tokens["planner"], plan_id)
    assert finished.status == 409 and finished.json()["type"].endswith("/plan-finished")


def test_a_blocked_plan_needs_an_override(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens["planner"], conn, "exb", {"A": []}, tool="t.noundo")
    assert body["plan"]["status"] == "blocked"
    r = execute(client, tokens["planner"], body["plan"]["id"])
    assert r.status == 409 and r.json()["type"].endswith("/plan-blocked")
