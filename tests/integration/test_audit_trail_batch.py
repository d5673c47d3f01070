"""The audit trail's snapshot checks and links, and the CLI's audit-verify: each
distinct snapshot is fetched and hashed once per request (and each entry still
compared with its own digest), the page's links are signed in one call, and
audit-verify reads each chain once."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from lib import cli, settings
from lib.data import storage
from lib.trail import audit, snapshots
from tests.support.plans import executed_plan
from tests.support.wsgi_client import Client


def test_a_repeated_snapshot_is_fetched_once_and_each_entry_checked(
    client: Client, tokens, conn, storage_calls
) -> None:
    plan_id = executed_plan(client, tokens, conn, "atb1")
    last = conn.execute(
        "SELECT snapshot_key, snapshot_digest FROM audit_log WHERE plan_id = %s AND snapshot_key IS NOT NULL "
        "ORDER BY seq DESC LIMIT 1",
        (plan_id,),
    ).fetchone()
    key, digest = last["snapshot_key"], last["snapshot_digest"]
    audit.record(conn, actor="test", action="test.repeat", plan_id=plan_id, snapshot_key=key, snapshot_digest=digest)
    wrong = audit.record(
        conn, actor="test", action="test.wrong", plan_id=plan_id, snapshot_key=key, snapshot_digest="0" * 64
    )
    storage_calls["get"].clear()

    trail = client.get(f"/api/audit/{plan_id}?verify=full", token=tokens["viewer"]).json()
    linked = [e for e in trail["entries"] if e["snapshot"]]
    keys = {e["snapshot"]["key"] for e in linked}
    assert len(linked) > len(keys)  # a key repeats
    assert storage_calls["get"] == Counter(dict.fromkeys(keys, 1))  # each distinct key read once
    assert storage_calls["signed_url"] == 0
    (signed,) = storage_calls["signed_urls"]  # the page, in one call
    assert set(signed) == keys
    by_action = {e["action"]: e["snapshot"] for e in linked}
    assert by_action["test.repeat"]["verified"] is True
    assert by_action["test.wrong"]["verified"] is False  # same key, its own digest: not cached per key
    assert by_action["test.repeat"]["url"] == by_action["test.wrong"]["url"]
    assert trail["snapshots_ok"] is False and trail["chain"]["ok"] is False
    assert trail["chain"]["first_break"]["seq"] == wrong["seq"]
    assert key in trail["chain"]["first_break"]["reason"]
    snap = client.get(by_action["test.repeat"]["url"].removeprefix(settings.public_url()))
    assert snap.status == 200 and hashlib.sha256(snap.body).hexdigest() == digest


def test_only_the_page_is_signed_and_checked_unless_full_is_asked(client: Client, tokens, conn, storage_calls) -> None:
    plan_id = executed_plan(client, tokens, conn, "atb2")
    storage_calls["get"].clear()
    full = client.get(f"/api/audit/{plan_id}?verify=full", token=tokens["viewer"]).json()
    assert full["snapshots_checked"] == "all"
    assert set(storage_calls["get"]) == {e["snapshot"]["key"] for e in full["entries"] if e["snapshot"]}
    storage_calls["signed_urls"].clear()
    storage_calls["get"].clear()
    last = full["entries_total"] - 1  # the plan's final entry carries a snapshot
    page = client.get(f"/api/audit/{plan_id}?limit=1&offset={last}", token=tokens["viewer"]).json()
    assert page["entries_total"] == full["entries_total"] and len(page["entries"]) == 1
    (key,) = [e["snapshot"]["key"] for e in page["entries"] if e["snapshot"]]
    assert storage_calls["signed_urls"] == [[key]]
    assert set(storage_calls["get"]) == {key}  # the page's snapshot only
    assert page["snapshots_ok"] is True and page["snapshots_checked"] == "page"


def test_local_signed_urls_sign_each_distinct_key(client: Client) -> None:
    a, _ = storage.put_json("tests/signing", {"n": 1})
    b, _ = storage.put_json("tests/signing", {"n": 2})
    urls = storage.LocalStorage().signed_urls([a, b, a])
    assert list(urls) == [a, b]
    for key, url in urls.items():
        r = client.get(url.removeprefix(settings.public_url()))
        assert r.status == 200, (key, r.text)


def test_a_rejected_signed_url_is_a_problem_document(client: Client) -> None:
    key, _ = storage.put_json("tests/signing", {"n": 3})
    url = storage.LocalStorage().signed_url(key).removeprefix(settings.public_url())
    r = client.get(url.replace("sig=", "sig=0"))
    assert r.status == 403 and r.header("content-type") == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "signed URL rejected: signature does not match",
    }


def test_snapshots_are_stored_by_their_digest(client: Client, tokens, conn) -> None:
    plan_id = executed_plan(client, tokens, conn, "atb3")
    key, digest = snapshots.take(conn, plan_id)
    data = storage.backend().get(key)
    assert key == f"snapshots/{plan_id}/{digest}.json" and hashlib.sha256(data).hexdigest() == digest
    document = json.loads(data)
    assert document["plan"]["id"] == plan_id
    # the compact step rows say what they hold, as the Python side names it
    assert document["steps_columns"] == snapshots.STEP_COLUMNS
    assert document["steps"] and all(len(row) == len(snapshots.STEP_COLUMNS) for row in document["steps"])
    assert storage.put_bytes(f"snapshots/{plan_id}", data) == (key, digest)


def test_cli_audit_verify_reads_each_chain_once(
    fresh_database: str, client: Client, tokens, storage_calls, monkeypatch, capsys
) -> None:
    from lib.data import db

    with db.connect() as c:
        c.autocommit = True
        plan_id = executed_plan(client, tokens, c, "atb4")
    reads: Counter[str] = Counter()
    real_verify_chain = audit.verify_chain

    def verify_chain(conn: Any, chain: str) -> Any:
        reads[chain] += 1
        return real_verify_chain(conn, chain)

    monkeypatch.setattr(audit, "verify_chain", verify_chain)
    storage_calls["get"].clear()
    assert cli.main(["audit-verify"]) == 0
    out = capsys.readouterr().out
    assert f"ok     plan:{plan_id}:" in out and out.strip().endswith("chains, 0 broken")
    assert reads and set(reads.values()) == {1}
    assert storage_calls["get"] and set(storage_calls["get"].values()) == {1}

    key = storage_calls["get"].most_common(1)[0][0]
    storage.backend().put(key, b'{"plan": {"status": "rewritten"}}')
    assert cli.main(["audit-verify"]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN plan:{plan_id}:" in out and "snapshots" in out and out.strip().endswith("chains, 1 broken")
