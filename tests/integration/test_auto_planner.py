"""POST /api/auto-planner/plan and GET /api/plans/:planId on the real PostgreSQL."""

from __future__ import annotations

import threading
import uuid

import pytest

from lib.web.devserver import build_app
from tests.support.backlog import seed_backlog
from tests.support.wsgi_client import Client

PLAN = "/api/auto-planner/plan"


def plan(client: Client, token: str, body: dict, **kw):
    return client.post(PLAN, json=body, token=token, **kw)


def by_key(body: dict) -> dict[str, dict]:
    return {s["item_key"].split("-", 1)[1]: s for s in body["steps"]}


def test_a_realistic_backlog_is_staged_and_persisted(client: Client, tokens, conn) -> None:
    seed_backlog(
        conn,
        "real",
        {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": ["D"], "F": ["E"], "X": []},
        tools={"B": "t.write", "C": "t.deploy"},
    )
    seed_backlog(conn, "real2", {"P": [], "Q": ["P"]})
    r = plan(client, tokens["planner"], {"pack_ids": ["real", "real2"], "options": {"max_parallel": 4}})
    assert r.status == 201, r.text
    body = r.json()
    assert r.header("location") == f"/api/plans/{body['plan']['id']}"
    steps = by_key(body)
    assert {k: s["stage"] for k, s in steps.items()} == {
        "A": 0,
        "X": 0,
        "P": 0,
        "B": 1,
        "C": 1,
        "Q": 1,
        "D": 2,
        "E": 3,
        "F": 4,
    }
    assert set(steps["D"]["depends_on"]) == {steps["B"]["id"], steps["C"]["id"]}
    assert steps["B"]["rollback"]["inputs"] == {"undo": "B"}
    assert steps["C"]["requires_approval"] is True
    assert body["plan"]["status"] == "ready" and body["verdict"] in ("allow", "warn")
    assert body["plan"]["totals"]["steps"] == 9 and body["plan"]["totals"]["critical_path"]
    assert sorted(body["plan"]["pack_ids"]) == ["real", "real2"]

    plan_id = body["plan"]["id"]
    stored = conn.execute(
        "SELECT count(*) AS n, count(DISTINCT idempotency_token) AS t FROM plan_steps WHERE plan_id = %s", (plan_id,)
    ).fetchone()
    assert stored == {"n": 9, "t": 9}
    event = conn.execute(
        "SELECT type, data FROM events WHERE plan_id = %s AND type LIKE 'plan.%%'", (plan_id,)
    ).fetchone()
    assert event["type"] == "plan.ready" and event["data"]["steps"] == 9
    entry = conn.execute(
        "SELECT actor, action, backlog_item_ids, pack_ids FROM audit_log WHERE plan_id = %s", (plan_id,)
    ).fetchone()
    assert entry["action"] == "plan.created" and entry["actor"] == "planner@nofx.local"
    assert len(entry["backlog_item_ids"]) == 9 and entry["pack_ids"] == ["real", "real2"]

    detail = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()
    assert detail["steps_total"] == 9 and {s["status"] for s in detail["steps"]} == {"pending"}
    assert detail["plan"] == body["plan"]  # the answer's plan is the stored row, as any read returns it
    page = client.get(f"/api/plans/{plan_id}?limit=4&offset=4", token=tokens["viewer"]).json()
    assert len(page["steps"]) == 4 and page["steps_truncated"] is True
    assert [s["id"] for s in page["steps"]] == [s["id"] for s in detail["steps"][4:8]]


def test_a_cycle_blocks_the_plan_and_names_its_members(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "cyc", {"A": ["C"], "B": ["A"], "C": ["B"], "D": []})
    r = plan(client, tokens["planner"], {"pack_ids": ["cyc"]})
    assert r.status == 201
    body = r.json()
    assert body["plan"]["status"] == "blocked" and body["verdict"] == "block"
    finding = next(f for g in body["evaluations"] for f in g["findings"] if f["code"] == "structural.cycle")
    assert "cyc-A, cyc-B, cyc-C" in finding["message"]
    assert body["plan"]["status_reason"].startswith("blocked: dependency cycle")
    assert len(body["steps"]) == 4
    assert client.get(f"/api/plans/{body['plan']['id']}", token=tokens["viewer"]).json()["plan"] == body["plan"]
    types = [
        r["type"] for r in conn.execute("SELECT type FROM events WHERE plan_id = %s ORDER BY id", (body["plan"]["id"],))
    ]
    assert "plan.blocked" in types and "gate.evaluated" in types


def test_missing_and_closed_dependencies(client: Client, tokens, conn) -> None:
    ghost = str(uuid.uuid4())
    seed_backlog(
        conn,
        "dep",
        {"A": [], "B": ["A"], "C": [], "Z": []},
        status={"A": "done", "Z": "cancelled"},
        extra_deps={"C": [ghost]},
    )
    r = plan(client, tokens["planner"], {"pack_ids": ["dep"]})
    body = r.json()
    findings = {f["code"]: f for g in body["evaluations"] for f in g["findings"]}
    assert ghost in findings["structural.missing_dependency"]["message"]
    assert findings["structural.dependency_done"]["severity"] == "info"
    assert body["plan"]["status"] == "blocked"
    assert set(by_key(body)) == {"B", "C"}  # closed items are not planned


def test_selected_items_pull_in_open_dependencies(client: Client, tokens, conn) -> None:
    ids = seed_backlog(conn, "pull", {"A": [], "B": ["A"], "C": ["B"], "D": []})
    r = plan(client, tokens["planner"], {"backlog_item_ids": [ids["C"]]})
    body = r.json()
    assert set(by_key(body)) == {"A", "B", "C"}
    assert body["plan"]["graph"]["pulled_in"] == ["pull-A", "pull-B"]


def test_steps_are_stored_exactly_as_planned(client: Client, tokens, conn) -> None:
    # the steps go to PostgreSQL as COPY text lines: tabs, newlines, backslashes
    # and quotes in titles, tags and inputs must arrive unchanged
    odd = 'tab\there, new\nline, back\\slash \\N "quoted" {a,b} é ☃'
    ids = seed_backlog(conn, "text", {"A": [], "B": ["A"]}, inputs={"A": {"s": odd, "n": [1.5, None, True]}})
    conn.execute(
        "UPDATE backlog_items SET title = %s, tags = %s, environment = 'staging' WHERE id = %s",
        (odd, [odd, "", "NULL", "x,y"], ids["A"]),
    )
    body = plan(client, tokens["planner"], {"pack_ids": ["text"]}).json()
    rows = {
        r["id"]: r
        for r in conn.execute(
            "SELECT id::text AS id, title, inputs, rollback, tags, environment, depends_on::text[] AS depends_on, "
            "est_cost_usd::float8 AS est_cost_usd, cost_note FROM plan_steps WHERE plan_id = %s",
            (body["plan"]["id"],),
        )
    }
    for step in body["steps"]:
        row = rows[step["id"]]
        for column in ("title", "inputs", "rollback", "depends_on", "est_cost_usd", "cost_note"):
            assert row[column] == step[column], column
    a = rows[by_key(body)["A"]["id"]]
    assert a["title"] == odd and a["tags"] == [odd, "", "NULL", "x,y"] and a["environment"] == "staging"
    assert a["inputs"] == {"s": odd, "n": [1.5, None, True]}


def test_tokens_are_stable_across_replans(client: Client, tokens, conn) -> None:
    ids = seed_backlog(conn, "stab", {"A": [], "B": ["A"]})
    first = plan(client, tokens["planner"], {"pack_ids": ["stab"]}).json()
    # while the first plan is open, the same input returns it (no duplicate)
    again = plan(client, tokens["planner"], {"pack_ids": ["stab"]})
    assert again.status == 200 and again.json()["reused"] is True
    assert again.json()["plan"]["id"] == first["plan"]["id"]
    conn.execute("UPDATE plans SET status = 'cancelled' WHERE id = %s", (first["plan"]["id"],))
    second = plan(client, tokens["planner"], {"pack_ids": ["stab"]}).json()
    assert second["plan"]["id"] != first["plan"]["id"]
    assert {k: s["idempotency_token"] for k, s in by_key(first).items()} == {
        k: s["idempotency_token"] for k, s in by_key(second).items()
    }
    conn.execute('UPDATE backlog_items SET inputs = \'{"target": "changed"}\' WHERE id = %s', (ids["A"],))
    third = plan(client, tokens["planner"], {"pack_ids": ["stab"]}).json()
    assert third["plan"]["id"] != second["plan"]["id"]  # another input, another plan
    assert by_key(third)["A"]["idempotency_token"] != by_key(second)["A"]["idempotency_token"]


def test_idempotency_key_replays_the_same_plan(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "idem", {"A": [], "B": ["A"]})
    headers = {"idempotency-key": f"plan-{uuid.uuid4()}"}
    first = plan(client, tokens["planner"], {"pack_ids": ["idem"]}, headers=headers)
    again = plan(client, tokens["planner"], {"pack_ids": ["idem"]}, headers=headers)
    assert first.status == again.status == 201
    assert again.header("idempotent-replayed") == "true" and again.json() == first.json()
    other = plan(client, tokens["planner"], {"pack_ids": ["idem"], "options": {"max_parallel": 1}}, headers=headers)
    assert other.status == 409
    assert conn.execute("SELECT count(*) AS n FROM plans WHERE 'idem' = ANY(pack_ids)").fetchone()["n"] == 1
    stored_key = conn.execute(
        "SELECT idempotency_key FROM plans WHERE id = %s", (first.json()["plan"]["id"],)
    ).fetchone()
    assert stored_key["idempotency_key"] == headers["idempotency-key"]


def test_concurrent_identical_requests_make_one_plan(tokens, conn) -> None:
    seed_backlog(conn, "race", {"A": [], "B": ["A"], "C": ["A"]})
    client = Client(build_app())
    results: list = []
    barrier = threading.Barrier(6)

    def go() -> None:
        barrier.wait()
        results.append(plan(client, tokens["planner"], {"pack_ids": ["race"]}))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [200] * 5 + [201]
    assert len({r.json()["plan"]["id"] for r in results}) == 1
    assert conn.execute("SELECT count(*) AS n FROM plans WHERE 'race' = ANY(pack_ids)").fetchone()["n"] == 1
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM plan_steps s JOIN plans p ON p.id = s.plan_id WHERE 'race' = ANY(p.pack_ids)"
        ).fetchone()["n"]
        == 3
    )


