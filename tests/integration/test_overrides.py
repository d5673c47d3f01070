"""POST /api/automation/override: every action, its scope, its record."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.plans import builtin_tool, make_plan, run_plan, steps_by_key, webhook_tool
from tests.support.wsgi_client import Client

OVERRIDE = "/api/automation/override"
EXECUTE = "/api/auto-planner/execute"


def plan_status(client: Client, tokens, plan_id: str) -> str:
    return client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"]


def override(client: Client, token: str, **body):
    return client.post(OVERRIDE, json=body, token=token)


def test_allow_lets_a_blocked_plan_run_and_shows_next_to_the_verdict(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens["planner"], conn, "ova", {"A": []}, tool="t.noundo")
    plan_id = body["plan"]["id"]
    assert client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]).status == 409
    r = override(client, tokens["admin"], plan_id=plan_id, action="allow", reason="docs change, reviewed by hand")
    assert r.status == 201
    record = r.json()
    assert (record["scope"], record["action"], record["actor"]) == ("plan", "allow", "admin@nofx.local")
    assert record["overridden_verdict"]["verdict"] == "block" and record["plan_status"] == "ready"
    gates = client.get(f"/api/gates/{plan_id}", token=tokens["viewer"]).json()
    assert gates["verdict"] == "block"  # the verdict stands; the override sits beside it
    assert [o["id"] for o in gates["overrides"]] == [record["id"]]
    assert gates["gates"]["structural"]["overrides"][0]["reason"] == "docs change, reviewed by hand"
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "completed"
    entry = conn.execute(
        "SELECT actor, snapshot_key, snapshot_digest FROM audit_log WHERE plan_id = %s AND action = 'override.allow'",
        (plan_id,),
    ).fetchone()
    assert entry["actor"] == "admin@nofx.local" and entry["snapshot_key"] and entry["snapshot_digest"]
    assert conn.execute("SELECT 1 FROM events WHERE plan_id = %s AND type = 'override.applied'", (plan_id,)).fetchone()


def test_a_gate_override_never_reaches_beyond_its_gate(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "export.ovg", "echo", mutating=True, rollback={"inputs": {}})
    conn.execute("UPDATE tools SET category = 'export' WHERE id = 'export.ovg'")
    # structural blocks (no rollback for t.noundo) and compliance blocks (untagged export)
    body = make_plan(
        client, tokens["planner"], conn, "ovg", {"A": [], "E": []}, tools={"A": "t.noundo", "E": "export.ovg"}
    )
    plan_id = body["plan"]["id"]
    verdicts = {g["gate"]: g["verdict"] for g in body["evaluations"]}
    assert verdicts["structural"] == verdicts["compliance"] == "block"
    override(client, tokens["admin"], plan_id=plan_id, gate="structural", action="allow", reason="rollback by hand")
    assert client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]).status == 409
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    override(
        client,
        tokens["admin"],
        plan_id=plan_id,
        gate="compliance",
        action="allow",
        reason="tag pending",
        expires_at=soon,
    )
    time.sleep(1.2)  # the compliance override has expired: blocked again
    assert client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]).status == 409
    override(client, tokens["admin"], plan_id=plan_id, gate="compliance", action="allow", reason="tag on file")
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "completed"


def test_skip_and_retry_a_failed_step(client: Client, tokens, conn, tool_server) -> None:
    tool_server.statuses = [200, 400]
    webhook_tool(conn, "hook.ovr", tool_server.url)
    body = make_plan(client, tokens["planner"], conn, "ovr", {"A": [], "B": ["A"], "C": ["B"]}, tool="hook.ovr")
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "failed"
    b = steps_by_key(client, tokens["viewer"], plan_id)["B"]
    r = override(client, tokens["admin"], plan_id=plan_id, step_id=b["id"], action="retry", reason="flaky upstream")
    assert r.status == 201 and r.json()["scope"] == "step"
    # the override dispatches a worker after its answer: the plan carries on without an Execute
    assert plan_status(client, tokens, plan_id) == "completed"
    assert steps_by_key(client, tokens["viewer"], plan_id)["B"]["attempts"] == 2
    # retrying something that did not fail is not applicable
    again = override(client, tokens["admin"], plan_id=plan_id, step_id=b["id"], action="retry", reason="again")
    assert again.status == 409


def test_skip_a_step_lets_the_plan_go_on(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "fail.ovs", "fail")
    body = make_plan(client, tokens["planner"], conn, "ovs", {"A": [], "B": ["A"]}, tools={"A": "fail.ovs"})
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "failed"
    a = steps_by_key(client, tokens["viewer"], plan_id)["A"]
    assert (
        override(client, tokens["admin"], plan_id=plan_id, step_id=a["id"], action="skip", reason="done by hand").status
        == 201
    )
    assert plan_status(client, tokens, plan_id) == "completed"  # carried on by the worker the override dispatched
    steps = steps_by_key(client, tokens["viewer"], plan_id)
    assert (steps["A"]["status"], steps["B"]["status"]) == ("skipped", "succeeded")


def test_retry_a_denied_step_asks_anew(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.ovd", "echo", approval={"required_approvals": 1, "timeout_seconds": 600})
    body = make_plan(client, tokens["planner"], conn, "ovd", {"G": []}, tool="gate.ovd")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    (first,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    client.post(
        f"/api/approvals/{first['id']}", json={"decision": "deny", "reason": "wrong window"}, token=tokens["approver"]
    )
    g = steps_by_key(client, tokens["viewer"], plan_id)["G"]
    assert g["status"] == "denied"
    override(client, tokens["admin"], plan_id=plan_id, step_id=g["id"], action="retry", reason="window is open now")
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    (second,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    assert second["id"] != first["id"] and second["digest"] != first["digest"]


def test_cancel_stops_the_plan_and_its_pending_approvals(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.ovc", "echo", approval={"required_approvals": 1, "timeout_seconds": 600})
    body = make_plan(client, tokens["planner"], conn, "ovc", {"G": []}, tool="gate.ovc")
    plan_id = body["plan"]["id"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    r = override(client, tokens["admin"], plan_id=plan_id, action="cancel", reason="superseded by plan 2")
    assert r.status == 201 and r.json()["plan_status"] == "cancelled"
    statuses = [
        a["status"]
        for a in client.get(f"/api/approvals?plan_id={plan_id}&status=all", token=tokens["viewer"]).json()["approvals"]
    ]
    assert statuses == ["cancelled"]
    assert client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"]).status == 409


def test_rollback_undoes_a_completed_plan(client: Client, tokens, conn, tool_server) -> None:
    webhook_tool(conn, "hook.ovb", tool_server.url, mutating=True, rollback={"inputs": {"undo": "{{inputs.target}}"}})
    body = make_plan(client, tokens["planner"], conn, "ovb", {"A": [], "B": ["A"]}, tool="hook.ovb")
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "completed"
    r = override(client, tokens["admin"], plan_id=plan_id, action="rollback", reason="bad release")
    assert r.status == 201
    plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()
    assert plan["plan"]["status"] == "rolled_back"
    assert {s["status"] for s in plan["steps"]} == {"rolled_back"}
    assert [c["body"]["inputs"] for c in tool_server.calls if c["key"].endswith("-rollback")] == [
        {"undo": "B"},
        {"undo": "A"},
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"action": "allow"}, ["body", "reason"]),
        ({"action": "allow", "reason": ""}, ["body", "reason"]),
        ({"action": "skip", "reason": "because"}, ["body"]),
        ({"action": "cancel", "reason": "because", "gate": "risk"}, ["body"]),
        ({"action": "allow", "reason": "because", "gate": "vibes"}, ["body", "gate"]),
        ({"action": "explode", "reason": "because"}, ["body", "action"]),
        ({"action": "allow", "reason": "because", "expires_at": "2020-01-01T00:00:00Z"}, ["body"]),
    ],
)
def test_bad_overrides_are_422_naming_the_field(client: Client, tokens, conn, body, loc) -> None:
    plan = make_plan(client, tokens["planner"], conn, f"ovx{abs(hash(str(body))) % 10**6}", {"A": []}, tool="t.noundo")
    r = override(client, tokens["admin"], plan_id=plan["plan"]["id"], **body)
    assert r.status == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]]


def test_only_admins_override_and_records_are_permanent(client: Client, tokens, conn, database_url) -> None:
    body = make_plan(client, tokens["planner"], conn, "ovp", {"A": []}, tool="t.noundo")
    plan_id = body["plan"]["id"]
    assert override(client, tokens["approver"], plan_id=plan_id, action="allow", reason="please").status == 403
    other = make_plan(client, tokens["planner"], conn, "ovq", {"B": []})
    wrong_step = other["steps"][0]["id"]
    r = override(client, tokens["admin"], plan_id=plan_id, step_id=wrong_step, action="skip", reason="x-plan")
    assert r.status == 422 and r.json()["errors"][0]["loc"] == ["body", "step_id"]
    override(client, tokens["admin"], plan_id=plan_id, action="allow", reason="reviewed")
    with psycopg.connect(database_url) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("UPDATE overrides SET reason = 'rewritten' WHERE plan_id = %s", (plan_id,))
