"""Gate results stored per plan, step and model; GET and re-evaluation through
the real endpoints; events; Slack through the outbox to a loopback receiver."""

from __future__ import annotations

import json
import uuid

import jsonschema
import psycopg
import pytest

from lib.gates import evaluations
from lib.gates.evaluate import GateContext, evaluate_gates
from lib.gates.models import EvaluationDetails
from lib.planner import PlanOptions
from lib.trail import notify
from tests.support.backlog import seed_backlog
from tests.support.wsgi_client import Client

PLAN = "/api/auto-planner/plan"


def make_plan(client: Client, tokens, conn, prefix: str, **kw) -> dict:
    seed_backlog(conn, prefix, {"A": [], "B": ["A"], "C": ["A"]}, **kw)
    r = client.post(PLAN, json={"pack_ids": [prefix.lower()]}, token=tokens["planner"])
    assert r.status == 201, r.text
    return r.json()


def test_results_are_stored_per_plan_and_step_and_reported(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens, conn, "gst", tools={"B": "t.noundo", "C": "t.unpriced"})
    plan_id = body["plan"]["id"]
    report = client.get(f"/api/gates/{plan_id}", token=tokens["viewer"]).json()
    assert report["verdict"] == "block" == body["verdict"]
    assert set(report["gates"]) == {"structural", "risk", "compliance", "resource"}
    assert report["gates"]["structural"]["verdict"] == "block"
    assert report["gates"]["resource"]["verdict"] == "warn"  # t.unpriced has no price
    b_step = next(s for s in body["steps"] if s["item_key"] == "gst-B")
    (step_report,) = [s for s in report["steps"] if s["step_id"] == b_step["id"]]
    assert step_report["verdict"] == "block"
    assert step_report["findings"][0]["code"] == "structural.no_rollback"
    assert report["history"] == [
        {
            "generation": 1,
            "verdict": "block",
            "score": report["score"],
            "evaluated_at": report["evaluated_at"],
            "evaluated_by": "planner@nofx.local",
        }
    ]
    rows = conn.execute(
        "SELECT scope, gate, count(*) AS n FROM plan_evaluations WHERE plan_id = %s "
        "GROUP BY scope, gate ORDER BY scope, gate",
        (plan_id,),
    ).fetchall()
    plan_rows = {r["gate"] for r in rows if r["scope"] == "plan"}
    assert plan_rows == {"structural", "risk", "compliance", "resource", "overall"}
    assert {(r["gate"], r["n"]) for r in rows if r["scope"] == "step"} >= {("structural", 1)}
    types = [r["type"] for r in conn.execute("SELECT type FROM events WHERE plan_id = %s ORDER BY id", (plan_id,))]
    assert types.count("gate.evaluated") == 4 and types[-1] == "plan.blocked"


def test_stored_details_follow_the_published_schema(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens, conn, "gsc")
    schema = EvaluationDetails.model_json_schema()
    for row in conn.execute("SELECT details FROM plan_evaluations WHERE plan_id = %s", (body["plan"]["id"],)):
        jsonschema.validate(row["details"], schema)
    doc = client.get("/api/openapi").json()
    assert "GateReport" in doc["components"]["schemas"]


@pytest.mark.parametrize(
    "details",
    [
        {"no_findings": []},
        {"findings": "none"},
        {"findings": [{"code": "x", "message": "y", "severity": "warn"}]},  # no remediation
        {"findings": [{"code": "x", "message": "y", "remediation": "z", "severity": "fatal"}]},
    ],
)
def test_the_table_rejects_details_of_the_wrong_shape(client: Client, tokens, conn, details) -> None:
    plan_id = make_plan(client, tokens, conn, f"gbad{uuid.uuid4().hex[:6]}")["plan"]["id"]
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO plan_evaluations (plan_id, generation, scope, gate, verdict, score, details, policy_version, "
            "evaluated_by) VALUES (%s, 9, 'plan', 'risk', 'allow', 100, %s, 'v', 'test')",
            (plan_id, json.dumps(details)),
        )


def test_verdicts_per_model_are_kept(client: Client, tokens, conn, database_url) -> None:
    from lib.planner import load

    plan_id = make_plan(client, tokens, conn, "gmod")["plan"]["id"]
    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as c:
        _, draft = load.load_draft(c, plan_id)
        tools, stats = load.load_tools(c), load.load_stats(c)
        ctx = GateContext(tools=tools, stats=stats, options=PlanOptions())
        base = evaluate_gates(draft, ctx)
        slower = evaluate_gates(draft, ctx.model_copy(update={"options": PlanOptions(budget_usd=0.0)}))
        evaluations.record(
            c, plan_id, base, "test", model_evaluations=[("openai:gpt-test", base), ("anthropic:claude-test", slower)]
        )
        c.commit()
    report = client.get(f"/api/gates/{plan_id}", token=tokens["viewer"]).json()
    models = {m["model"]: m for m in report["models"]}
    assert set(models) == {"openai:gpt-test", "anthropic:claude-test"}
    assert models["anthropic:claude-test"]["gates"]["resource"]["verdict"] == "warn"  # over its $0 budget
    assert models["openai:gpt-test"]["gates"]["resource"]["verdict"] == "allow"
    assert report["generation"] == 2


