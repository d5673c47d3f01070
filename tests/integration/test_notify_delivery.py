"""Slack delivery from the outbox: a request delivers only what it queued (and
does nothing at all when it queued nothing); a claimed row is posted with no
transaction holding it, and an outcome is recorded only under the claim that
posted it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.trail import notify
from tests.support.plans import make_plan
from tests.support.wsgi_client import Client


@pytest.fixture
def other_plans_row(conn: psycopg.Connection) -> Iterator[dict[str, Any]]:
    """A due row of another plan (a retry waiting for the tick): {id, plan_id}."""
    row = conn.execute(
        "INSERT INTO notifications (channel, plan_id, payload) VALUES ('slack', %s, %s) RETURNING id, plan_id",
        (uuid.uuid4(), json.dumps({"text": "another plan"})),
    ).fetchone()
    yield row
    conn.execute("DELETE FROM notifications WHERE id = %s", (row["id"],))


@pytest.fixture
def deliveries(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of notify.deliver_due (the real one still runs)."""
    calls: list[Any] = []
    real = notify.deliver_due

    def recording(*args: Any, **kwargs: Any) -> dict[str, int]:
        calls.append(kwargs.get("plan_id"))
        return real(*args, **kwargs)

    monkeypatch.setattr(notify, "deliver_due", recording)
    return calls


def _plan(client: Client, tokens: dict[str, str], conn: psycopg.Connection, prefix: str, **seed: Any) -> dict:
    return make_plan(client, tokens["planner"], conn, prefix, {"A": [], "B": ["A"]}, **seed)


def _attempts(conn: psycopg.Connection, notification: dict[str, Any]) -> tuple[str, int]:
    row = conn.execute("SELECT status, attempts FROM notifications WHERE id = %s", (notification["id"],)).fetchone()
    return row["status"], row["attempts"]


def test_a_plan_that_is_not_blocked_does_no_slack_work(
    client: Client, tokens, conn, slack, other_plans_row, deliveries
) -> None:
    body = _plan(client, tokens, conn, "ndok")
    assert body["verdict"] != "block"
    again = client.post(f"/api/gates/{body['plan']['id']}", json={}, token=tokens["planner"])
    assert again.status == 200 and again.json()["plan_status"] == "ready"
    assert deliveries == []  # not even a query
    assert slack.received == []
    assert _attempts(conn, other_plans_row) == ("pending", 0)  # the tick's, untouched


def test_a_blocked_plan_delivers_its_own_row_only(
    client: Client, tokens, conn, slack, other_plans_row, deliveries
) -> None:
    body = _plan(client, tokens, conn, "ndblk", tools={"B": "t.noundo"})
    plan_id = body["plan"]["id"]
    assert body["verdict"] == "block"
    assert [str(p) for p in deliveries] == [plan_id]
    (message,) = slack.received
    assert "Plan blocked" in message["text"] and plan_id in json.dumps(message)
    row = conn.execute("SELECT status, attempts FROM notifications WHERE plan_id = %s", (plan_id,)).fetchone()
    assert (row["status"], row["attempts"]) == ("delivered", 1)
    assert _attempts(conn, other_plans_row) == ("pending", 0)
    # re-evaluated and still blocked: queued again, delivered again, for this plan only
    again = client.post(f"/api/gates/{plan_id}", json={}, token=tokens["planner"])
    assert again.status == 200 and again.json()["plan_status"] == "blocked"
    assert [str(p) for p in deliveries] == [plan_id, plan_id]
    assert len(slack.received) == 2
    assert _attempts(conn, other_plans_row) == ("pending", 0)
    # the tick delivers the backlog
    assert notify.deliver_due()["delivered"] >= 1
    assert any("another plan" in m["text"] for m in slack.received)
    assert _attempts(conn, other_plans_row) == ("delivered", 1)


def test_nothing_is_done_when_slack_is_not_configured(
    client: Client, tokens, conn, monkeypatch, other_plans_row, deliveries
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    body = _plan(client, tokens, conn, "ndoff", tools={"B": "t.noundo"})
    assert body["verdict"] == "block"
    assert deliveries == []
    queued = conn.execute("SELECT count(*) AS n FROM notifications WHERE plan_id = %s", (body["plan"]["id"],))
    assert queued.fetchone()["n"] == 0


def test_the_row_is_not_held_while_slack_is_posted_to(database_url: str, conn, slack, other_plans_row) -> None:
    seen: list[tuple[str, int]] = []

    def lock_it_from_elsewhere() -> None:
        # NOWAIT: an error (LockNotAvailable) if any transaction still held the row
        with psycopg.connect(database_url, row_factory=dict_row) as other:
            row = other.execute(
                "SELECT status, attempts FROM notifications WHERE id = %s FOR UPDATE NOWAIT", (other_plans_row["id"],)
            ).fetchone()
            seen.append((row["status"], row["attempts"]))
            other.rollback()

    slack.during.append(lock_it_from_elsewhere)
    assert notify.deliver_due(plan_id=other_plans_row["plan_id"]) == {"delivered": 1, "retry": 0, "failed": 0}
    assert seen == [("pending", 1)]  # the claim (attempt counted) was committed; nobody holds the row
    assert _attempts(conn, other_plans_row) == ("delivered", 1)


def test_an_outcome_is_recorded_only_under_the_claim_that_posted(
    database_url: str, conn, slack, other_plans_row
) -> None:
    def claimed_again_meanwhile() -> None:
        # as another instance would once the lease ran out: a new attempt, leased anew
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = now() + interval '10 minutes' "
                "WHERE id = %s",
                (other_plans_row["id"],),
            )

    slack.during.append(claimed_again_meanwhile)
    notify.deliver_due(plan_id=other_plans_row["plan_id"])
    assert len(slack.received) == 1
    assert _attempts(conn, other_plans_row) == ("pending", 2)  # the later claim decides, not this one
