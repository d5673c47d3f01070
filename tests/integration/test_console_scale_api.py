"""What the console needs at a team's scale, through the HTTP API on the real
PostgreSQL: a queue that pages with counts that agree, filters and a natural
order; a re-asked approval that shows its past; a plan's progress and the
items it pulled in; override requests asked, granted once, raced. (A plan
approval's releases are shown and tested in tests/browser/test_queue_at_scale.py.)"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from urllib.parse import urlencode, urlsplit

from lib.web import auth
from tests.support.backlog import seed_backlog
from tests.support.plans import builtin_tool, make_plan, run_plan, steps_by_key
from tests.support.wsgi_client import Client

ONE = {"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"}


def queue(client: Client, token: str, **query) -> dict:
    r = client.get(f"/api/approvals?{urlencode(query)}", token=token)
    assert r.status == 200, r.text
    return r.json()


def test_a_queue_of_202_pages_with_counts_that_agree_in_natural_order(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.qs", "echo", approval=ONE)
    keys = [str(n) for n in range(1, 203)]
    body = make_plan(client, tokens["planner"], conn, "qs", {k: [] for k in keys}, tool="gate.qs")
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"

    first = queue(client, tokens["viewer"], plan_id=plan_id, limit=100)
    assert first["total"] == 202 and len(first["approvals"]) == 100 and first["next_offset"] == 100
    second = queue(client, tokens["viewer"], plan_id=plan_id, limit=100, offset=100)
    third = queue(client, tokens["viewer"], plan_id=plan_id, limit=100, offset=200)
    assert (second["next_offset"], third["next_offset"], len(third["approvals"])) == (200, None, 2)
    seen = [a["step"]["item_key"] for page in (first, second, third) for a in page["approvals"]]
    # every request reachable once, asked in the same instant and ordered as people count
    assert seen == [f"qs-{k}" for k in keys]
    past_the_end = queue(client, tokens["viewer"], plan_id=plan_id, offset=500)
    assert past_the_end["total"] == 202 and past_the_end["approvals"] == []

    # filters: search by key (its own % is literal), by tool, by pack
    found = [a["step"]["item_key"] for a in queue(client, tokens["viewer"], q="QS-20")["approvals"]]
    assert found == ["qs-20", "qs-200", "qs-201", "qs-202"]
    assert queue(client, tokens["viewer"], q="%")["total"] == 0
    assert queue(client, tokens["viewer"], tool="gate.qs")["total"] == 202
    assert queue(client, tokens["viewer"], pack="qs", limit=1)["total"] == 202
    assert queue(client, tokens["viewer"], pack="nope")["total"] == 0


def test_a_re_asked_approval_shows_the_denial_the_override_and_what_changed(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.qp", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "qp", {"G": []}, tool="gate.qp")
    plan_id = body["plan"]["id"]
    run_plan(client, tokens["planner"], plan_id)
    (first,) = queue(client, tokens["viewer"], plan_id=plan_id)["approvals"]
    assert first["past"] == [] and first["requester_ids"]
    client.post(
        f"/api/approvals/{first['id']}", json={"decision": "deny", "reason": "wrong window"}, token=tokens["approver"]
    )
    g = steps_by_key(client, tokens["viewer"], plan_id)["G"]
    r = client.post(
        "/api/automation/override",
        json={"plan_id": plan_id, "step_id": g["id"], "action": "retry", "reason": "window is open now"},
        token=tokens["admin"],
    )
    assert r.status == 201, r.text
    run_plan(client, tokens["planner"], plan_id)
    (second,) = queue(client, tokens["viewer"], plan_id=plan_id)["approvals"]
    assert second["id"] != first["id"]
    (past,) = second["past"]
    assert (past["id"], past["status"], past["decision_reason"]) == (first["id"], "denied", "wrong window")
    assert past["decided_by"] == [first_history_actor(client, tokens, first["id"], "deny")]
    assert [(o["action"], o["reason"]) for o in second["overrides"]] == [("retry", "window is open now")]
    assert second["history"][0]["person_id"] is None or isinstance(second["history"][0]["person_id"], str)


def first_history_actor(client: Client, tokens, approval_id: str, event: str) -> str:
    one = client.get(f"/api/approvals/{approval_id}", token=tokens["viewer"]).json()
    return next(h["actor"] for h in one["history"] if h["event"] == event)


def test_a_plan_shows_progress_and_what_it_pulled_in_and_why(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "echo.qd", "echo")
    deps = seed_backlog(conn, "qdb", {"BASE": []}, tool="echo.qd")
    seed_backlog(conn, "qda", {"TOP": []}, tool="echo.qd", extra_deps={"TOP": [deps["BASE"]]})
    r = client.post("/api/auto-planner/plan", json={"pack_ids": ["qda"]}, token=tokens["planner"])
    assert r.status == 201, r.text
    detail = r.json()
    plan_id = detail["plan"]["id"]
    read = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()
    assert [(p["item_key"], p["pack_id"], p["needed_by"]) for p in read["pulled_in"]] == [
        ("qdb-BASE", "qdb", ["qda-TOP"])
    ]
    assert read["progress"]["total"] == 2 and read["progress"]["waiting"] == 2 and read["progress"]["done"] == 0
    assert read["progress"]["est_remaining_ms"] > 0
    run_plan(client, tokens["planner"], plan_id)
    done = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["progress"]
    assert (done["done"], done["waiting"], done["est_remaining_ms"]) == (2, 0, None)


def test_a_planner_asks_for_an_override_and_an_admin_grants_it_once(client: Client, tokens, conn) -> None:
    builtin_tool(conn, "gate.qo", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "qo", {"G": [], "Z": ["G"]}, tool="gate.qo")
    plan_id = body["plan"]["id"]
    run_plan(client, tokens["planner"], plan_id)
    (pending,) = queue(client, tokens["viewer"], plan_id=plan_id)["approvals"]
    client.post(
        f"/api/approvals/{pending['id']}", json={"decision": "deny", "reason": "not now"}, token=tokens["approver"]
    )
    assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"] == "blocked"
    g = steps_by_key(client, tokens["viewer"], plan_id)["G"]

    asks = "/api/automation/override-requests"
    bad = client.post(asks, json={"plan_id": plan_id, "action": "retry"}, token=tokens["planner"])
    assert bad.status == 422 and ["body", "reason"] in [e["loc"] for e in bad.json()["errors"]]
    assert client.post(asks, json={"plan_id": plan_id, "reason": "x y z"}, token=tokens["viewer"]).status == 403
    ask = {"plan_id": plan_id, "action": "retry", "step_id": g["id"], "reason": "the window opened at 14:00"}
    first = client.post(asks, json=ask, token=tokens["planner"])
    assert first.status == 201, first.text
    again = client.post(asks, json=ask, token=tokens["planner"])
    assert again.status == 200 and again.json()["id"] == first.json()["id"]  # one open request, not two
    request_id = first.json()["id"]
    listed = client.get(f"{asks}?plan_id={plan_id}", token=tokens["viewer"]).json()["requests"]
    assert [(r["id"], r["status"], r["requested_by"]) for r in listed] == [(request_id, "open", "planner@nofx.local")]

    decide = f"{asks}/{request_id}"
    assert client.post(decide, json={"decision": "grant", "reason": "ok"}, token=tokens["planner"]).status == 403
    no_reason = client.post(decide, json={"decision": "grant"}, token=tokens["admin"])
    assert no_reason.status == 422
    granted = client.post(decide, json={"decision": "grant", "reason": "agreed with the owner"}, token=tokens["admin"])
    assert granted.status == 200, granted.text
    assert granted.json()["status"] == "granted" and granted.json()["override_id"]
    late = client.post(decide, json={"decision": "decline", "reason": "too late"}, token=tokens["admin"])
    assert late.status == 409 and late.json()["request"]["status"] == "granted"
    # the override it led to is on record with the admin's reason, and the step is asked anew
    (o,) = client.get(f"/api/gates/{plan_id}", token=tokens["viewer"]).json()["overrides"]
    assert (o["action"], o["reason"], o["actor"]) == ("retry", "agreed with the owner", "admin@nofx.local")
    actions = {r["action"] for r in conn.execute("SELECT action FROM audit_log WHERE plan_id = %s", (plan_id,))}
    assert {"override.requested", "override.request_granted", "override.retry"} <= actions


def test_two_admins_deciding_one_override_request_at_once_leave_one_decision(tokens, conn, app, live_server) -> None:
    client = Client(app)
    builtin_tool(conn, "gate.qr", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "qr", {"G": []}, tool="gate.qr")
    plan_id = body["plan"]["id"]
    run_plan(client, tokens["planner"], plan_id)
    (pending,) = queue(client, tokens["viewer"], plan_id=plan_id)["approvals"]
    client.post(f"/api/approvals/{pending['id']}", json={"decision": "deny", "reason": "no"}, token=tokens["approver"])
    g = steps_by_key(client, tokens["viewer"], plan_id)["G"]
    ask = {"plan_id": plan_id, "action": "retry", "step_id": g["id"], "reason": "owner agreed"}
    request_id = client.post("/api/automation/override-requests", json=ask, token=tokens["planner"]).json()["id"]

    host, port = urlsplit(live_server).hostname, urlsplit(live_server).port
    admins = [auth.mint_token("admin", subject=str(uuid.uuid4()), email=f"admin{i}@example.com") for i in range(6)]
    barrier = threading.Barrier(len(admins))
    statuses: list[int] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        decision = {"decision": "grant" if i % 2 else "decline", "reason": f"admin {i} decides"}
        connection = http.client.HTTPConnection(host, port, timeout=60)
        barrier.wait()
        connection.request(
            "POST",
            f"/api/automation/override-requests/{request_id}",
            body=json.dumps(decision),
            headers={"Authorization": f"Bearer {admins[i]}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        with lock:
            statuses.append(response.status)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(admins))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [409] * (len(admins) - 1)
    row = conn.execute("SELECT status, override_id FROM override_requests WHERE id = %s", (request_id,)).fetchone()
    overrides = conn.execute("SELECT count(*) AS n FROM overrides WHERE plan_id = %s", (plan_id,)).fetchone()["n"]
    assert overrides == (1 if row["status"] == "granted" else 0)  # a grant applied once, a decline never


def test_a_reason_of_spaces_around_two_letters_is_a_422_naming_it_never_a_500(client: Client, tokens, conn) -> None:
    plan_id = make_plan(client, tokens["planner"], conn, "qsp", {"A": []})["plan"]["id"]
    for path, token in (("/api/automation/override", "admin"), ("/api/automation/override-requests", "planner")):
        r = client.post(path, json={"plan_id": plan_id, "action": "cancel", "reason": "   ab  "}, token=tokens[token])
        assert r.status == 422, (path, r.text)
        assert ["body", "reason"] in [e["loc"] for e in r.json()["errors"]]
    asked = client.post(
        "/api/automation/override-requests",
        json={"plan_id": plan_id, "reason": "  needs a look  "},
        token=tokens["planner"],
    )
    assert asked.status == 201 and asked.json()["reason"] == "needs a look"
    r = client.post(
        f"/api/automation/override-requests/{asked.json()['id']}",
        json={"decision": "decline", "reason": " no "},
        token=tokens["admin"],
    )
    assert r.status == 422 and ["body", "reason"] in [e["loc"] for e in r.json()["errors"]]
    missing = client.post(
        "/api/automation/override-requests",
        json={"plan_id": str(uuid.uuid4()), "reason": "who?"},
        token=tokens["planner"],
    )
    assert missing.status == 422 and ["body", "plan_id"] in [e["loc"] for e in missing.json()["errors"]]
    wrong_step = {"plan_id": plan_id, "action": "retry", "step_id": str(uuid.uuid4()), "reason": "which one"}
    r = client.post("/api/automation/override-requests", json=wrong_step, token=tokens["planner"])
    assert r.status == 422 and ["body", "step_id"] in [e["loc"] for e in r.json()["errors"]]
