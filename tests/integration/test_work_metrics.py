"""GET /api/metrics tells how the machinery is doing, and its figures move
when the work does: events by type, Realtime broadcasts, notifications by
channel with their retries, idempotency replays, step attempts, and the age
of the oldest due work."""

from __future__ import annotations

import re

from tests.support.plans import executed_plan
from tests.support.wsgi_client import Client


def _metrics(client: Client, tokens) -> dict[str, float]:
    r = client.get("/api/metrics", token=tokens["admin"])
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    found = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def _get(found: dict[str, float], name: str) -> float:
    return found.get(name, 0.0)


def test_the_machinerys_figures_move_with_the_work(client: Client, tokens, conn) -> None:
    before = _metrics(client, tokens)
    for name in ("nofx_idempotency_replays", "nofx_step_attempts_total", 'nofx_oldest_due_seconds{work="step"}'):
        assert name in before, name

    executed_plan(client, tokens, conn, "wmx1")
    body = {"pack_id": "wmx2", "items": [{"key": "WMX-1", "title": "one", "tool_id": "echo.wmx1"}]}
    headers = {"Idempotency-Key": "metrics-replay-1"}
    first = client.post("/api/backlog", json=body, token=tokens["planner"], headers=headers)
    again = client.post("/api/backlog", json=body, token=tokens["planner"], headers=headers)
    assert first.status == again.status == 201 and again.headers["idempotent-replayed"] == "true"
    conn.execute(
        "INSERT INTO notifications (channel, payload, next_attempt_at, attempts) "
        "VALUES ('zig_todo', '{}', now() - interval '40 seconds', 1)"
    )

    after = _metrics(client, tokens)
    assert (
        _get(after, 'nofx_events_total{type="plan.completed"}')
        >= _get(before, 'nofx_events_total{type="plan.completed"}') + 1
    )
    assert (
        _get(after, 'nofx_events_total{type="step.started"}')
        >= _get(before, 'nofx_events_total{type="step.started"}') + 2
    )
    # the plain PostgreSQL's realtime.send (the prelude's) writes every broadcast
    assert _get(after, 'nofx_realtime_broadcasts_last_hour{outcome="sent"}') > _get(
        before, 'nofx_realtime_broadcasts_last_hour{outcome="sent"}'
    )
    assert _get(after, 'nofx_realtime_broadcasts_last_hour{outcome="missing"}') == 0
    assert _get(after, "nofx_step_attempts_total") >= _get(before, "nofx_step_attempts_total") + 2
    assert _get(after, "nofx_idempotency_replays") == _get(before, "nofx_idempotency_replays") + 1
    assert _get(after, 'nofx_oldest_due_seconds{work="notification"}') >= 40
    assert re.search(
        r"^nofx_events_total\{type=\"plan\.ready\"\} \d", client.get("/api/metrics", token=tokens["admin"]).text, re.M
    )


def test_slack_retries_and_deliveries_are_counted_by_channel(client: Client, tokens, conn, slack) -> None:
    from tests.support.plans import make_plan

    before = _metrics(client, tokens)
    slack.answers = [503]
    # a plan the compliance gate blocks (an untagged export) is announced to Slack
    conn.execute(
        "INSERT INTO tools (id, name, kind, config, category) VALUES ('export.wmx3', 'export', 'builtin', "
        "'{\"action\": \"echo\"}', 'export') ON CONFLICT (id) DO NOTHING"
    )
    body = make_plan(client, tokens["planner"], conn, "wmx3", {"E": []}, tools={"E": "export.wmx3"})
    assert body["verdict"] == "block"
    conn.execute("UPDATE notifications SET next_attempt_at = now() WHERE plan_id = %s", (body["plan"]["id"],))
    from lib.trail import notify

    assert notify.deliver_due(plan_id=body["plan"]["id"])["delivered"] == 1
    after = _metrics(client, tokens)
    delivered = 'nofx_notifications{channel="slack",status="delivered"}'
    assert _get(after, delivered) == _get(before, delivered) + 1
    retried = 'nofx_notification_retries_total{channel="slack"}'
    assert _get(after, retried) == _get(before, retried) + 1