def test_dry_run_writes_nothing(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "dry", {"A": [], "B": ["A"]})
    counts = (
        "SELECT (SELECT count(*) FROM plans) AS p, (SELECT count(*) FROM plan_steps) AS s, "
        "(SELECT count(*) FROM events) AS e, (SELECT count(*) FROM audit_log) AS a"
    )
    before = conn.execute(counts).fetchone()
    r = plan(client, tokens["planner"], {"pack_ids": ["dry"], "options": {"dry_run": True}})
    assert r.status == 200
    body = r.json()
    assert body["dry_run"] is True and body["plan"]["status"] == "draft" and len(body["steps"]) == 2
    assert conn.execute(counts).fetchone() == before


def test_max_parallel_caps_each_stage(client: Client, tokens, conn) -> None:
    seed_backlog(conn, "wide", {k: [] for k in "ABCDEFGHIJ"})
    body = plan(client, tokens["planner"], {"pack_ids": ["wide"], "options": {"max_parallel": 3}}).json()
    assert body["plan"]["graph"]["stage_sizes"] == [3, 3, 3, 1]


def test_no_ids_means_every_open_item(fresh_database, tokens) -> None:
    import psycopg

    with psycopg.connect(fresh_database, autocommit=True) as c:
        seed_backlog(c, "all1", {"A": [], "B": ["A"]})
        seed_backlog(c, "all2", {"C": [], "D": []}, status={"D": "done"})
    client = Client(build_app())
    body = plan(client, tokens["planner"], {}).json()
    assert sorted(s["item_key"] for s in body["steps"]) == ["all1-A", "all1-B", "all2-C"]


