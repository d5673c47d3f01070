"""People are told where they work: an approval request reaches Slack (Block
Kit, through chat.postMessage) and Zig Todo (a signed outbound webhook), its
votes and outcome go into the request's Slack thread and close the todo, a
warned plan is announced, and an outage of either fails nothing and is
retried. Loopback receivers stand in for Slack's Web API and Zig Todo."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lib import settings
from lib.web import auth
from tests.browser.console import paused_plan
from tests.support import message_receivers
from tests.support.plans import builtin_tool, make_plan, run_plan
from tests.support.wsgi_client import Client

CRON = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}
PUBLIC = "https://nofx.example.com"


class Told:
    def __init__(self, slack: message_receivers.Receiver, zig: message_receivers.Receiver) -> None:
        self.slack, self.zig = slack, zig

    def slack_about(self, needle: str) -> list[dict[str, Any]]:
        return [m for m in self.slack.received if needle in json.dumps(m)]

    def zig_about(self, approval_id: str) -> list[dict[str, Any]]:
        return [m for m in self.zig.received if m["approval_id"] == approval_id]


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> Iterator[Told]:
    secret = settings.secret("ZIG_TODO_WEBHOOK_SECRET")
    with (
        message_receivers.running(message_receivers.SlackApi) as (slack, slack_url),
        message_receivers.running(message_receivers.ZigTodo, secret or "") as (zig, zig_url),
    ):
        monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
        monkeypatch.setenv("SLACK_BOT_TOKEN", message_receivers.SLACK_TOKEN)
        monkeypatch.setenv("SLACK_CHANNEL", "C0APPROVALS")
        monkeypatch.setenv("SLACK_API_URL", f"{slack_url}/api")
        monkeypatch.setenv("ZIG_TODO_URL", f"{zig_url}/hooks/nofx")
        monkeypatch.setenv("NOFX_PUBLIC_URL", PUBLIC)
        yield Told(slack, zig)


def _decide(client: Client, token: str, approval_id: str, decision: str, reason: str | None = None) -> Any:
    body = {"decision": decision, **({"reason": reason} if reason else {})}
    return client.post(f"/api/approvals/{approval_id}", json=body, token=token)


def test_a_request_reaches_slack_and_zig_todo_and_the_outcome_follows_in_the_thread(
    client: Client, tokens, conn, told: Told
) -> None:
    plan_id, approval = paused_plan(client, tokens, conn, "ntf1")
    (request,) = told.slack_about(approval["id"])
    assert request["channel"] == "C0APPROVALS" and "thread_ts" not in request
    text = json.dumps(request["blocks"])
    assert "Approval needed: step `ntf1-G`" in text and "gate.ntf1" in text and "1 h left" in text
    assert f"{PUBLIC}/#/approvals/{approval['id']}" in text and f"{PUBLIC}/#/plans/{plan_id}" in text
    assert "127.0.0.1" not in text

    (todo,) = told.zig_about(approval["id"])
    assert todo["type"] == "approval.requested" and todo["webhook_id"] == f"nofx-approval-requested-{approval['id']}"
    assert todo["decide"]["url"] == f"{PUBLIC}/api/approvals/{approval['id']}"
    assert todo["decide"]["body"]["approval_id"] == approval["id"] and todo["step"]["item_key"] == "ntf1-G"
    assert todo["tool_id"] == "gate.ntf1" and todo["required_approvals"] == 1
    assert told.zig.refused == []  # the receiver checked every signature

    assert _decide(client, tokens["approver"], approval["id"], "approve").status == 200
    replies = [m for m in told.slack.received if m.get("thread_ts") == request["ts"]]
    assert [m["text"] for m in replies] == ["Approved by approver@nofx.local"]
    resolved = [m for m in told.zig_about(approval["id"]) if m["type"] == "approval.resolved"]
    assert [(m["status"], m["webhook_id"]) for m in resolved] == [
        ("approved", f"nofx-approval-resolved-{approval['id']}")
    ]


def test_each_vote_of_a_two_person_rule_is_told_in_the_thread(client: Client, tokens, conn, told: Told) -> None:
    two = {"required_approvals": 2, "timeout_seconds": 3600, "approver_role": "approver"}
    builtin_tool(conn, "gate.ntf2", "echo", approval=two)
    body = make_plan(client, tokens["planner"], conn, "ntf2", {"A": [], "G": ["A"]}, tools={"G": "gate.ntf2"})
    run_plan(client, tokens["planner"], body["plan"]["id"])
    (approval,) = client.get(f"/api/approvals?plan_id={body['plan']['id']}", token=tokens["viewer"]).json()["approvals"]
    (request,) = told.slack_about(approval["id"])
    assert "2 approvers" in json.dumps(request["blocks"])

    kim = auth.mint_token("approver", email="kim@example.com", subject=str(uuid.uuid4()))
    lee = auth.mint_token("approver", email="lee@example.com", subject=str(uuid.uuid4()))
    assert _decide(client, kim, approval["id"], "approve").status == 200
    assert _decide(client, lee, approval["id"], "deny", "not during the freeze").status == 200
    thread = [m["text"] for m in told.slack.received if m.get("thread_ts") == request["ts"]]
    assert thread == [
        "kim@example.com approved (1 of 2); waiting for another approver",
        "Denied by lee@example.com: not during the freeze",
    ]
    (resolved,) = [m for m in told.zig_about(approval["id"]) if m["type"] == "approval.resolved"]
    assert resolved["status"] == "denied" and resolved["reason"] == "not during the freeze"


def test_an_outage_fails_nothing_replies_wait_for_their_request_and_retries_reuse_the_delivery_id(
    client: Client, tokens, conn, told: Told
) -> None:
    told.slack.answers = [500, 500, "not_ok"]  # Slack down, then refusing
    told.zig.answers = [503, 503]
    plan_id, approval = paused_plan(client, tokens, conn, "ntf3")  # pauses all the same
    assert told.slack.received == [] and told.zig.received == []
    rows = conn.execute(
        "SELECT channel, status, attempts, last_error FROM notifications WHERE approval_id = %s ORDER BY id",
        (approval["id"],),
    ).fetchall()
    assert [(r["channel"], r["status"], r["attempts"]) for r in rows] == [
        ("slack", "pending", 1),
        ("zig_todo", "pending", 1),
    ]
    assert "500" in rows[0]["last_error"] and "503" in rows[1]["last_error"]

    # the decision is made while the request's message is still undelivered: its reply waits for it
    assert _decide(client, tokens["approver"], approval["id"], "deny", "wrong window").status == 200
    waiting = conn.execute(
        "SELECT channel, status, attempts, thread_of FROM notifications "
        "WHERE approval_id = %s AND event IN ('approval.denied', 'approval.resolved') ORDER BY channel",
        (approval["id"],),
    ).fetchall()
    # the Slack reply waits for its thread; Zig Todo's resolution waits for its request
    assert [(w["channel"], w["status"], w["attempts"]) for w in waiting] == [
        ("slack", "pending", 0),
        ("zig_todo", "pending", 0),
    ]
    assert all(w["thread_of"] is not None for w in waiting)

    for _ in range(3):  # the tick's retries (their backoff skipped)
        conn.execute(
            "UPDATE notifications SET next_attempt_at = now() WHERE plan_id = %s AND status = 'pending'", (plan_id,)
        )
        client.get("/api/cron/tick", headers=CRON)
    (request,) = told.slack_about(approval["id"])[:1]
    assert "thread_ts" not in request
    thread = [m["text"] for m in told.slack.received if m.get("thread_ts") == request["ts"]]
    assert thread == ["Denied by approver@nofx.local: wrong window"]
    ids = [m["webhook_id"] for m in told.zig_about(approval["id"])]
    assert ids == [f"nofx-approval-requested-{approval['id']}", f"nofx-approval-resolved-{approval['id']}"]
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM notifications WHERE approval_id = %s AND status <> 'delivered'",
            (approval["id"],),
        ).fetchone()["n"]
        == 0
    )


def test_a_warned_plan_is_announced(client: Client, tokens, conn, told: Told) -> None:
    builtin_tool(conn, "unpriced.ntf4", "echo")
    conn.execute("UPDATE tools SET cost_model = NULL WHERE id = 'unpriced.ntf4'")
    body = make_plan(client, tokens["planner"], conn, "ntf4", {"A": []}, tools={"A": "unpriced.ntf4"})
    assert body["verdict"] == "warn"
    (message,) = told.slack_about(body["plan"]["id"])
    assert message["text"].startswith("Plan needs a look (warn)")


def test_an_incoming_webhook_gets_the_request_and_the_outcome_as_messages_of_their_own(
    client: Client, tokens, conn, slack, monkeypatch
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL", "ZIG_TODO_URL"):
        monkeypatch.delenv(name, raising=False)
    _, approval = paused_plan(client, tokens, conn, "ntf5")
    assert _decide(client, tokens["approver"], approval["id"], "approve").status == 200
    texts = [m["text"] for m in slack.received]
    assert any(t.startswith("Approval needed: step `ntf5-G`") for t in texts)
    assert "Approved by approver@nofx.local" in texts  # a message of its own: a webhook cannot thread


def test_links_point_at_the_deployment_on_vercel_never_at_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOFX_PUBLIC_URL", raising=False)
    monkeypatch.setenv("VERCEL_URL", "nofx-git-main-team.vercel.app")
    assert settings.public_url() == "https://nofx-git-main-team.vercel.app"
    monkeypatch.setenv("VERCEL_PROJECT_PRODUCTION_URL", "nofx.example.com")  # the production domain wins
    assert settings.public_url() == "https://nofx.example.com"
    monkeypatch.setenv("NOFX_PUBLIC_URL", "https://approvals.example.com/")  # and an explicit one over both
    assert settings.public_url() == "https://approvals.example.com"


def test_a_webhook_that_says_where_the_message_went_gets_the_outcome_in_its_thread(
    client: Client, tokens, conn, monkeypatch
) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL", "ZIG_TODO_URL"):
        monkeypatch.delenv(name, raising=False)
    with message_receivers.running(message_receivers.SlackRelay) as (relay, url):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{url}/services/T0/B0/X")
        _, approval = paused_plan(client, tokens, conn, "ntf6")
        assert _decide(client, tokens["approver"], approval["id"], "deny", "not today").status == 200
    (request,) = [m for m in relay.received if m["text"].startswith("Approval needed: step `ntf6-G`")]
    replies = [m["text"] for m in relay.received if m.get("thread_ts") == request["ts"]]
    assert replies == ["Denied by approver@nofx.local: not today"]


def test_a_refusal_no_retry_can_fix_is_given_up_at_once(client: Client, tokens, conn, told: Told) -> None:
    told.slack.answers = ["not_in_channel"]  # the bot was never invited to the channel
    _, approval = paused_plan(client, tokens, conn, "ntf7")
    row = conn.execute(
        "SELECT status, attempts, last_error FROM notifications WHERE approval_id = %s AND channel = 'slack'",
        (approval["id"],),
    ).fetchone()
    assert (row["status"], row["attempts"]) == ("failed", 1) and "not_in_channel" in row["last_error"]
    failed = conn.execute(
        "SELECT data FROM events WHERE type = 'notification.failed' AND plan_id = %s", (approval["plan"]["id"],)
    ).fetchone()
    assert failed is not None and failed["data"]["channel"] == "slack"
