"""Execution built for serverless (issue 17): requests answer before the work
they start, each plan advances in worker invocations of its own (dispatched
over HTTP or to the dev server's pool), long-running tools report back through
a signed callback, and an invocation that dies is recovered."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from lib import settings
from lib.executor import claiming
from lib.web import webhooks
from tests.support.plans import ONE, builtin_tool, make_plan, steps_by_key, webhook_tool
from tests.support.wsgi_client import Client

EXECUTE = "/api/auto-planner/execute"
TOOL_SECRET_ENV = "NOFX_TEST_TOOL_SECRET"
TOOL_SECRET = "whsec_" + "dG9vbC1zZWNyZXQtZm9yLXRoZS10ZXN0cy0xMjM0NQ=="


def wait_for(check, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def plan_status(conn, plan_id: str) -> str:
    return conn.execute("SELECT status FROM plans WHERE id = %s", (plan_id,)).fetchone()["status"]


def cron(client: Client) -> Any:
    return client.get("/api/cron/tick", headers={"authorization": f"Bearer {settings.secret('CRON_SECRET')}"})


def report(client: Client, step_id: str, body: dict, *, secret: str = TOOL_SECRET, delivery: str | None = None):
    raw = json.dumps(body).encode()
    headers = webhooks.sign(secret, delivery or f"msg_{uuid.uuid4().hex}", raw)
    return client.post(
        f"/api/steps/{step_id}/result", data=raw, headers={**headers, "content-type": "application/json"}
    )


# ------------------------------------------------------ answer first, work after ----


def test_a_decision_answers_before_the_step_it_frees_has_finished(tokens, conn, pooled_server, tool_server) -> None:
    base, workers = pooled_server
    http = httpx.Client(base_url=base, timeout=30)
    builtin_tool(conn, "gate.sx1", "echo", approval=ONE)
    webhook_tool(conn, "slow.sx1", tool_server.url, timeout=20)
    plan = http.post(
        "/api/auto-planner/plan",
        json={"backlog_item_ids": _items(conn, "sx1", {"G": ("gate.sx1", []), "S": ("slow.sx1", ["G"])})},
        headers=_auth(tokens["planner"]),
    ).json()
    plan_id = plan["plan"]["id"]
    started = http.post(EXECUTE, json={"plan_id": plan_id}, headers=_auth(tokens["planner"]))
    assert started.status_code == 202 and started.json()["dispatched"]
    assert wait_for(lambda: plan_status(conn, plan_id) == "paused")
    (pending,) = http.get(f"/api/approvals?plan_id={plan_id}", headers=_auth(tokens["viewer"])).json()["approvals"]

    tool_server.gate = threading.Event()  # the slow step's tool works until the test lets it finish
    decided = http.post(
        f"/api/approvals/{pending['id']}", json={"decision": "approve"}, headers=_auth(tokens["approver"])
    )
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    # the answer came first; the step it freed starts after it, on a worker thread
    assert wait_for(lambda: tool_server.in_flight == 1), "the freed step never reached its tool"
    assert plan_status(conn, plan_id) == "executing"
    assert steps_by_key(Client(_app()), tokens["viewer"], plan_id)["S"]["status"] == "running"
    tool_server.gate.set()
    assert wait_for(lambda: plan_status(conn, plan_id) == "completed")
    assert workers.wait_idle(10)


def test_execute_answers_with_what_it_started(tokens, conn, pooled_server, tool_server) -> None:
    base, _ = pooled_server
    http = httpx.Client(base_url=base, timeout=30)
    webhook_tool(conn, "hook.sx2", tool_server.url, timeout=20)
    ids = _items(conn, "sx2", {"A": ("hook.sx2", []), "B": ("hook.sx2", []), "C": ("hook.sx2", ["A", "B"])})
    plan_id = http.post(
        "/api/auto-planner/plan", json={"backlog_item_ids": ids}, headers=_auth(tokens["planner"])
    ).json()["plan"]["id"]
    tool_server.gate = threading.Event()
    answer = http.post(EXECUTE, json={"plan_id": plan_id}, headers=_auth(tokens["planner"]))
    assert answer.status_code == 202
    state = answer.json()
    keys = {s["id"]: s["item_key"] for s in state["steps"]}
    assert state["status"] == "approved" and state["dispatched"] is True
    assert sorted(keys[i] for i in state["runnable"]) == ["sx2-A", "sx2-B"]  # C waits for both
    assert all(s["status"] == "pending" for s in state["steps"])  # nothing had run when it answered
    assert wait_for(lambda: tool_server.in_flight == 2)
    tool_server.gate.set()
    assert wait_for(lambda: plan_status(conn, plan_id) == "completed")


def test_the_dev_server_answers_health_while_its_workers_are_busy(tokens, conn, pooled_server, tool_server) -> None:
    base, _ = pooled_server
    http = httpx.Client(base_url=base, timeout=30)
    webhook_tool(conn, "hook.sx3", tool_server.url, timeout=20)
    tool_server.gate = threading.Event()
    plans = []
    for n in range(6):
        ids = _items(conn, f"sx3{n}", {"A": ("hook.sx3", [])})
        plans.append(
            http.post(
                "/api/auto-planner/plan", json={"backlog_item_ids": ids}, headers=_auth(tokens["planner"])
            ).json()["plan"]["id"]
        )
    for plan_id in plans:
        assert http.post(EXECUTE, json={"plan_id": plan_id}, headers=_auth(tokens["planner"])).status_code == 202
    assert wait_for(lambda: tool_server.in_flight == 6)  # six tools at work, held
    # every request thread is free: the work runs on the worker pool
    assert http.get("/api/health").status_code in (200, 503)
    assert http.get(f"/api/plans/{plans[0]}", headers=_auth(tokens["viewer"])).status_code == 200
    tool_server.gate.set()
    assert wait_for(lambda: all(plan_status(conn, p) == "completed" for p in plans))


# ------------------------------------------------------------------ fan out ----


def test_a_plan_that_outlasts_one_invocation_completes_without_the_tick(
    tokens, conn, pooled_server, monkeypatch
) -> None:
    base, workers = pooled_server
    http = httpx.Client(base_url=base, timeout=30)
    monkeypatch.setenv("NOFX_WORKER_BUDGET_SECONDS", "0.25")  # each invocation starts work for a quarter second
    builtin_tool(conn, "nap.sx4", "sleep")
    ids = _items(
        conn, "sx4", {k: ("nap.sx4", [p] if p else []) for k, p in zip("ABCD", ["", "A", "B", "C"], strict=True)}
    )
    conn.execute("UPDATE backlog_items SET inputs = '{\"seconds\": 0.3}' WHERE id = ANY(%s::uuid[])", (ids,))
    plan_id = http.post(
        "/api/auto-planner/plan", json={"backlog_item_ids": ids}, headers=_auth(tokens["planner"])
    ).json()["plan"]["id"]
    before = workers.submitted
    assert http.post(EXECUTE, json={"plan_id": plan_id}, headers=_auth(tokens["planner"])).status_code == 202
    assert wait_for(lambda: plan_status(conn, plan_id) == "completed")
    # one dispatch from execute, then each invocation that ran out of time dispatched the next
    assert workers.submitted - before >= 4


def test_a_dispatch_sent_twice_runs_each_step_once(tokens, conn, pooled_server, tool_server) -> None:
    base, _ = pooled_server
    http = httpx.Client(base_url=base, timeout=30)
    webhook_tool(conn, "hook.sx5", tool_server.url, timeout=20)
    ids = _items(conn, "sx5", {k: ("hook.sx5", []) for k in "ABCDEF"})
    plan_id = http.post(
        "/api/auto-planner/plan", json={"backlog_item_ids": ids}, headers=_auth(tokens["planner"])
    ).json()["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'approved', executed_by_sub = 'x' WHERE id = %s", (plan_id,))
    worker = {"authorization": f"Bearer {settings.secret('NOFX_WORKER_SECRET')}"}
    assert http.post("/api/worker/advance", json={"plan_id": plan_id}).status_code == 401
    assert (
        http.post("/api/worker/advance", json={"plan_id": plan_id}, headers=_auth(tokens["admin"])).status_code == 401
    )
    barrier = threading.Barrier(3)

    def send() -> None:
        barrier.wait()
        assert http.post("/api/worker/advance", json={"plan_id": plan_id}, headers=worker).status_code == 202

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wait_for(lambda: plan_status(conn, plan_id) == "completed")
    assert sorted(tool_server.effects.values()) == [1] * 6  # three dispatches, each step acted once


def test_dispatch_over_http_reaches_the_worker_function(
    client: Client, tokens, conn, pooled_server, monkeypatch
) -> None:
    base, _ = pooled_server
    monkeypatch.setenv("NOFX_DISPATCH", "http")  # as on Vercel: a POST to the worker function, not in-process
    monkeypatch.setenv("NOFX_WORKER_URL", base)
    builtin_tool(conn, "echo.sx6", "echo")
    body = make_plan(client, tokens["planner"], conn, "sx6", {"A": [], "B": ["A"]}, tool="echo.sx6")
    plan_id = body["plan"]["id"]
    answer = client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert answer.status == 202
    assert wait_for(lambda: plan_status(conn, plan_id) == "completed")


def test_the_tick_dispatches_due_plans_and_runs_none_itself(client: Client, tokens, conn, pooled_server) -> None:
    builtin_tool(conn, "echo.sx7", "echo")
    body = make_plan(client, tokens["planner"], conn, "sx7", {"A": []}, tool="echo.sx7")
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'executing', executed_by_sub = 'x' WHERE id = %s", (plan_id,))
    tick = cron(client)
    assert tick.status == 200 and tick.json()["plans_dispatched"] >= 1
    assert plan_status(conn, plan_id) == "completed"  # by the worker it dispatched, after the tick's answer


def test_an_invocation_killed_mid_step_is_recovered(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "echo.sx8", "echo")
    body = make_plan(client, tokens["planner"], conn, "sx8", {"A": []}, tool="echo.sx8")
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'executing', executed_by_sub = 'x' WHERE id = %s", (plan_id,))
    claimed = claiming.claim(plan_id, 0)  # leased, then the process "dies" before running it
    assert [s["item_key"] for s in claimed.steps] == ["sx8-A"]
    conn.execute("UPDATE plan_steps SET lease_until = now() - interval '1 second' WHERE plan_id = %s", (plan_id,))
    assert cron(client).status == 200
    assert plan_status(conn, plan_id) == "completed"
    runs = conn.execute(
        "SELECT attempt, status FROM tool_metrics WHERE plan_id = %s ORDER BY attempt", (plan_id,)
    ).fetchall()
    # the first attempt is on record although nobody recorded its outcome
    assert [(r["attempt"], r["status"]) for r in runs] == [(1, "started"), (2, "succeeded")]


# ------------------------------------------------------ long-running tools ----


@pytest.fixture
def long_tool(conn, tool_server, monkeypatch):
    monkeypatch.setenv(TOOL_SECRET_ENV, TOOL_SECRET)

    def make(tool_id: str, **config: Any) -> None:
        webhook_tool(conn, tool_id, tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
        conn.execute(
            "UPDATE tools SET config = config || %s::jsonb WHERE id = %s",
            (json.dumps({"callback_secret_env": TOOL_SECRET_ENV, "lease_seconds": 600, **config}), tool_id),
        )

    return make


def test_a_long_running_tool_reports_back_and_its_step_completes(
    client: Client, tokens, conn, tool_server, long_tool
) -> None:
    long_tool("deploy.sx9")
    tool_server.long_running = {"sx9-D"}
    body = make_plan(client, tokens["planner"], conn, "sx9", {"D": [], "N": ["D"]}, tool="deploy.sx9")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    steps = steps_by_key(client, tokens["viewer"], plan_id)
    assert steps["D"]["status"] == "running" and steps["N"]["status"] == "pending"
    assert plan_status(conn, plan_id) == "executing"
    call = next(c for c in tool_server.calls if c["body"]["item_key"] == "sx9-D")
    assert call["body"]["callback_url"].endswith(f"/api/steps/{steps['D']['id']}/result")
    token = call["body"]["idempotency_token"]
    d = steps["D"]["id"]

    lease = conn.execute("SELECT lease_until FROM plan_steps WHERE id = %s", (d,)).fetchone()["lease_until"]
    beat = report(client, d, {"step_id": d, "idempotency_token": token, "status": "running"})
    assert beat.status == 200 and beat.json()["step_status"] == "running"
    assert conn.execute("SELECT lease_until FROM plan_steps WHERE id = %s", (d,)).fetchone()["lease_until"] >= lease

    done = report(
        client,
        d,
        {"step_id": d, "idempotency_token": token, "status": "succeeded", "output": {"url": "x"}},
        delivery="msg_sx9",
    )
    assert done.status == 200 and done.json()["step_status"] == "succeeded"
    assert plan_status(conn, plan_id) == "completed"  # the report dispatched the rest of the plan
    again = report(
        client,
        d,
        {"step_id": d, "idempotency_token": token, "status": "succeeded", "output": {"url": "x"}},
        delivery="msg_sx9",
    )
    assert again.status == 200 and again.header("idempotent-replayed") == "true"  # the same delivery: replayed
    late = report(client, d, {"step_id": d, "idempotency_token": token, "status": "failed"})
    assert late.status == 409  # the step waits for no report now
    metrics = conn.execute("SELECT status FROM tool_metrics WHERE step_id = %s", (d,)).fetchall()
    assert [m["status"] for m in metrics] == ["succeeded"]


def test_forged_replayed_and_misdirected_reports_are_refused(
    client: Client, tokens, conn, tool_server, long_tool
) -> None:
    long_tool("deploy.sx10")
    tool_server.long_running = {"sx10-A", "sx10-B"}
    body = make_plan(client, tokens["planner"], conn, "sx10", {"A": [], "B": []}, tool="deploy.sx10")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    steps = steps_by_key(client, tokens["viewer"], plan_id)
    a, b = steps["A"]["id"], steps["B"]["id"]
    token_a = steps["A"]["idempotency_token"]
    ok = {"step_id": a, "idempotency_token": token_a, "status": "succeeded"}

    assert report(client, a, ok, secret=settings.secret("ZIG_TODO_WEBHOOK_SECRET")).status == 401  # another's secret
    unsigned = client.post(f"/api/steps/{a}/result", json=ok, token=tokens["admin"])
    assert unsigned.status == 401  # a user's token is not a tool's signature
    misdirected = report(client, b, ok)  # A's report sent to B's address
    assert misdirected.status == 422 and misdirected.json()["errors"][0]["loc"] == ["body", "step_id"]
    wrong_run = report(client, b, {**ok, "step_id": b})  # B's address, A's run
    assert wrong_run.status == 409 and wrong_run.json()["type"].endswith("/misdirected")
    assert report(client, a, ok, delivery="msg_sx10").status == 200
    reused = report(
        client,
        b,
        {"step_id": b, "idempotency_token": steps["B"]["idempotency_token"], "status": "succeeded"},
        delivery="msg_sx10",
    )
    assert reused.status == 409 and reused.json()["type"].endswith("/delivery-reused")
    stale = report(client, a, ok, delivery=None)
    assert stale.status == 409
    assert steps_by_key(client, tokens["viewer"], plan_id)["B"]["status"] == "running"


def test_a_silent_long_running_tool_fails_its_step_when_the_lease_lapses(
    client: Client, tokens, conn, tool_server, long_tool
) -> None:
    long_tool("deploy.sx11")
    tool_server.long_running = {"sx11-A"}
    body = make_plan(client, tokens["planner"], conn, "sx11", {"A": []}, tool="deploy.sx11")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert steps_by_key(client, tokens["viewer"], plan_id)["A"]["status"] == "running"
    conn.execute("UPDATE plan_steps SET lease_until = now() - interval '1 second' WHERE plan_id = %s", (plan_id,))
    cron(client)
    step = steps_by_key(client, tokens["viewer"], plan_id)["A"]
    assert step["status"] == "failed" and "no report" in step["error"]
    assert plan_status(conn, plan_id) == "failed"


def test_a_long_running_undo_reports_back_and_the_rollback_finishes(
    client: Client, tokens, conn, tool_server, long_tool
) -> None:
    long_tool("deploy.sx12")
    body = make_plan(client, tokens["planner"], conn, "sx12", {"A": []}, tool="deploy.sx12")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert plan_status(conn, plan_id) == "completed"
    tool_server.long_running = {"sx12-A"}  # the undo is long-running
    r = client.post(
        "/api/automation/override",
        json={"plan_id": plan_id, "action": "rollback", "reason": "revert"},
        token=tokens["admin"],
    )
    assert r.status == 201
    step = steps_by_key(client, tokens["viewer"], plan_id)["A"]
    assert step["status"] == "succeeded" and plan_status(conn, plan_id) == "blocked"  # waiting for the undo's report
    undo = tool_server.calls[-1]["body"]
    assert undo["idempotency_token"].endswith("-rollback")
    done = report(
        client,
        step["id"],
        {"step_id": step["id"], "idempotency_token": undo["idempotency_token"], "status": "succeeded"},
    )
    assert done.status == 200 and done.json() == {**done.json(), "phase": "undo", "step_status": "rolled_back"}
    assert plan_status(conn, plan_id) == "rolled_back"


# ------------------------------------------------------------------ helpers ----


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _app():
    from lib.web.devserver import build_app

    return build_app()


def _items(conn, prefix: str, items: dict[str, tuple[str, list[str]]]) -> list[str]:
    """Backlog items of one pack: key -> (tool, keys it depends on); their ids."""
    from tests.support.backlog import seed_backlog

    deps = {key: needs for key, (_, needs) in items.items()}
    ids = seed_backlog(conn, prefix, deps, tools={key: tool for key, (tool, _) in items.items()})
    return list(ids.values())
