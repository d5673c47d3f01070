"""What the executor must never run: a warn plan before its plan approval,
steps leased in a claim that then finds an approval expired, steps of a plan
an admin ordered rolled back (and a step that finishes while they are undone
must be undone too), and an independent step starved by a crowd of
steps waiting for approval. Real PostgreSQL, the real executor."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from lib import settings
from lib.approvals import asking
from lib.data import db
from lib.executor import claiming, rollback, runner, store
from lib.planner.models import ApprovalPolicy
from lib.plans.overrides import OverrideRequest, apply
from lib.web import auth
from tests.support.plans import ONE, builtin_tool, make_plan, run_plan, steps_by_key, webhook_tool
from tests.support.wsgi_client import Client

EXECUTE = "/api/auto-planner/execute"


def statuses(client: Client, token: str, plan_id: str) -> dict[str, str]:
    return {k: s["status"] for k, s in steps_by_key(client, token, plan_id).items()}


def plan_status(conn, plan_id: str) -> str:
    return conn.execute("SELECT status FROM plans WHERE id = %s", (plan_id,)).fetchone()["status"]


def order_rollback(tokens: dict[str, str], plan_id: str) -> Any:
    """An admin's rollback override, committed, which asks for the undo to
    start (the caller runs it); returns the admin."""
    admin = auth.authenticate(f"Bearer {tokens['admin']}")
    with db.transaction() as tx:
        _, roll_back = apply(tx, OverrideRequest(plan_id=plan_id, action="rollback", reason="bad release"), admin)
    assert roll_back
    return admin


def advance_until_a_tool_runs(plan_id: str, budget: float, server) -> threading.Thread:
    """The executor in another thread (another invocation), once its first tool call is in flight."""
    worker = threading.Thread(target=runner.advance, args=(plan_id, budget))
    worker.start()
    deadline = time.monotonic() + 5
    while not server.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.calls, "the executor did not call the tool"
    return worker


def test_a_warn_plan_runs_nothing_until_its_plan_approval(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens["planner"], conn, "egw", {"A": [], "B": ["A"]})
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET verdict = 'warn' WHERE id = %s", (plan_id,))

    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "pending", "B": "pending"}
    # neither another execute nor the worker's own loop (as the cron tick runs it) starts a step
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    assert runner.advance(plan_id, 5).ran == 0
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "pending", "B": "pending"}

    (pending,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    assert pending["kind"] == "plan"
    decided = client.post(f"/api/approvals/{pending['id']}", json={"decision": "approve"}, token=tokens["approver"])
    assert decided.status == 200, decided.text
    assert plan_status(conn, plan_id) == "completed"
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "succeeded", "B": "succeeded"}


def test_a_rollback_the_executor_orders_cancels_the_pending_approvals(client: Client, tokens, conn) -> None:
    # rollback_on_failure: a decision arriving while the steps are undone must not move the plan
    builtin_tool(conn, "gate.egc", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "egc", {"A": [], "G": []}, tools={"G": "gate.egc"})
    plan_id = body["plan"]["id"]
    ids = {s["item_key"].split("-", 1)[1]: s["id"] for s in body["steps"]}
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    with db.transaction() as tx:
        plan = store.load_plan(tx, plan_id)
        step = tx.execute(f"SELECT {store.STEP_COLUMNS} FROM plan_steps s WHERE id = %s", (ids["G"],)).fetchone()
        asking.check(tx, plan, step, None, ApprovalPolicy(**ONE))

    assert rollback.roll_back(plan_id, "executor", "a step failed", time.monotonic() + 30) == "rolled_back"
    approval = conn.execute("SELECT id, status FROM approvals WHERE step_id = %s", (ids["G"],)).fetchone()
    assert approval["status"] == "cancelled"
    late = client.post(
        f"/api/approvals/{approval['id']}", json={"decision": "deny", "reason": "too late"}, token=tokens["approver"]
    )
    assert late.status == 409, late.text
    assert plan_status(conn, plan_id) == "rolled_back"


def test_an_approval_found_expired_in_a_claim_leaves_no_step_leased(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.egx", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "egx", {"A": [], "B": [], "G": []}, tools={"G": "gate.egx"})
    plan_id = body["plan"]["id"]
    ids = {s["item_key"].split("-", 1)[1]: s["id"] for s in body["steps"]}
    # G waits for an approval that is already overdue, and sits after A and B in the claim's order
    conn.execute("UPDATE plan_steps SET position = 99 WHERE id = %s", (ids["G"],))
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    with db.transaction() as tx:
        plan = store.load_plan(tx, plan_id)
        step = tx.execute(f"SELECT {store.STEP_COLUMNS} FROM plan_steps s WHERE id = %s", (ids["G"],)).fetchone()
        asking.check(tx, plan, step, None, ApprovalPolicy(**ONE))
    conn.execute("UPDATE approvals SET expires_at = now() - interval '1 second' WHERE step_id = %s", (ids["G"],))

    claimed = claiming.claim(plan_id, 0)

    assert claimed.steps == [] and claimed.stop
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "pending", "B": "pending", "G": "denied"}
    assert plan_status(conn, plan_id) == "blocked"
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM events WHERE plan_id = %s AND type = 'step.started'", (plan_id,)
        ).fetchone()["n"]
        == 0
    )
    # the expiry the executor found is in the audit trail and the history, as the tick's would be
    audited = conn.execute(
        "SELECT actor FROM audit_log WHERE plan_id = %s AND action = 'approval.expired'", (plan_id,)
    ).fetchall()
    assert [r["actor"] for r in audited] == ["executor"]
    history = conn.execute(
        "SELECT e.source FROM approval_events e JOIN approvals a ON a.id = e.approval_id "
        "WHERE a.step_id = %s AND e.event = 'expired'",
        (ids["G"],),
    ).fetchall()
    assert [r["source"] for r in history] == ["system"]


def test_a_plan_ordered_rolled_back_runs_no_further_step(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens["planner"], conn, "egr", {"A": [], "B": ["A"]}, tool="t.write")
    plan_id = body["plan"]["id"]
    ids = {s["item_key"].split("-", 1)[1]: s["id"] for s in body["steps"]}
    # midway: A has run, B could run next
    conn.execute("UPDATE plan_steps SET status = 'succeeded', attempts = 1 WHERE id = %s", (ids["A"],))
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    order_rollback(tokens, plan_id)  # the override committed; its undo has not started yet

    assert plan_status(conn, plan_id) == "blocked"
    assert runner.advance(plan_id, 5).ran == 0  # the tick's loop finds nothing to run
    again = client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert again.status == 409, again.text
    # no override may set it ready or executing while its steps are undone
    for action, step in (("allow", None), ("skip", ids["B"]), ("retry", ids["B"])):
        r = client.post(
            "/api/automation/override",
            json={"plan_id": plan_id, "step_id": step, "action": action, "reason": "try to go on"},
            token=tokens["admin"],
        )
        assert r.status == 409 and "rolling back: bad release" in r.json()["detail"], (action, r.text)
    # a re-evaluation records its verdict but leaves the status to the rollback
    reevaluated = client.post(f"/api/gates/{plan_id}", json={"reason": "check"}, token=tokens["planner"])
    assert reevaluated.status == 200 and reevaluated.json()["plan_status"] == "blocked", reevaluated.text
    reason = conn.execute("SELECT status_reason FROM plans WHERE id = %s", (plan_id,)).fetchone()["status_reason"]
    assert reason == "rolling back: bad release"
    assert statuses(client, tokens["viewer"], plan_id)["B"] == "pending"

    assert rollback.roll_back(plan_id, "test", "bad release", runner.time.monotonic() + 30) == "rolled_back"
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "rolled_back", "B": "pending"}


@pytest.mark.parametrize("ordered_by", ["admin", "executor"])
def test_a_step_that_finishes_while_the_plan_rolls_back_is_undone_too(
    client: Client, tokens, conn, tool_server, ordered_by: str
) -> None:
    """The rollback is ordered by an admin (an override), or by the executor of
    a plan with rollback_on_failure while another invocation still runs a step."""
    prefix = f"egl{ordered_by[0]}"
    webhook_tool(conn, "hook.egl", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
    body = make_plan(client, tokens["planner"], conn, prefix, {"A": [], "B": []}, tool="hook.egl")
    plan_id = body["plan"]["id"]
    ids = {s["item_key"].split("-", 1)[1]: s["id"] for s in body["steps"]}
    token = {s["item_key"].split("-", 1)[1]: s["idempotency_token"] for s in body["steps"]}
    # A has run; B is running in another invocation, its tool slow to answer
    conn.execute("UPDATE plan_steps SET status = 'succeeded', attempts = 1 WHERE id = %s", (ids["A"],))
    conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))
    tool_server.delay = 0.6
    worker = advance_until_a_tool_runs(plan_id, 10, tool_server)
    assert [c["key"] for c in tool_server.calls] == [token["B"]]

    if ordered_by == "admin":
        order_rollback(tokens, plan_id)
    # the undo reads the succeeded steps while B is still running: only A
    assert rollback.roll_back(plan_id, ordered_by, "bad release", time.monotonic() + 30) == "rolled_back"
    worker.join(10)
    assert not worker.is_alive()

    # B finished after the undo read its list: its own worker undid it
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "rolled_back", "B": "rolled_back"}
    assert plan_status(conn, plan_id) == "rolled_back"
    # B's undo may be asked twice (its worker, and the rollback finding it still succeeded): it acts once
    undone = {key: n for key, n in tool_server.effects.items() if key.endswith("-rollback")}
    assert undone == {token["A"] + "-rollback": 1, token["B"] + "-rollback": 1}
    entries = conn.execute(
        "SELECT step_id::text AS step_id FROM audit_log WHERE plan_id = %s AND action = 'step.rolled_back'", (plan_id,)
    ).fetchall()
    assert sorted(e["step_id"] for e in entries) == sorted([ids["A"], ids["B"]])  # each undo audited once


def test_the_cron_tick_finishes_a_rollback_that_stopped_midway(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.egt", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
    body = make_plan(client, tokens["planner"], conn, "egt", {"A": [], "B": ["A"], "C": ["B"]}, tool="hook.egt")
    plan_id = body["plan"]["id"]
    token = {s["item_key"].split("-", 1)[1]: s["idempotency_token"] for s in body["steps"]}
    conn.execute("UPDATE plan_steps SET status = 'succeeded', attempts = 1 WHERE plan_id = %s", (plan_id,))
    conn.execute("UPDATE plans SET status = 'completed' WHERE id = %s", (plan_id,))
    order_rollback(tokens, plan_id)
    # the undo got through C, then its function was cut off
    conn.execute("UPDATE plan_steps SET status = 'rolled_back' WHERE plan_id = %s AND item_key = 'egt-C'", (plan_id,))
    cron = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}

    # while the rollback's heartbeat is fresh, the tick leaves it to its run
    assert client.get("/api/cron/tick", headers=cron).status == 200
    assert statuses(client, tokens["viewer"], plan_id)["B"] == "succeeded"

    conn.execute("UPDATE plans SET updated_at = now() - interval '1 hour' WHERE id = %s", (plan_id,))
    r = client.get("/api/cron/tick", headers=cron)
    assert r.status == 200 and r.json()["rollbacks_dispatched"] >= 1
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "rolled_back", "B": "rolled_back", "C": "rolled_back"}
    plan = conn.execute("SELECT status, status_reason FROM plans WHERE id = %s", (plan_id,)).fetchone()
    assert (plan["status"], plan["status_reason"]) == ("rolled_back", "bad release")
    undo = [c["key"] for c in tool_server.calls if c["key"].endswith("-rollback")]
    assert undo == [token["B"] + "-rollback", token["A"] + "-rollback"]  # the rest, last first; C not again
    assert client.get("/api/cron/tick", headers=cron).json()["rollbacks_dispatched"] == 0


def test_a_rollback_out_of_time_stops_where_it_is_and_the_tick_finishes_it(
    client: Client, tokens, conn, tool_server
) -> None:
    webhook_tool(
        conn, "hook.ego", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}}, retries=0
    )
    body = make_plan(client, tokens["planner"], conn, "ego", {"A": [], "B": ["A"]}, tool="hook.ego")
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plan_steps SET status = 'succeeded', attempts = 1 WHERE plan_id = %s", (plan_id,))
    conn.execute("UPDATE plans SET status = 'completed' WHERE id = %s", (plan_id,))
    admin = order_rollback(tokens, plan_id)

    tool_server.delay = 1.0  # slower than the request's time left: the undo of B times out
    assert rollback.roll_back(plan_id, admin, "bad release", time.monotonic() + 0.3) == "blocked"
    plan = conn.execute("SELECT status, status_reason FROM plans WHERE id = %s", (plan_id,)).fetchone()
    assert (plan["status"], plan["status_reason"]) == ("blocked", "rolling back: bad release")  # not failed
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "succeeded", "B": "succeeded"}

    tool_server.delay = 0
    conn.execute("UPDATE plans SET updated_at = now() - interval '1 hour' WHERE id = %s", (plan_id,))
    r = client.get("/api/cron/tick", headers={"authorization": f"Bearer {settings.secret('CRON_SECRET')}"})
    assert r.status == 200 and r.json()["rollbacks_dispatched"] >= 1
    assert statuses(client, tokens["viewer"], plan_id) == {"A": "rolled_back", "B": "rolled_back"}
    assert plan_status(conn, plan_id) == "rolled_back"


@pytest.mark.parametrize("late_undo_gives_up", ["before the rollback ends", "after it ended"])
def test_a_late_step_whose_undo_runs_out_of_time_is_still_undone(
    client: Client, tokens, conn, monkeypatch, late_undo_gives_up: str
) -> None:
    """B finishes while the plan rolls back and its own worker's undo times out.
    Before the rollback ends: the rollback finds B still succeeded and undoes it.
    After it ended rolled_back: the plan is rolling back again, and the tick
    finishes it. Either way B ends undone, once."""
    from tests.support.tool_server import ToolServer

    before = late_undo_gives_up.startswith("before")
    prefix = "egb" if before else "ega"
    monkeypatch.setenv("NOFX_STEP_TIMEOUT_SECONDS", "1")
    forward, slow_undo, a_undo = ToolServer(delay=0.6).start(), ToolServer(delay=1.5).start(), ToolServer().start()
    try:
        # A's undo takes 2 s when B's worker must give up first, none when it must give up after
        a_undo.delay = 2.0 if before else 0.0
        webhook_tool(conn, f"undo.{prefix}a", a_undo.url)
        webhook_tool(conn, f"undo.{prefix}b", slow_undo.url, retries=0)
        webhook_tool(conn, f"hook.{prefix}a", forward.url, mutating=True, rollback={"tool_id": f"undo.{prefix}a"})
        webhook_tool(conn, f"hook.{prefix}b", forward.url, mutating=True, rollback={"tool_id": f"undo.{prefix}b"})
        body = make_plan(
            client,
            tokens["planner"],
            conn,
            prefix,
            {"A": [], "B": []},
            tools={"A": f"hook.{prefix}a", "B": f"hook.{prefix}b"},
        )
        plan_id = body["plan"]["id"]
        ids = {s["item_key"].split("-", 1)[1]: s["id"] for s in body["steps"]}
        token_b = next(s["idempotency_token"] for s in body["steps"] if s["id"] == ids["B"])
        conn.execute("UPDATE plan_steps SET status = 'succeeded', attempts = 1 WHERE id = %s", (ids["A"],))
        conn.execute("UPDATE plans SET status = 'executing' WHERE id = %s", (plan_id,))

        # B runs for 0.6 s in an invocation with 0.2 s of budget: its undo may take until 1.2 s
        worker = advance_until_a_tool_runs(plan_id, 0.2, forward)
        admin = order_rollback(tokens, plan_id)
        assert rollback.roll_back(plan_id, admin, "bad release", time.monotonic() + 30) == "rolled_back"
        worker.join(10)
        assert not worker.is_alive()

        if not before:  # the rollback ended first; B's worker gave up after it: rolling back again
            plan = conn.execute("SELECT status, status_reason FROM plans WHERE id = %s", (plan_id,)).fetchone()
            assert plan["status"] == "blocked" and plan["status_reason"].startswith("rolling back: ")
            assert statuses(client, tokens["viewer"], plan_id)["B"] == "succeeded"
            conn.execute("UPDATE plans SET updated_at = now() - interval '1 hour' WHERE id = %s", (plan_id,))
            cron = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}
            assert client.get("/api/cron/tick", headers=cron).json()["rollbacks_dispatched"] >= 1

        assert statuses(client, tokens["viewer"], plan_id) == {"A": "rolled_back", "B": "rolled_back"}
        assert plan_status(conn, plan_id) == "rolled_back"
        assert slow_undo.effects == {token_b + "-rollback": 1}  # asked twice, acted once
    finally:
        for server in (forward, slow_undo, a_undo):
            server.stop()


def test_steps_waiting_for_approval_do_not_starve_a_runnable_step(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.egs", "echo", approval=ONE)
    gated = {f"G{i}": [] for i in range(10)}
    body = make_plan(
        client,
        tokens["planner"],
        conn,
        "egs",
        {**gated, "Z": []},
        tools=dict.fromkeys(gated, "gate.egs"),
        options={"max_parallel": 2},
    )
    plan_id = body["plan"]["id"]
    z = next(s["id"] for s in body["steps"] if s["item_key"] == "egs-Z")
    conn.execute("UPDATE plan_steps SET position = 99 WHERE id = %s", (z,))  # last in the claim's order

    r = client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert r.status == 202, r.text
    now = statuses(client, tokens["viewer"], plan_id)
    assert now["Z"] == "succeeded"
    assert {now[k] for k in gated} == {"awaiting_approval"}  # every gated step was asked, none ran
    asked = conn.execute(
        "SELECT count(*) AS n FROM approvals WHERE plan_id = %s AND status = 'pending'", (plan_id,)
    ).fetchone()["n"]
    assert asked == 10
