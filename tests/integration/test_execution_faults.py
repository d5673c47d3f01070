"""Faults around execution (issue 17), each reproduced on the real PostgreSQL:
a plan held locked, connections cut, the database failing around a step,
and answers too large for a function to return."""

from __future__ import annotations

import json
import threading
import time

import psycopg

from lib import settings
from lib.executor import runner
from tests.support.plans import builtin_tool, make_plan, steps_by_key, webhook_tool
from tests.support.wsgi_client import Client

EXECUTE = "/api/auto-planner/execute"


def test_a_plan_held_locked_answers_busy_quickly_and_the_rest_of_the_service_answers(
    client: Client, tokens, conn, database_url
) -> None:
    builtin_tool(conn, "echo.ef1", "echo")
    body = make_plan(client, tokens["planner"], conn, "ef1", {"A": []}, tool="echo.ef1")
    plan_id = body["plan"]["id"]
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM plans WHERE id = %s FOR UPDATE", (plan_id,))  # a stuck transaction
        answers = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]))
            )
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        # meanwhile, everything else still answers
        assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).status == 200
        for t in threads:
            t.join(30)
        holder.rollback()
    assert len(answers) == 10
    for answer in answers:
        assert answer.status == 503 and answer.header("retry-after") == "1", answer.text
        assert answer.json()["type"].endswith("/busy")
    assert client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]).status == 202


def test_the_first_request_after_connections_are_cut_succeeds(client: Client, tokens, conn, database_url) -> None:
    body = make_plan(client, tokens["planner"], conn, "ef2", {"A": []})
    plan_id = body["plan"]["id"]
    for _ in range(3):  # warm several pooled connections
        assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).status == 200
    name = database_url.rsplit("/", 1)[1]
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    time.sleep(0.2)
    started = time.monotonic()
    answer = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"])
    assert answer.status == 200, answer.text  # dead connections found and replaced, not a 503
    assert time.monotonic() - started < 5  # and not after the pool's growing back-off (30 s before)


def test_a_result_the_database_could_not_record_is_left_to_the_lease_not_failed(
    client: Client, tokens, conn, database_url, tool_server, monkeypatch
) -> None:
    monkeypatch.setenv("NOFX_LOCK_TIMEOUT_MS", "100")
    webhook_tool(conn, "hook.ef3", tool_server.url)
    body = make_plan(client, tokens["planner"], conn, "ef3", {"A": []}, tool="hook.ef3")
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'executing', executed_by_sub = 'x' WHERE id = %s", (plan_id,))
    tool_server.gate = threading.Event()
    worker = threading.Thread(target=runner.advance, args=(plan_id, 5.0))
    worker.start()
    deadline = time.monotonic() + 10
    while tool_server.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT 1 FROM plans WHERE id = %s FOR UPDATE", (plan_id,))  # recording cannot lock it
        tool_server.gate.set()
        worker.join(30)
        holder.rollback()
    step = steps_by_key(client, tokens["viewer"], plan_id)["A"]
    assert step["status"] == "running" and step["error"] is None  # the tool's success was not its failure
    conn.execute("UPDATE plan_steps SET lease_until = now() - interval '1 second' WHERE plan_id = %s", (plan_id,))
    client.get("/api/cron/tick", headers={"authorization": f"Bearer {settings.secret('CRON_SECRET')}"})
    assert steps_by_key(client, tokens["viewer"], plan_id)["A"]["status"] == "succeeded"
    assert list(tool_server.effects.values()) == [1]  # run again with the same token: the tool acted once


def test_a_big_plans_answers_stay_small(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "echo.ef4", "echo")
    deps = {f"S{i}": ([f"S{i - 1}"] if i else []) for i in range(300)}  # a 300-step chain: a long critical path
    seed = {f"S{i}": {"blob": "x" * 8000, "target": str(i)} for i in range(300)}
    body = make_plan(client, tokens["planner"], conn, "ef4", deps, tool="echo.ef4", inputs=seed)
    plan_id = body["plan"]["id"]
    page = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"])
    assert page.status == 200 and len(page.body) < 2_000_000
    detail = page.json()
    assert detail["steps_truncated"] and 0 < len(detail["steps"]) < 300  # cut by bytes, not only by count
    assert detail["steps_next_offset"] == len(detail["steps"])
    graph = detail["plan"]["totals"]
    assert len(graph["critical_path"]) == 200 and graph["critical_path_total"] == 300
    full = client.get(f"/api/plans/{plan_id}?limit=1&graph=full", token=tokens["viewer"]).json()
    assert len(full["plan"]["totals"]["critical_path"]) == 300
    rest = client.get(f"/api/plans/{plan_id}?offset={detail['steps_next_offset']}", token=tokens["viewer"]).json()
    assert rest["steps"][0]["position"] >= 0 and rest["steps"][0]["id"] != detail["steps"][-1]["id"]


def test_the_gates_report_pages_its_flagged_steps(client: Client, tokens, conn) -> None:
    # every step's tool mutates without rollback instructions: every step is flagged
    body = make_plan(client, tokens["planner"], conn, "ef5", {f"N{i}": [] for i in range(450)}, tool="t.noundo")
    plan_id = body["plan"]["id"]
    first = client.get(f"/api/gates/{plan_id}", token=tokens["viewer"]).json()
    assert first["steps_total"] == 450 and len(first["steps"]) == 200 and first["steps_next_offset"] == 200
    last = client.get(f"/api/gates/{plan_id}?steps_offset=400&steps_limit=200", token=tokens["viewer"]).json()
    assert len(last["steps"]) == 50 and last["steps_next_offset"] is None
    seen = {s["step_id"] for s in first["steps"]} | {s["step_id"] for s in last["steps"]}
    assert len(seen) == 250
    assert json.dumps(first)  # a plain JSON document


def test_a_request_cut_off_from_the_database_frees_its_idempotency_key(fresh_database, tokens) -> None:
    from lib.web.devserver import build_app
    from tests.support.backlog import seed_backlog

    client = Client(build_app())
    for _ in range(3):  # warm the pool: its idle connections are cut too
        assert client.get("/api/health").status == 200
    with psycopg.connect(fresh_database, autocommit=True, application_name="keeper") as c:
        seed_backlog(c, "blip", {"A": []})
        # every connection to the database is cut (a restart, a failover) part
        # way through the request's writes, its own last
        c.execute(
            "CREATE FUNCTION cut_me_off() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND application_name <> 'keeper'; "
            "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
        )
        c.execute("CREATE TRIGGER cut_me_off BEFORE INSERT ON plans FOR EACH ROW EXECUTE FUNCTION cut_me_off()")
        key = {"idempotency-key": "blip-1"}
        cut = client.post("/api/auto-planner/plan", json={"pack_ids": ["blip"]}, token=tokens["planner"], headers=key)
        assert cut.status == 503 and cut.header("retry-after"), cut.text
        c.execute("DROP TRIGGER cut_me_off ON plans")
        retry = client.post("/api/auto-planner/plan", json={"pack_ids": ["blip"]}, token=tokens["planner"], headers=key)
        assert retry.status == 201, retry.text  # not "still in progress": the key was freed on a fresh connection
