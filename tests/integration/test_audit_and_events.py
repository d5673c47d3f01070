"""The tamper-evident audit trail (chain, snapshots, replay) and the event
outbox (cursor, Realtime broadcast rows, NOTIFY)."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from lib import settings
from lib.data import storage
from tests.support.events import wait_for_page
from tests.support.plans import executed_plan
from tests.support.wsgi_client import Client


def test_the_trail_links_every_act_and_verifies(client: Client, tokens, conn) -> None:
    plan_id = executed_plan(client, tokens, conn, "aud1")
    trail = client.get(f"/api/audit/{plan_id}", token=tokens["viewer"]).json()
    chain = trail["chain"]
    assert chain["ok"] is True and chain["entries"] == trail["entries_total"] and chain["first_break"] is None
    assert chain["scope"] == "full" and chain["verified_from_seq"] == 1  # no checkpoint yet: from the first entry
    assert trail["snapshots_ok"] is True
    actions = [e["action"] for e in trail["entries"]]
    assert actions[0] == "plan.created" and actions[-1] == "plan.completed"
    assert actions.count("step.started") == 2 and actions.count("step.succeeded") == 2
    created = trail["entries"][0]
    assert created["pack_ids"] == ["aud1"] and len(created["backlog_item_ids"]) == created["backlog_items_total"] == 2
    step_entry = next(e for e in trail["entries"] if e["action"] == "step.succeeded")
    assert step_entry["step_id"] and len(step_entry["backlog_item_ids"]) == 1
    assert [e["seq"] for e in trail["entries"]] == list(range(1, len(actions) + 1))
    for a, b in zip(trail["entries"], trail["entries"][1:], strict=False):
        assert b["prev_hash"] == a["hash"]
    final = trail["entries"][-1]["snapshot"]
    assert final["verified"] is True
    snap = client.get(final["url"].removeprefix(settings.public_url()))
    assert snap.status == 200 and json.loads(snap.body)["plan"]["status"] == "completed"


def _tamper(database_url: str, sql: str, params: tuple) -> None:
    """What only a superuser could do: switch the guard off, rewrite history."""
    with psycopg.connect(database_url, autocommit=True) as c:
        c.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            c.execute(sql, params)
        finally:
            c.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_a_rewritten_entry_is_detected(client: Client, tokens, conn, database_url) -> None:
    plan_id = executed_plan(client, tokens, conn, "aud2")
    _tamper(
        database_url,
        "UPDATE audit_log SET content = replace(content, 'executor', 'nobody') WHERE plan_id = %s AND seq = 3",
        (plan_id,),
    )
    trail = client.get(f"/api/audit/{plan_id}", token=tokens["viewer"]).json()
    assert trail["chain"]["ok"] is False
    assert trail["chain"]["first_break"]["seq"] == 3 and "altered" in trail["chain"]["first_break"]["reason"]


def test_a_removed_entry_is_detected(client: Client, tokens, conn, database_url) -> None:
    plan_id = executed_plan(client, tokens, conn, "aud3")
    _tamper(database_url, "DELETE FROM audit_log WHERE plan_id = %s AND seq = 2", (plan_id,))
    trail = client.get(f"/api/audit/{plan_id}", token=tokens["viewer"]).json()
    assert trail["chain"]["ok"] is False and "missing" in trail["chain"]["first_break"]["reason"]


def test_a_changed_snapshot_is_detected(client: Client, tokens, conn) -> None:
    plan_id = executed_plan(client, tokens, conn, "aud4")
    key = conn.execute(
        "SELECT snapshot_key FROM audit_log WHERE plan_id = %s AND snapshot_key IS NOT NULL ORDER BY seq DESC LIMIT 1",
        (plan_id,),
    ).fetchone()["snapshot_key"]
    storage.backend().put(key, b'{"plan": {"status": "rewritten"}}')
    trail = client.get(f"/api/audit/{plan_id}", token=tokens["viewer"]).json()
    assert trail["snapshots_ok"] is False and trail["chain"]["ok"] is False
    assert "snapshot" in trail["chain"]["first_break"]["reason"]


def test_the_log_refuses_changes_from_everyone(conn, database_url) -> None:
    conn.execute("GRANT ALL ON audit_log TO service_role")  # as Supabase's default privileges would
    for role in ("service_role", None):
        with psycopg.connect(database_url) as c:
            if role:
                c.execute(f"SET LOCAL ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                c.execute("UPDATE audit_log SET actor = 'x' WHERE id = (SELECT min(id) FROM audit_log)")


def test_cli_verifies_and_replays(client: Client, tokens, conn, database_url) -> None:
    plan_id = executed_plan(client, tokens, conn, "aud5")
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "NOFX_DATA_DIR": str(settings.data_dir())}
    replay = subprocess.run(
        [sys.executable, "-m", "lib.cli", "audit-replay", plan_id],
        capture_output=True,
        text=True,
        cwd=settings.ROOT,
        env=env,
    )
    assert replay.returncode == 0, replay.stderr
    assert "plan.created" in replay.stdout and "snapshot: plan completed" in replay.stdout
    assert replay.stdout.strip().endswith("chain verified")


def test_events_come_in_order_with_a_safe_cursor(client: Client, tokens, conn, database_url) -> None:
    # the cursor: an event of our own (the database may have none yet when this test runs first)
    cursor = conn.execute(
        "INSERT INTO events (type, data) VALUES ('flag.changed', '{\"n\": \"before\"}') RETURNING id"
    ).fetchone()["id"]
    mine = "type=flag.changed"
    with psycopg.connect(database_url) as slow:  # a transaction that writes an event and commits late
        slow.execute("INSERT INTO events (type, data) VALUES ('flag.changed', '{\"n\": \"slow\"}')")
        conn.execute("INSERT INTO events (type, data) VALUES ('flag.changed', '{\"n\": \"fast\"}')")
        page = client.get(f"/api/events?after={cursor}&{mine}", token=tokens["viewer"]).json()
        # the fast one committed, but an older transaction might still commit an
        # event behind it: it is held back rather than let the cursor skip one
        assert [e["data"].get("n") for e in page["events"]] == []
        slow.commit()
    events = wait_for_page(client, tokens["viewer"], f"after={cursor}&{mine}", lambda found: len(found) >= 2)
    assert [e["data"]["n"] for e in events] == ["slow", "fast"]
    later = client.get(f"/api/events?after={events[-1]['id']}&{mine}", token=tokens["viewer"]).json()
    assert later["events"] == []
    assert client.get("/api/events?after=999999999", token=tokens["viewer"]).status == 422
    now = client.get("/api/events?tail=true", token=tokens["viewer"]).json()
    assert now["events"] == [] and now["next_after"] >= events[-1]["id"]
    assert client.get("/api/events?type=Bad Type", token=tokens["viewer"]).status == 422


def test_events_are_broadcast_to_realtime_and_notified(client: Client, tokens, conn, database_url) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN nofx_events")
        plan_id = executed_plan(client, tokens, conn, "aud6")
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=200)]
    assert any(n["plan_id"] == plan_id and n["type"] == "plan.completed" for n in notes)
    topics = conn.execute(
        "SELECT topic, event, private FROM realtime.messages WHERE payload->>'plan_id' = %s ORDER BY inserted_at",
        (plan_id,),
    ).fetchall()
    assert {t["topic"] for t in topics} == {"nofx:events", f"nofx:plan:{plan_id}"}
    assert "plan.completed" in {t["event"] for t in topics} and all(t["private"] for t in topics)
    payload = conn.execute(
        "SELECT payload FROM realtime.messages WHERE event = 'plan.completed' AND payload->>'plan_id' = %s LIMIT 1",
        (plan_id,),
    ).fetchone()["payload"]
    assert set(payload) == {"id", "type", "plan_id", "occurred_at", "data"}
