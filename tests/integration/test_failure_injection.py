"""Failure injection: what a user's plan survives.

- the database connection dropped in the middle of the plan's transaction
- a statement timeout while the plan is written
- a worker process killed while a step is running (the plan resumes, the
  step is retried with the same token, and the tool acts once)

(A hanging tool webhook: test_execution.py; a Slack receiver that is down:
test_gates.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from lib import settings
from lib.data import db
from lib.executor import runner
from tests.conftest import _free_port
from tests.support.backlog import seed_backlog
from tests.support.plans import make_plan, webhook_tool
from tests.support.tool_server import ToolServer
from tests.support.wsgi_client import Client

PLAN = "/api/auto-planner/plan"


def _sabotage(conn, function_body: str, pack: str) -> None:
    """A trigger on plan_steps that misbehaves for one pack's steps only."""
    conn.execute(f"""
        CREATE OR REPLACE FUNCTION public.sabotage_{pack}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.pack_id = '{pack}' THEN {function_body} END IF;
          RETURN NEW;
        END $$""")
    conn.execute(
        f"CREATE TRIGGER sabotage_{pack} BEFORE INSERT ON public.plan_steps FOR EACH ROW "
        f"EXECUTE FUNCTION public.sabotage_{pack}()"
    )


def _nothing_written(conn, pack: str) -> None:
    assert conn.execute("SELECT count(*) AS n FROM plans WHERE %s = ANY(pack_ids)", (pack,)).fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM plan_steps WHERE pack_id = %s", (pack,)).fetchone()["n"] == 0
    orphans = conn.execute(
        "SELECT count(*) AS n FROM plan_steps s LEFT JOIN plans p ON p.id = s.plan_id WHERE p.id IS NULL"
    ).fetchone()["n"]
    assert orphans == 0


def test_a_connection_dropped_mid_transaction_leaves_no_partial_plan(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "fdrop", {"A": [], "B": ["A"], "C": ["B"]})
    # the plan row is in, the steps are being copied: the server drops us
    _sabotage(conn, "PERFORM pg_terminate_backend(pg_backend_pid());", "fdrop")
    try:
        r = client.post(PLAN, json={"pack_ids": ["fdrop"]}, token=tokens["planner"])
        assert r.status == 503 and r.json()["type"].endswith("/unavailable")
        assert "Traceback" not in r.text
        _nothing_written(conn, "fdrop")
    finally:
        conn.execute("DROP TRIGGER sabotage_fdrop ON public.plan_steps")
    # the pool replaced the dead connection: the same request now succeeds
    r = client.post(PLAN, json={"pack_ids": ["fdrop"]}, token=tokens["planner"])
    assert r.status == 201 and r.json()["steps_total"] == 3


def test_a_statement_timeout_is_a_503_and_writes_nothing(
    client: Client, tokens, conn, database_url, monkeypatch
) -> None:
    seed_backlog(conn, "fslow", {"A": [], "B": ["A"]})
    _sabotage(conn, "PERFORM pg_sleep(2);", "fslow")  # the COPY of the steps hangs
    monkeypatch.setenv("NOFX_STATEMENT_TIMEOUT_MS", "500")
    db.use(database_url)  # new connections, with the timeout
    try:
        r = client.post(PLAN, json={"pack_ids": ["fslow"]}, token=tokens["planner"])
        assert r.status == 503 and r.json()["type"].endswith("/timeout")
        assert r.header("retry-after") == "1"
        _nothing_written(conn, "fslow")
    finally:
        conn.execute("DROP TRIGGER sabotage_fslow ON public.plan_steps")
        monkeypatch.delenv("NOFX_STATEMENT_TIMEOUT_MS")
        db.use(database_url)


@pytest.fixture
def hold_server():
    """A webhook tool that keeps its first call open until told to answer."""
    server = ToolServer(hang=30).start()
    yield server
    server.stop()


def test_a_worker_killed_mid_step_resumes_and_the_step_runs_once(tokens, conn, database_url, hold_server) -> None:
    webhook_tool(conn, "hook.kill", hold_server.url, timeout=60, retries=0)
    client = Client(__import__("lib.web.devserver", fromlist=["build_app"]).build_app())
    body = make_plan(client, tokens["planner"], conn, "fkill", {"A": [], "B": ["A"]}, tool="hook.kill")
    plan_id = body["plan"]["id"]
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NOFX_STEP_LEASE_SECONDS": "2",
        "NOFX_DATA_DIR": str(settings.data_dir()),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "lib.cli", "serve", "--port", str(port)],
        cwd=settings.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        import httpx

        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

        def execute() -> None:
            try:
                httpx.post(
                    f"http://127.0.0.1:{port}/api/auto-planner/execute",
                    json={"plan_id": plan_id},
                    headers={"Authorization": f"Bearer {tokens['planner']}"},
                    timeout=60,
                )
            except httpx.HTTPError:
                pass  # the worker is killed while this request waits: no answer is expected

        threading.Thread(target=execute, daemon=True).start()
        while not hold_server.calls and time.time() < deadline:
            time.sleep(0.05)
        assert hold_server.calls, "the step reached its tool"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker dies holding the step's lease
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    step = conn.execute(
        "SELECT status, attempts FROM plan_steps WHERE plan_id = %s AND item_key = 'fkill-A'", (plan_id,)
    ).fetchone()
    assert (step["status"], step["attempts"]) == ("running", 1)
    hold_server.hang = 0  # the tool is healthy again (and remembers what it did)
    time.sleep(2.1)  # the dead worker's lease runs out
    outcome = runner.advance(plan_id, 20)  # the next execute, or the cron tick
    assert outcome.status == "completed"
    steps = {
        r["item_key"]: r
        for r in conn.execute(
            "SELECT item_key, status, attempts, idempotency_token FROM plan_steps WHERE plan_id = %s", (plan_id,)
        )
    }
    assert steps["fkill-A"]["attempts"] == 2 and steps["fkill-B"]["attempts"] == 1
    keys = [c["key"] for c in hold_server.calls]
    assert keys.count(steps["fkill-A"]["idempotency_token"]) == 2  # retried with the same token...
    assert all(count == 1 for count in hold_server.effects.values())  # ...and it acted once
    trail = client.get(f"/api/audit/{plan_id}", token=tokens["viewer"]).json()
    assert trail["chain"]["ok"]


def test_the_pool_survives_the_database_restarting_connections(client: Client, tokens, database_url) -> None:
    """Connections cut behind the pool's back (a pooler recycling them, a
    restart) are noticed and replaced, not handed to the next request."""
    with db.transaction() as c:
        c.execute("SELECT 1")
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    time.sleep(db.IDLE_CHECK_SECONDS + 0.2)  # idle long enough to be pinged before reuse
    assert client.get("/api/config/flags", token=tokens["viewer"]).status == 200
