"""Human approvals end to end on the real PostgreSQL: require_approval pauses,
decisions resume or block, expiry, the two-person rule, self-approval, 50
concurrent deciders, the signed Zig Todo webhook, the append-only history,
and the queue's signed artifact links."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from lib import settings
from lib.approvals import asking
from lib.data import storage
from lib.executor.tools import ToolCall, ToolResult
from lib.planner.models import Tool
from lib.web import auth, webhooks
from tests.support.events import event_types
from tests.support.plans import ONE, builtin_tool, make_plan, run_plan, steps_by_key
from tests.support.wsgi_client import Client

EXECUTE = "/api/auto-planner/execute"
TWO = {"required_approvals": 2, "timeout_seconds": 3600, "approver_role": "approver"}


def approver(name: str) -> str:
    return auth.mint_token("approver", subject=str(uuid.uuid5(uuid.NAMESPACE_URL, name)), email=f"{name}@example.com")


def paused_plan(client: Client, tokens, conn, prefix: str, policy: dict = ONE) -> tuple[str, dict]:
    """A -> G (G needs approval) -> Z; executed until it pauses at G."""
    builtin_tool(conn, f"gate.{prefix}", "echo", approval=policy)
    body = make_plan(
        client, tokens["planner"], conn, prefix, {"A": [], "G": ["A"], "Z": ["G"]}, tools={"G": f"gate.{prefix}"}
    )
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    (pending,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    return plan_id, pending


def decide(client: Client, approval_id: str, token: str, decision: str = "approve", **extra):
    return client.post(f"/api/approvals/{approval_id}", json={"decision": decision, **extra}, token=token)


def test_a_sensitive_step_pauses_and_an_approval_resumes_it(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr1")
    steps = steps_by_key(client, tokens["viewer"], plan_id)
    assert (steps["A"]["status"], steps["G"]["status"], steps["Z"]["status"]) == (
        "succeeded",
        "awaiting_approval",
        "pending",
    )
    assert pending["step"]["item_key"] == "apr1-G" and pending["tool_id"] == "gate.apr1"
    assert pending["status"] == "pending" and pending["seconds_left"] > 3500
    assert pending["inputs_summary"] == {"target": "G", "previous": "v0"}
    assert pending["digest"].startswith("sha256:") and pending["artifacts"][0]["name"] == "request.json"
    r = decide(client, pending["id"], tokens["approver"], reason="looks right")
    assert r.status == 200 and r.json()["status"] == "approved"
    assert [h["event"] for h in r.json()["history"]] == ["requested", "approve"]
    # the approval resumed the paused plan in the same request
    plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]
    assert plan["status"] == "completed"
    types = event_types(client, tokens["viewer"], plan_id, lambda t: "plan.completed" in t)
    assert types.index("approval.requested") < types.index("approval.decided") < types.index("plan.completed")


def test_a_denial_blocks_the_plan_with_its_reason(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr2")
    r = decide(client, pending["id"], tokens["approver"], "deny")
    assert r.status == 422 and r.json()["errors"][0]["loc"] == ["body", "reason"]
    assert "reason" in r.json()["detail"]
    r = decide(client, pending["id"], tokens["approver"], "deny", reason="not during the audit")
    assert r.status == 200 and r.json()["status"] == "denied"
    plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()
    assert plan["plan"]["status"] == "blocked" and "not during the audit" in plan["plan"]["status_reason"]
    step = next(s for s in plan["steps"] if s["item_key"] == "apr2-G")
    assert step["status"] == "denied" and "not during the audit" in step["error"]
    r = client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    assert r.status == 409


def test_an_expired_approval_is_410_and_counts_as_a_denial(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr3")
    conn.execute("UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = %s", (pending["id"],))
    r = decide(client, pending["id"], tokens["approver"])
    assert r.status == 410 and r.json()["approval"]["status"] == "expired"
    assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"] == "blocked"
    events = [
        r["event"]
        for r in conn.execute("SELECT event FROM approval_events WHERE approval_id = %s ORDER BY id", (pending["id"],))
    ]
    assert events == ["requested", "expired"]


def test_the_cron_tick_expires_overdue_approvals(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr4")
    conn.execute("UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = %s", (pending["id"],))
    secret = settings.secret("CRON_SECRET")
    assert client.get("/api/cron/tick").status == 401
    assert client.get("/api/cron/tick", headers={"authorization": "Bearer wrong"}).status == 401
    r = client.get("/api/cron/tick", headers={"authorization": f"Bearer {secret}"})
    assert r.status == 200 and r.json()["expired_approvals"] >= 1
    status = conn.execute("SELECT status FROM approvals WHERE id = %s", (pending["id"],)).fetchone()["status"]
    assert status == "expired"
    assert conn.execute("SELECT 1 FROM events WHERE plan_id = %s AND type = 'approval.expired'", (plan_id,)).fetchone()


def test_two_distinct_people_are_needed_and_nobody_votes_twice(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr5", TWO)
    alice, bob = approver("alice"), approver("bob")
    first = decide(client, pending["id"], alice)
    assert first.status == 200 and (first.json()["status"], first.json()["approvals"]) == ("pending", 1)
    again = decide(client, pending["id"], alice)
    assert again.status == 409 and "already decided" in again.json()["detail"]
    second = decide(client, pending["id"], bob)
    assert second.status == 200 and second.json()["status"] == "approved" and second.json()["approvals"] == 2
    assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"] == "completed"


def test_the_requester_may_not_approve(client: Client, tokens, conn) -> None:
    _, pending = paused_plan(client, tokens, conn, "apr6")
    # the planner who planned and executed it, even with an approver's role
    as_requester = auth.mint_token("admin", subject=str(uuid.uuid5(uuid.NAMESPACE_URL, "planner")))
    r = decide(client, pending["id"], as_requester)
    assert r.status == 403 and r.json()["type"].endswith("/self-approval")
    assert decide(client, pending["id"], tokens["planner"]).status == 403  # role too small as well
    assert decide(client, pending["id"], tokens["viewer"]).status == 403


def test_fifty_concurrent_decisions_have_exactly_one_winner(tokens, conn, app, live_server) -> None:
    client = Client(app)
    _, pending = paused_plan(client, tokens, conn, "apr7")
    host, port = urlsplit(live_server).hostname, urlsplit(live_server).port
    people = [approver(f"racer{i}") for i in range(50)]
    barrier = threading.Barrier(50)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        decision = {"decision": "approve"} if i % 2 else {"decision": "deny", "reason": f"racer {i} says no"}
        connection = http.client.HTTPConnection(host, port, timeout=60)
        barrier.wait()
        connection.request(
            "POST",
            f"/api/approvals/{pending['id']}",
            body=json.dumps(decision),
            headers={"Authorization": f"Bearer {people[i]}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        with lock:
            results.append((response.status, json.loads(response.read())))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] + [409] * 49
    winner = next(b for s, b in results if s == 200)
    for status, body in results:
        if status == 409:
            assert body["approval"]["status"] == winner["status"]  # every loser sees the standing decision
    votes = conn.execute(
        "SELECT count(*) AS n FROM approval_events WHERE approval_id = %s AND event IN ('approve', 'deny')",
        (pending["id"],),
    ).fetchone()["n"]
    assert votes == 1


def _signed(body: dict, webhook_id: str, timestamp: float | None = None) -> tuple[str, dict]:
    raw = json.dumps(body)
    headers = webhooks.sign(settings.secret("ZIG_TODO_WEBHOOK_SECRET"), webhook_id, raw.encode(), timestamp)
    return raw, {**headers, "content-type": "application/json"}


def test_the_signed_zig_todo_webhook(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr8")
    url = f"/api/approvals/{pending['id']}"
    carol = str(uuid.uuid4())  # Zig Todo's user, registered here by an admin
    assert (
        client.post("/api/people", json={"id": carol, "email": "carol@zigtodo.example"}, token=tokens["admin"]).status
        == 201
    )
    body = {
        "decision": "approve",
        "approver": "carol@zigtodo.example",
        "reason": "ticket ZT-42",
        "approval_id": pending["id"],
    }
    raw, headers = _signed(body, "msg_bad")
    assert client.post(url, data=raw, headers={**headers, "webhook-signature": "v1,AAAA"}).status == 401
    raw, headers = _signed(body, "msg_stale", timestamp=time.time() - 600)
    stale = client.post(url, data=raw, headers=headers)
    assert stale.status == 401 and "too old" in stale.json()["detail"]
    raw, headers = _signed({"decision": "approve", "approval_id": pending["id"]}, "msg_anon")
    assert client.post(url, data=raw, headers=headers).status == 422  # who decided must be said
    raw, headers = _signed(body, "msg_good")
    good = client.post(url, data=raw, headers=headers)
    assert good.status == 200 and good.json()["status"] == "approved"
    assert good.json()["history"][-1]["source"] == "webhook"
    assert good.json()["history"][-1]["actor"] == "carol@zigtodo.example"
    replay = client.post(url, data=raw, headers=headers)  # the same delivery again
    assert replay.status == 200 and replay.header("idempotent-replayed") == "true"
    assert replay.json() == good.json()
    votes = conn.execute(
        "SELECT count(*) AS n FROM approval_events WHERE approval_id = %s AND event = 'approve'", (pending["id"],)
    ).fetchone()["n"]
    assert votes == 1
    assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"] == "completed"


@pytest.mark.parametrize("role", ["service_role", "owner"])
def test_the_history_cannot_be_altered_by_anyone(client: Client, tokens, conn, database_url, role) -> None:
    _, pending = paused_plan(client, tokens, conn, f"aph{role[:3]}")
    # as on Supabase, where default privileges give service_role everything:
    # the trigger, not a missing grant, is what refuses
    conn.execute("GRANT ALL ON approval_events TO service_role")
    for statement in (
        "UPDATE approval_events SET reason = 'rewritten' WHERE approval_id = %s",
        "DELETE FROM approval_events WHERE approval_id = %s",
    ):
        with psycopg.connect(database_url) as c:
            if role == "service_role":
                c.execute("SET LOCAL ROLE service_role")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                c.execute(statement, (pending["id"],))
    with psycopg.connect(database_url) as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("TRUNCATE approval_events CASCADE")


def test_the_queue_links_expire_and_reject_tampering(client: Client, tokens, conn) -> None:
    _, pending = paused_plan(client, tokens, conn, "apr9")
    (artifact,) = pending["artifacts"]
    url = urlsplit(artifact["url"])
    fetched = client.get(f"{url.path}?{url.query}")
    assert fetched.status == 200 and json.loads(fetched.body)["approval_id"] == pending["id"]
    tampered = url.query.replace("sig=", "sig=0")
    assert client.get(f"{url.path}?{tampered}").status == 403
    assert pending["id"] in url.path
    other_object = client.get(f"{url.path.replace(pending['id'], str(uuid.uuid4()))}?{url.query}")
    assert other_object.status == 403  # a signature is for one object only
    key = url.path.removeprefix(storage.LOCAL_PREFIX)
    past = int(time.time()) - 5
    expired = client.get(f"{url.path}?expires={past}&sig={storage.sign(key, past)}")
    assert expired.status == 410


def test_a_changed_step_cancels_the_pending_approval_and_asks_anew(client: Client, tokens, conn) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "apr10")
    # the plan moves to a new version (e.g. a replan): what was asked for is no longer what would run
    conn.execute("UPDATE plans SET version = version + 1 WHERE id = %s", (plan_id,))
    r = decide(client, pending["id"], tokens["approver"])
    assert r.status == 409 and r.json()["type"].endswith("/approval-stale")
    assert r.json()["approval"]["status"] == "cancelled"
    assert "changed" in r.json()["approval"]["decision_reason"]
    client.post(EXECUTE, json={"plan_id": plan_id}, token=tokens["planner"])
    (fresh,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    assert fresh["id"] != pending["id"] and fresh["digest"] != pending["digest"]
    assert decide(client, fresh["id"], tokens["approver"]).json()["status"] == "approved"


def test_require_approval_as_a_decorator(client: Client, tokens, conn, database_url) -> None:
    builtin_tool(conn, "gate.deco", "echo", approval=ONE)
    body = make_plan(client, tokens["planner"], conn, "deco", {"D": []}, tools={"D": "gate.deco"})
    plan_id = body["plan"]["id"]
    conn.execute("UPDATE plans SET executed_by = 'planner@nofx.local' WHERE id = %s", (plan_id,))
    runs: list[str] = []

    @asking.require_approval("gate.deco")
    def deploy(call: ToolCall) -> ToolResult:
        runs.append(call.token)
        return ToolResult(output={"deployed": True})

    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as c:
        plan = c.execute("SELECT * FROM plans WHERE id = %s", (plan_id,)).fetchone()
        step = c.execute("SELECT * FROM plan_steps WHERE plan_id = %s", (plan_id,)).fetchone()
        tool = Tool(id="gate.deco", approval_policy=ONE)
        call = ToolCall(
            plan=plan,
            step=step,
            tool=tool,
            inputs=step["inputs"],
            token=step["idempotency_token"],
            deadline=time.monotonic() + 5,
            conn=c,
        )
        with pytest.raises(asking.ApprovalPending) as waiting:
            deploy(call)
        c.commit()
        assert runs == []
        assert decide(client, waiting.value.approval_id, tokens["approver"]).status == 200
        assert deploy(call).output == {"deployed": True}
        assert runs == [step["idempotency_token"]]


def test_the_queue_signs_its_page_of_links_at_once(client: Client, tokens, conn, storage_calls) -> None:
    first, _ = paused_plan(client, tokens, conn, "aqb1")
    second, _ = paused_plan(client, tokens, conn, "aqb2")
    storage_calls["signed_urls"].clear()
    queue = client.get("/api/approvals?status=pending&limit=500", token=tokens["viewer"]).json()["approvals"]
    mine = [a for a in queue if a["plan"]["id"] in (first, second)]
    assert len(mine) == 2 and all(a["artifacts"] for a in mine)
    assert len(storage_calls["signed_urls"]) == 1 and storage_calls["signed_url"] == 0
    linked = {unquote(urlsplit(a["artifacts"][0]["url"]).path.removeprefix("/_storage/")) for a in mine}
    assert linked <= set(storage_calls["signed_urls"][0])
    opened = client.get(mine[0]["artifacts"][0]["url"])
    assert opened.status == 200 and json.loads(opened.body)["approval_id"] == mine[0]["id"]
