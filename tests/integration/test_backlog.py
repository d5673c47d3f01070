"""POST /api/backlog on the real PostgreSQL: items in one pack, dependencies by key."""

from __future__ import annotations

import uuid

from tests.support.backlog import ensure_tools, seed_backlog
from tests.support.wsgi_client import Client

BACKLOG = "/api/backlog"


def post(client: Client, tokens, body: dict):
    return client.post(BACKLOG, json=body, token=tokens["planner"])


def stored(conn, keys: list[str]) -> dict[str, dict]:
    rows = conn.execute(
        "SELECT id::text AS id, key, title, description, pack_id, tool_id, inputs, priority, "
        "estimate_minutes::float8 AS estimate_minutes, status, depends_on::text[] AS depends_on, tags, environment "
        "FROM backlog_items WHERE key = ANY(%s)",
        (keys,),
    ).fetchall()
    return {r["key"]: r for r in rows}


def test_items_are_written_with_their_dependencies_resolved(client: Client, tokens, conn) -> None:
    earlier = seed_backlog(conn, "bl-old", {"A": []})
    body = {
        "pack_id": "bl-new",
        "pack_name": "new pack",
        "items": [
            # a dependency on an item later in the request, and one on an existing item
            {
                "key": "BL-1",
                "title": "first",
                "tool_id": "t.write",
                "depends_on": ["BL-2", "bl-old-A"],
                "inputs": {"target": 'a "quoted" \\ value', "n": [1, 2]},
                "tags": ["x", "with space", 'q"uote', "back\\slash", "{brace}"],
                "priority": 1,
                "estimate_minutes": 2.5,
                "environment": "staging",
                "description": "tab\there, newline\nthere",
            },
            {"key": "BL-2", "title": "second", "tool_id": "t.read"},
            {"key": "BL-3", "title": "third", "tool_id": "t.read", "depends_on": ["BL-1", "BL-2"]},
        ],
    }
    r = post(client, tokens, body)
    assert r.status == 201, r.text
    created = r.json()
    assert created["pack_id"] == "bl-new" and [i["key"] for i in created["items"]] == ["BL-1", "BL-2", "BL-3"]
    ids = {i["key"]: i["id"] for i in created["items"]}
    assert len(set(ids.values())) == 3 and all(uuid.UUID(v).version == 4 for v in ids.values())

    rows = stored(conn, list(ids))
    assert {k: r["id"] for k, r in rows.items()} == ids
    assert rows["BL-1"]["depends_on"] == [ids["BL-2"], earlier["A"]]
    assert rows["BL-2"]["depends_on"] == []
    assert rows["BL-3"]["depends_on"] == [ids["BL-1"], ids["BL-2"]]
    first = rows["BL-1"]
    assert first["inputs"] == {"target": 'a "quoted" \\ value', "n": [1, 2]}
    assert first["tags"] == ["x", "with space", 'q"uote', "back\\slash", "{brace}"]
    assert (first["priority"], first["estimate_minutes"], first["environment"]) == (1, 2.5, "staging")
    assert first["description"] == "tab\there, newline\nthere" and first["status"] == "open"
    second = rows["BL-2"]
    assert (second["priority"], second["estimate_minutes"], second["environment"]) == (3, None, None)
    assert (second["tags"], second["inputs"], second["description"]) == ([], {}, "")
    assert conn.execute("SELECT name FROM packs WHERE id = 'bl-new'").fetchone()["name"] == "new pack"

    entry = conn.execute(
        "SELECT backlog_item_ids AS ids, pack_ids FROM audit_log "
        "WHERE action = 'backlog.items_created' AND 'bl-new' = ANY(pack_ids)"
    ).fetchone()
    assert sorted(entry["ids"]) == sorted(ids.values()) and entry["pack_ids"] == ["bl-new"]

    # what the planner makes of them: the dependencies by id, the existing (open) item pulled in too
    plan = client.post(
        "/api/auto-planner/plan", json={"backlog_item_ids": [ids["BL-3"]]}, token=tokens["planner"]
    ).json()
    assert plan["plan"]["graph"]["pulled_in"] == ["BL-1", "BL-2", "bl-old-A"]
    steps = {s["item_key"]: s for s in plan["steps"]}
    assert set(steps["BL-1"]["depends_on"]) == {steps["BL-2"]["id"], steps["bl-old-A"]["id"]}


def test_a_thousand_items_in_one_request(client: Client, tokens, conn) -> None:
    ensure_tools(conn)
    items = [
        {"key": f"BLK-{i}", "title": f"item {i}", "tool_id": "t.read", "depends_on": [f"BLK-{i - 1}"] if i else []}
        for i in range(1000)
    ]
    r = post(client, tokens, {"pack_id": "bl-many", "items": items})
    assert r.status == 201, r.text
    ids = {i["key"]: i["id"] for i in r.json()["items"]}
    assert len(ids) == 1000
    rows = stored(conn, list(ids))
    assert len(rows) == 1000
    assert all(rows[f"BLK-{i}"]["depends_on"] == [ids[f"BLK-{i - 1}"]] for i in range(1, 1000))
    assert rows["BLK-0"]["depends_on"] == []


def test_bad_items_are_422s_naming_each_and_nothing_is_written(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "bl-taken", {"A": []})
    body = {
        "pack_id": "bl-bad",
        "items": [
            {"key": "BLB-1", "title": "ok", "tool_id": "t.read"},
            {"key": "bl-taken-A", "title": "taken", "tool_id": "t.read"},
            {"key": "BLB-2", "title": "twice", "tool_id": "no.such.tool", "depends_on": ["BLB-1", "BLB-nope"]},
            {"key": "BLB-2", "title": "twice again", "tool_id": "t.read"},
        ],
    }
    r = post(client, tokens, body)
    assert r.status == 422, r.text
    assert r.json()["errors"] == [
        {"loc": ["body", "items", 1, "key"], "msg": "key bl-taken-A is already taken"},
        {"loc": ["body", "items", 2, "tool_id"], "msg": "no tool no.such.tool"},
        {"loc": ["body", "items", 2, "key"], "msg": "key BLB-2 is already taken"},
        {"loc": ["body", "items", 2, "depends_on", 1], "msg": "no item BLB-nope"},
        {"loc": ["body", "items", 3, "key"], "msg": "key BLB-2 is already taken"},
    ]
    assert conn.execute("SELECT count(*) AS n FROM backlog_items WHERE key LIKE 'BLB-%'").fetchone()["n"] == 0
    assert conn.execute("SELECT count(*) AS n FROM packs WHERE id = 'bl-bad'").fetchone()["n"] == 0


def test_only_planners_write_the_backlog(client: Client, tokens) -> None:
    body = {"pack_id": "bl-role", "items": [{"key": "BLR-1", "title": "x", "tool_id": "t.read"}]}
    assert client.post(BACKLOG, json=body, token=tokens["viewer"]).status == 403
    assert client.post(BACKLOG, json=body).status == 401