def test_every_open_item_with_closed_and_missing_dependencies(fresh_database, tokens) -> None:
    import psycopg
    from psycopg.rows import dict_row

    from lib.planner import load

    ghost = str(uuid.uuid4())
    with psycopg.connect(fresh_database, autocommit=True, row_factory=dict_row) as c:
        ids = seed_backlog(
            c,
            "open1",
            {"A": [], "B": ["A"], "C": ["B"], "D": [], "E": ["D"], "F": []},
            status={"A": "done", "D": "cancelled", "F": "done"},
            extra_deps={"E": [ghost]},
        )
        seed_backlog(c, "open2", {"G": []}, status={"G": "in_progress"})
        # every open item, and the closed items they name (F is named by nobody)
        backlog = load.load_backlog(c, None)
        assert sorted(i.key for i in backlog.values()) == [
            "open1-A",
            "open1-B",
            "open1-C",
            "open1-D",
            "open1-E",
            "open2-G",
        ]
        assert backlog[ids["E"]].depends_on == [ids["D"], ghost]
    client = Client(build_app())
    body = plan(client, tokens["planner"], {}).json()
    assert sorted(s["item_key"] for s in body["steps"]) == ["open1-B", "open1-C", "open1-E"]
    findings = {f["code"]: f for g in body["evaluations"] for f in g["findings"]}
    assert ghost in findings["structural.missing_dependency"]["message"]
    assert findings["structural.dependency_done"]["severity"] == "info"
    assert body["plan"]["status"] == "blocked"


