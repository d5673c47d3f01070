"""Audit checkpoints: the tick verifies what is new in each chain once and
records how far; a trail read verifies from there (the checkpointed entry
first), `?verify=full` from the first entry. Item id lists in a reply are cut
to 200 with their count."""

from __future__ import annotations

import uuid

from lib import settings
from lib.trail import audit
from tests.integration.test_audit_and_events import _tamper
from tests.support.plans import executed_plan
from tests.support.wsgi_client import Client

CRON = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}


def _trail(client: Client, tokens, plan_id: str, query: str = "") -> dict:
    r = client.get(f"/api/audit/{plan_id}{query}", token=tokens["viewer"])
    assert r.status == 200, r.text
    return r.json()


def test_the_tick_checkpoints_each_chain_and_reads_verify_from_there(client: Client, tokens, conn) -> None:
    plan_id = executed_plan(client, tokens, conn, "ack1")
    before = _trail(client, tokens, plan_id)
    assert before["chain"]["scope"] == "full" and before["chain"]["checkpoint_verified_at"] is None
    total = before["entries_total"]

    report = client.get("/api/cron/tick", headers=CRON).json()
    assert report["audit_entries_verified"] >= total and f"plan:{plan_id}" not in report["audit_chains_broken"]
    point = conn.execute(
        "SELECT seq, hash FROM audit_checkpoints WHERE chain = %s", (audit.chain_for(plan_id),)
    ).fetchone()
    assert point["seq"] == total

    audit.record(conn, actor="test", action="test.after_checkpoint", plan_id=plan_id)
    after = _trail(client, tokens, plan_id, "?limit=1")
    chain = after["chain"]
    assert chain["ok"] is True and chain["scope"] == "checkpoint" and chain["checkpoint_verified_at"]
    assert chain["verified_from_seq"] == total and chain["entries"] == after["entries_total"] == total + 1
    # the next tick moves on by exactly the new entry
    assert client.get("/api/cron/tick", headers=CRON).json()["audit_entries_verified"] >= 1
    assert (
        conn.execute("SELECT seq FROM audit_checkpoints WHERE chain = %s", (audit.chain_for(plan_id),)).fetchone()[
            "seq"
        ]
        == total + 1
    )


def test_tampering_at_or_after_the_checkpoint_shows_on_every_read_and_before_it_on_a_full_check(
    client: Client, tokens, conn, database_url
) -> None:
    plan_id = executed_plan(client, tokens, conn, "ack2")
    client.get("/api/cron/tick", headers=CRON)
    total = _trail(client, tokens, plan_id)["entries_total"]
    audit.record(conn, actor="test", action="test.later", plan_id=plan_id)

    # an entry after the checkpoint, altered: the default read sees it
    _tamper(
        database_url,
        "UPDATE audit_log SET content = content || ' ' WHERE plan_id = %s AND seq = %s",
        (plan_id, total + 1),
    )
    broken = _trail(client, tokens, plan_id)["chain"]
    assert (
        broken["ok"] is False
        and broken["first_break"]["seq"] == total + 1
        and "altered" in broken["first_break"]["reason"]
    )

    # the checkpointed entry itself, rehashed to hide an edit: its hash no longer matches the checkpoint
    _tamper(
        database_url, "UPDATE audit_log SET hash = repeat('a', 64) WHERE plan_id = %s AND seq = %s", (plan_id, total)
    )
    broken = _trail(client, tokens, plan_id)["chain"]
    assert broken["ok"] is False and broken["first_break"]["seq"] == total
    assert "no longer carries the hash it was verified with" in broken["first_break"]["reason"]

    # an older entry altered: only the full check reads that far back, and it finds it
    _tamper(
        database_url,
        "UPDATE audit_log SET content = replace(content, 'executor', 'nobody') WHERE plan_id = %s AND seq = 3",
        (plan_id,),
    )
    full = _trail(client, tokens, plan_id, "?verify=full")["chain"]
    assert full["scope"] == "full" and full["ok"] is False and full["first_break"]["seq"] == 3

    # and the tick does not move a broken chain's checkpoint; it names the chain
    report = client.get("/api/cron/tick", headers=CRON).json()
    assert audit.chain_for(plan_id) in report["audit_chains_broken"]
    assert (
        conn.execute("SELECT seq FROM audit_checkpoints WHERE chain = %s", (audit.chain_for(plan_id),)).fetchone()[
            "seq"
        ]
        == total
    )


def test_removed_entries_after_the_checkpoint_are_found_by_the_head(client: Client, tokens, conn, database_url) -> None:
    plan_id = executed_plan(client, tokens, conn, "ack3")
    client.get("/api/cron/tick", headers=CRON)
    total = _trail(client, tokens, plan_id)["entries_total"]
    audit.record(conn, actor="test", action="test.one", plan_id=plan_id)
    audit.record(conn, actor="test", action="test.two", plan_id=plan_id)
    _tamper(database_url, "DELETE FROM audit_log WHERE plan_id = %s AND seq = %s", (plan_id, total + 2))
    chain = _trail(client, tokens, plan_id)["chain"]
    assert chain["ok"] is False and "removed" in chain["first_break"]["reason"]


def test_an_entry_with_many_items_shows_200_ids_and_their_count(client: Client, tokens, conn) -> None:
    plan_id = executed_plan(client, tokens, conn, "ack4")
    ids = [str(uuid.uuid4()) for _ in range(250)]
    audit.record(conn, actor="test", action="test.many_items", plan_id=plan_id, backlog_item_ids=ids)
    entry = next(e for e in _trail(client, tokens, plan_id)["entries"] if e["action"] == "test.many_items")
    assert entry["backlog_items_total"] == 250 and entry["backlog_item_ids"] == sorted(ids)[:200]
    assert _trail(client, tokens, plan_id, "?verify=full")["chain"]["ok"] is True  # the hashed digest covers all 250