def test_reevaluation_writes_a_new_generation_and_moves_the_status(client: Client, tokens, conn) -> None:
    body = make_plan(client, tokens, conn, "grev")
    plan_id = body["plan"]["id"]
    assert body["plan"]["status"] == "ready"
    strict = (
        'package nofx.plan\nimport rego.v1\ndeny contains {"code": "compliance.test_freeze", '
        '"msg": "frozen for the test", "remediation": "wait"} if input.plan.steps > 0\n'
    )
    conn.execute("INSERT INTO policies (name, source, updated_by) VALUES ('test_freeze', %s, 'test')", (strict,))
    try:
        r = client.post(f"/api/gates/{plan_id}", json={"reason": "new freeze policy"}, token=tokens["planner"])
        assert r.status == 200, r.text
        report = r.json()
        assert report["generation"] == 2 and report["verdict"] == "block"
        assert [h["generation"] for h in report["history"]] == [1, 2]
        assert any(f["code"] == "compliance.test_freeze" for f in report["gates"]["compliance"]["findings"])
        plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]
        assert plan["status"] == "blocked" and "frozen for the test" in plan["status_reason"]
    finally:
        conn.execute("DELETE FROM policies WHERE name = 'test_freeze'")
    again = client.post(f"/api/gates/{plan_id}", json={}, token=tokens["planner"]).json()
    assert again["generation"] == 3 and again["verdict"] != "block"
    assert client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]["status"] == "ready"
    actions = [
        r["action"] for r in conn.execute("SELECT action FROM audit_log WHERE plan_id = %s ORDER BY seq", (plan_id,))
    ]
    assert actions == ["plan.created", "plan.evaluated", "plan.evaluated"]


def test_roles_and_unknown_plans(client: Client, tokens) -> None:
    missing = uuid.uuid4()
    assert client.get(f"/api/gates/{missing}", token=tokens["viewer"]).status == 404
    assert client.post(f"/api/gates/{missing}", json={}, token=tokens["planner"]).status == 404
    assert client.post(f"/api/gates/{missing}", json={}, token=tokens["viewer"]).status == 403
    assert client.get("/api/gates/not-a-uuid", token=tokens["viewer"]).status == 422


def test_a_blocked_plan_reaches_slack_and_a_failure_is_retried(client: Client, tokens, conn, slack) -> None:
    slack.answers = [503]  # the first delivery fails
    body = make_plan(client, tokens, conn, "gslk", tools={"B": "t.noundo"})
    plan_id = body["plan"]["id"]
    row = conn.execute(
        "SELECT status, attempts, last_error FROM notifications WHERE plan_id = %s", (plan_id,)
    ).fetchone()
    assert row["status"] == "pending" and row["attempts"] == 1 and "503" in row["last_error"]
    assert slack.received == []
    conn.execute("UPDATE notifications SET next_attempt_at = now() WHERE plan_id = %s", (plan_id,))
    assert notify.deliver_due()["delivered"] >= 1
    row = conn.execute("SELECT status, attempts FROM notifications WHERE plan_id = %s", (plan_id,)).fetchone()
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    (message,) = [m for m in slack.received if plan_id in json.dumps(m)]
    assert "Plan blocked" in message["text"] and "gslk-B" in message["text"]


def test_slack_being_down_never_fails_a_plan(client: Client, tokens, conn, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/nobody-listens")
    body = make_plan(client, tokens, conn, "gdown", tools={"B": "t.noundo"})
    assert body["plan"]["status"] == "blocked"
    row = conn.execute(
        "SELECT status, attempts FROM notifications WHERE plan_id = %s", (body["plan"]["id"],)
    ).fetchone()
    assert row["status"] == "pending" and row["attempts"] == 1


def test_after_too_many_failures_it_gives_up_and_says_so(client: Client, tokens, conn, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/nobody-listens")
    plan_id = make_plan(client, tokens, conn, "gfail", tools={"B": "t.noundo"})["plan"]["id"]
    for _ in range(notify.MAX_ATTEMPTS):
        conn.execute("UPDATE notifications SET next_attempt_at = now() WHERE plan_id = %s", (plan_id,))
        notify.deliver_due()
    row = conn.execute("SELECT status, attempts FROM notifications WHERE plan_id = %s", (plan_id,)).fetchone()
    assert (row["status"], row["attempts"]) == ("failed", notify.MAX_ATTEMPTS)
    event = conn.execute(
        "SELECT data FROM events WHERE plan_id = %s AND type = 'notification.failed'", (plan_id,)
    ).fetchone()
    assert event["data"]["channel"] == "slack"