def test_unknown_ids_and_packs_are_named_together(client: Client, tokens, conn) -> None:
    ids = seed_backlog(conn, "both", {"A": [], "B": []}, status={"B": "cancelled"})
    ghost = str(uuid.uuid4())
    body = {"backlog_item_ids": [ids["A"], ghost, ids["B"]], "pack_ids": ["both", "no-such-pack"]}
    r = plan(client, tokens["planner"], body)
    assert r.status == 422, r.text
    assert r.json()["errors"] == [
        {"loc": ["body", "backlog_item_ids", 1], "msg": f"no backlog item {ghost}"},
        {"loc": ["body", "backlog_item_ids", 2], "msg": "item both-B is cancelled; only open items can be planned"},
        {"loc": ["body", "pack_ids", 1], "msg": "no pack 'no-such-pack'"},
    ]


def test_the_flag_switches_planning_off_on_its_own(client: Client, tokens, conn, features) -> None:
    seed_backlog(conn, "flag", {"A": []})
    features("FEATURE_PLANNER_EXECUTE", False)
    assert plan(client, tokens["planner"], {"pack_ids": ["flag"]}).status == 201  # execute's flag is not ours
    features("FEATURE_AUTO_PLANNER", False)
    r = plan(client, tokens["planner"], {"pack_ids": ["flag"], "options": {"max_parallel": 2}})
    assert r.status == 403
    assert r.json()["type"].endswith("/feature-disabled") and "FEATURE_AUTO_PLANNER" in r.json()["detail"]
    features("FEATURE_AUTO_PLANNER", True)
    assert plan(client, tokens["planner"], {"pack_ids": ["flag"], "options": {"max_parallel": 2}}).status == 201


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"backlog_item_ids": [str(uuid.UUID(int=7))]}, ["body", "backlog_item_ids", 0], "no backlog item"),
        ({"backlog_item_ids": ["not-a-uuid"]}, ["body", "backlog_item_ids", 0], "UUID"),
        ({"pack_ids": ["no-such-pack"]}, ["body", "pack_ids", 0], "no pack"),
        ({"options": {"max_parallel": 0}}, ["body", "options", "max_parallel"], "greater than or equal to 1"),
        ({"options": {"teleport": True}}, ["body", "options", "teleport"], "Extra inputs"),
        ({"options": {"dry_run": "yes"}}, ["body", "options", "dry_run"], "boolean"),
        ({"backlog_item_ids": "all"}, ["body", "backlog_item_ids"], "list"),
    ],
)
def test_bad_input_is_422_naming_the_field(client: Client, tokens, body, loc, words) -> None:
    r = plan(client, tokens["planner"], body)
    assert r.status == 422, r.text
    errors = r.json()["errors"]
    assert loc in [e["loc"] for e in errors]
    assert words in " ".join(e["msg"] for e in errors)


def test_a_finished_item_cannot_be_selected(client: Client, tokens, conn) -> None:
    ids = seed_backlog(conn, "fin", {"A": [], "B": []}, status={"A": "done"})
    r = plan(client, tokens["planner"], {"backlog_item_ids": [ids["B"], ids["A"]]})
    assert r.status == 422
    assert r.json()["errors"] == [
        {"loc": ["body", "backlog_item_ids", 1], "msg": "item fin-A is done; only open items can be planned"}
    ]


def test_roles(client: Client, tokens) -> None:
    assert plan(client, tokens["viewer"], {}).status == 403
    assert client.post(PLAN, json={}).status == 401
    assert client.get(f"/api/plans/{uuid.uuid4()}", token=tokens["viewer"]).status == 404
    assert client.get("/api/plans/nope", token=tokens["viewer"]).status == 422
