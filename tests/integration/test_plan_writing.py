"""How a plan is written: its steps copied on a worker thread while the gates
judge it, and the request's large objects freed after the answer is sent. On
the real PostgreSQL."""

from __future__ import annotations

import gc
import uuid
import weakref

import psycopg
import pytest

from lib.planner import write
from lib.web.devserver import build_app
from lib.web.endpoint import Endpoint
from tests.support.backlog import seed_backlog
from tests.support.wsgi_client import Client, wsgi_environ

PLAN = "/api/auto-planner/plan"


def test_an_estimate_past_24_days_is_planned_and_stored(fresh_database, tokens) -> None:
    # 40,000 minutes is 2.4e9 ms: more than an integer column holds. A
    # database of its own: no tool metrics, so the item's estimate counts.
    with psycopg.connect(fresh_database, autocommit=True) as c:
        ids = seed_backlog(c, "long", {"A": [], "B": ["A"]})
        c.execute("UPDATE backlog_items SET estimate_minutes = 40000 WHERE id = %s", (ids["A"],))
        r = Client(build_app()).post(PLAN, json={"pack_ids": ["long"]}, token=tokens["planner"])
        assert r.status == 201, r.text
        body = r.json()
        stored = c.execute(
            "SELECT est_duration_ms FROM plan_steps WHERE plan_id = %s AND backlog_item_id = %s",
            (body["plan"]["id"], ids["A"]),
        ).fetchone()
    assert stored[0] == 40_000 * 60_000
    assert body["plan"]["totals"]["critical_path_ms"] >= 40_000 * 60_000


def test_a_step_copy_that_fails_fails_the_plan_and_writes_nothing(fresh_database, tokens) -> None:
    with psycopg.connect(fresh_database, autocommit=True) as c:
        seed_backlog(c, "bad", {"A": [], "B": ["A"], "C": []})
        # the server refuses one row of the COPY the worker thread runs
        c.execute(
            "CREATE FUNCTION refuse_c() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.item_key = 'bad-C' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$"
        )
        c.execute("CREATE TRIGGER refuse_c BEFORE INSERT ON plan_steps FOR EACH ROW EXECUTE FUNCTION refuse_c()")
        counts = (
            "SELECT (SELECT count(*) FROM plans), (SELECT count(*) FROM plan_steps), (SELECT count(*) FROM events), "
            "(SELECT count(*) FROM audit_log), (SELECT count(*) FROM plan_evaluations)"
        )
        before = c.execute(counts).fetchone()
        r = Client(build_app()).post(PLAN, json={"pack_ids": ["bad"]}, token=tokens["planner"])
        assert r.status == 500, r.text
        assert r.json()["status"] == 500 and "refused for the test" not in r.text  # no internals in the answer
        assert c.execute(counts).fetchone() == before  # the transaction rolled back whole


def test_the_worker_error_is_raised_once_the_block_has_run(database_url: str) -> None:
    from lib.data import db
    from lib.planner import BacklogItem, PlanOptions, Tool, build_plan

    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    items = {i: BacklogItem(id=i, key=f"k{n}", title="t", pack_id="p", tool_id="t") for n, i in enumerate(ids)}
    same_id = ["01a21600-0000-7000-8000-000000000000"] * 2  # the second row breaks the primary key
    draft = build_plan(items, {"t": Tool(id="t")}, {}, PlanOptions(), new_ids=lambda n: same_id[:n])
    ran = []
    with db.connect(database_url) as c:
        plan_id = c.execute(
            "INSERT INTO plans (title, input_fingerprint, created_by, created_by_sub) "
            "VALUES ('worker error', gen_random_uuid()::text, 'test', 'test') RETURNING id::text AS id"
        ).fetchone()["id"]
        with pytest.raises(psycopg.errors.UniqueViolation):
            with write.steps_copied_meanwhile(c, plan_id, draft):
                ran.append("judged")
        assert ran == ["judged"]
        c.rollback()


class _Parked:
    pass


def test_what_a_handler_parks_is_freed_once_the_body_is_sent() -> None:
    app = Endpoint("/api/test-parking")
    seen: list[weakref.ref] = []

    @app.get(public=True)
    def handler(ctx):
        big = _Parked()
        seen.append(weakref.ref(big))
        parked = [big]
        ctx.after_send.append(lambda: parked.clear())
        return {"ok": True}

    body = app(wsgi_environ("GET", "/api/test-parking"), lambda status, headers, exc_info=None: None)
    gc.collect()
    assert seen[0]() is not None  # alive while the server still holds the body
    assert b"".join(body) == b'{"ok":true}'
    body.close()  # PEP 3333: the server calls close() once the body is sent
    assert seen[0]() is None


@pytest.mark.parametrize(("pack", "status"), [("gcp", 201), ("no-such-pack", 422)])
def test_the_planner_resumes_the_collector_once_the_answer_is_sent(app, tokens, conn, pack, status) -> None:
    if status == 201:
        seed_backlog(conn, pack, {"A": [], "B": ["A"]})
    assert gc.isenabled()
    request = {"pack_ids": [pack], "options": {"title": f"gc {uuid.uuid4()}"}}
    environ = wsgi_environ("POST", PLAN, json=request, token=tokens["planner"])
    seen: list[str] = []
    body = app(environ, lambda s, h, exc_info=None: seen.append(s))
    assert seen[0].startswith(str(status))
    if status == 201:  # paused through the answer: the plan's objects are freed first, then swept
        assert not gc.isenabled()
    body.close()
    assert gc.isenabled()
