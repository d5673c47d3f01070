"""options.compare_models end to end: the plan endpoint sends the planning
prompt through the real openai and anthropic SDKs to a loopback server that
speaks their wire formats, and the real PostgreSQL keeps one model_comparisons
row per model, the per-model gate verdicts and (when asked) the adopted staging."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import Usage, calc_price

from lib.llm import store
from lib.web import auth
from tests.support.backlog import seed_backlog
from tests.support.llm_server import Reply
from tests.support.rls import attempt
from tests.support.wsgi_client import Client

PLAN = "/api/auto-planner/plan"
GPT = "openai:gpt-4.1-mini"
CLAUDE = "anthropic:claude-sonnet-4-6"
# A, E first; B and C wait for A; D waits for B and C. Deterministic: [[A, E], [B, C], [D]].
DEPS = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": []}


def answer(prefix: str, stages: list[list[str]], rationale: str = "dependencies first") -> str:
    return json.dumps({"stages": [[f"{prefix}-{k}" for k in stage] for stage in stages], "rationale": rationale})


def plan(client: Client, tokens, prefix: str, models: list[str], **options) -> tuple[int, dict]:
    body = {"pack_ids": [prefix], "options": {"compare_models": models, **options}}
    r = client.post(PLAN, json=body, token=tokens["planner"])
    return r.status, r.json()


def rows(conn, plan_id: str) -> dict[str, dict]:
    found = conn.execute("SELECT * FROM model_comparisons WHERE plan_id = %s ORDER BY id", (plan_id,)).fetchall()
    return {f"{r['provider']}:{r['model']}": r for r in found}


def stages_of(body: dict) -> list[list[str]]:
    out: list[list[str]] = []
    for step in sorted(body["steps"], key=lambda s: (s["stage"], s["position"])):
        while len(out) <= step["stage"]:
            out.append([])
        out[step["stage"]].append(step["item_key"].rsplit("-", 1)[1])
    return out


def test_two_providers_answer_differently_and_both_rows_are_stored(client: Client, tokens, conn, llm) -> None:
    p = "mc-two"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]]), input_tokens=812, output_tokens=64))
    llm.script(
        "anthropic", Reply(text=answer(p, [["A"], ["E"], ["B", "C"], ["D"]]), input_tokens=900, output_tokens=80)
    )

    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    summary = body["comparison"]
    models = {m["model"]: m for m in summary["models"]}
    assert models[GPT]["valid"] and models[CLAUDE]["valid"]
    assert models[GPT]["score"] > models[CLAUDE]["score"] >= 60
    assert any("4 stages, deterministic plan 3" in reason for reason in models[CLAUDE]["reasons"])
    assert summary["best_model"] == GPT and summary["adopted_model"] is None
    assert body["plan"]["source"] == "deterministic"
    assert stages_of(body) == [["A", "E"], ["B", "C"], ["D"]]

    stored = rows(conn, body["plan"]["id"])
    assert set(stored) == {GPT, CLAUDE}
    assert (stored[GPT]["input_tokens"], stored[GPT]["output_tokens"]) == (812, 64)
    assert (stored[CLAUDE]["input_tokens"], stored[CLAUDE]["output_tokens"]) == (900, 80)
    assert stored[GPT]["proposal"]["stages"][2] == [f"{p}-D"] and stored[GPT]["best"] is True
    assert stored[CLAUDE]["latency_ms"] > 0 and stored[CLAUDE]["error"] is None

    # Both were sent the same prompt: the backlog slice with dependencies as keys.
    (sent_gpt,) = llm.seen("openai")
    (sent_claude,) = llm.seen("anthropic")
    system, user = sent_gpt.body["messages"][0]["content"], sent_gpt.body["messages"][1]["content"]
    assert sent_claude.body["system"] == system and sent_claude.body["messages"][0]["content"] == user
    items = {i["key"]: i for i in json.loads(user)["items"]}
    assert set(items) == {f"{p}-{k}" for k in DEPS} and items[f"{p}-D"]["depends_on"] == [f"{p}-B", f"{p}-C"]
    assert sent_gpt.body["response_format"]["type"] == "json_schema"
    digest = hashlib.sha256(json.dumps([system, user], ensure_ascii=False).encode()).hexdigest()
    assert stored[GPT]["prompt_digest"] == stored[CLAUDE]["prompt_digest"] == digest == summary["prompt_digest"]

    detail = client.get(f"/api/plans/{body['plan']['id']}", token=tokens["viewer"]).json()
    assert detail["comparison"] == summary

    gates = client.get(f"/api/gates/{body['plan']['id']}", token=tokens["viewer"]).json()
    by_model = {m["model"]: m for m in gates["models"]}
    assert set(by_model) == {GPT, CLAUDE}
    assert set(by_model[GPT]["gates"]) == {"structural", "risk", "compliance", "resource"}


def test_a_proposal_that_breaks_a_dependency_is_rejected_and_never_adopted(client: Client, tokens, conn, llm) -> None:
    p = "mc-bad"
    seed_backlog(conn, p, DEPS)
    # B waits for A but is put beside it: invalid, however cheap and short it looks.
    llm.script("openai", Reply(text=answer(p, [["A", "B", "C", "E"], ["D"]])))
    llm.script("anthropic", Reply(text=answer(p, [["A"], ["B", "C", "E"], ["D"]])))

    status, body = plan(client, tokens, p, [GPT, CLAUDE], adopt_best_model=True)
    assert status == 201, body
    models = {m["model"]: m for m in body["comparison"]["models"]}
    assert models[GPT]["valid"] is False and models[GPT]["score"] <= 20 and models[GPT]["adopted"] is False
    assert any(
        r.startswith("breaks a dependency: ") and f"{p}-B (stage 0) before {p}-A (stage 0)" in r
        for r in models[GPT]["reasons"]
    )
    assert body["comparison"]["best_model"] == body["comparison"]["adopted_model"] == CLAUDE
    assert body["plan"]["source"] == CLAUDE
    assert stages_of(body) == [["A"], ["B", "C", "E"], ["D"]]

    stored = rows(conn, body["plan"]["id"])
    assert (stored[GPT]["valid"], stored[GPT]["adopted"], stored[GPT]["best"]) == (False, False, False)
    assert stored[CLAUDE]["adopted"] is True
    gated = conn.execute(
        "SELECT DISTINCT model FROM plan_evaluations WHERE plan_id = %s AND scope = 'model'", (body["plan"]["id"],)
    ).fetchall()
    assert [r["model"] for r in gated] == [CLAUDE]  # gates run on valid proposals only

    # Re-evaluated, the stored comparison is judged again: its costs, and the valid proposal only.
    first = client.get(f"/api/gates/{body['plan']['id']}", token=tokens["viewer"]).json()
    again = client.post(f"/api/gates/{body['plan']['id']}", json={"reason": "recheck"}, token=tokens["planner"])
    assert again.status == 200, again.text
    report = again.json()
    assert report["generation"] == 2 and [m["model"] for m in report["models"]] == [CLAUDE]
    assert report["models"][0]["gates"].keys() == first["models"][0]["gates"].keys()
    assert report["summary"]["models_cost_usd"] == first["summary"]["models_cost_usd"]
    assert report["summary"]["total_usd"] == first["summary"]["total_usd"]


def test_with_no_valid_proposal_the_deterministic_plan_stays(client: Client, tokens, conn, llm) -> None:
    p = "mc-none"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(text=answer(p, [["A", "B"], ["C"], ["D", "E", "X"]])))  # a break and an invention
    llm.script("anthropic", Reply(text="Sure! Here is the plan: stage one is A..."))  # not JSON

    status, body = plan(client, tokens, p, [GPT, CLAUDE], adopt_best_model=True)
    assert status == 201, body
    assert body["plan"]["source"] == "deterministic" and body["comparison"]["best_model"] is None
    assert stages_of(body) == [["A", "E"], ["B", "C"], ["D"]]
    models = {m["model"]: m for m in body["comparison"]["models"]}
    assert any("invents items not in the plan: mc-none-X" in r for r in models[GPT]["reasons"])
    assert models[CLAUDE]["score"] == 0 and any("not valid JSON" in r for r in models[CLAUDE]["reasons"])
    stored = rows(conn, body["plan"]["id"])
    assert stored[CLAUDE]["proposal"] == {"unreadable": "Sure! Here is the plan: stage one is A..."}


def test_a_provider_that_times_out_is_a_row_with_its_error(
    client: Client, tokens, conn, llm, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = "mc-slow"
    seed_backlog(conn, p, DEPS)
    monkeypatch.setenv("NOFX_LLM_TIMEOUT_SECONDS", "1")
    llm.script("openai", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]])))
    llm.script("anthropic", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]]), delay_s=4))

    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    stored = rows(conn, body["plan"]["id"])
    slow = stored[CLAUDE]
    assert "timed out" in slow["error"] and slow["valid"] is False and slow["score"] == 0
    assert slow["latency_ms"] >= 900 and slow["attempts"] == 1  # a timeout spends the budget: no retry
    assert slow["cost_usd"] is None and "before any usage was reported" in slow["cost_note"]
    assert stored[GPT]["error"] is None and stored[GPT]["valid"] is True
    # The resource gate counts the unknown cost as unknown, never as $0.
    resource = next(g for g in body["evaluations"] if g["gate"] == "resource")
    assert any(f["code"] == "resource.unknown_model_price" and CLAUDE in f["message"] for f in resource["findings"])


def test_a_429_then_success_honours_retry_after(client: Client, tokens, conn, llm) -> None:
    p = "mc-429"
    seed_backlog(conn, p, DEPS)
    good = answer(p, [["A", "E"], ["B", "C"], ["D"]])
    llm.script("openai", Reply(status=429, text="Rate limit reached", headers={"retry-after": "0.4"}), Reply(text=good))
    llm.script("anthropic", Reply(status=529, text="Overloaded", headers={"retry-after-ms": "250"}), Reply(text=good))

    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    stored = rows(conn, body["plan"]["id"])
    for name, provider, wait in ((GPT, "openai", 0.4), (CLAUDE, "anthropic", 0.25)):
        assert (stored[name]["attempts"], stored[name]["error"], stored[name]["valid"]) == (2, None, True)
        first, second = llm.seen(provider)
        assert (first.status, second.status) == ((429, 200) if provider == "openai" else (529, 200))
        assert second.arrived - first.answered >= wait  # the client waited as told before asking again


def test_retries_are_bounded_and_the_last_error_is_kept(client: Client, tokens, conn, llm) -> None:
    p = "mc-500"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(status=500, text="upstream exploded", headers={"retry-after": "0"}))
    llm.script("anthropic", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]])))

    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    row = rows(conn, body["plan"]["id"])[GPT]
    assert row["attempts"] == 3 and len(llm.seen("openai")) == 3
    assert row["error"].startswith("HTTP 500: upstream exploded") and "gave up after 3 attempts" in row["error"]
    assert row["cost_usd"] == 0 and "refused the call (HTTP 500)" in row["cost_note"]


def test_usage_and_cost_are_recorded_exactly(client: Client, tokens, conn, llm) -> None:
    p = "mc-cost"
    seed_backlog(conn, p, DEPS)
    good = answer(p, [["A", "E"], ["B", "C"], ["D"]])
    llm.script("openai", Reply(text=good, input_tokens=1234, output_tokens=56, cache_read_tokens=200))
    llm.script("anthropic", Reply(text=good, input_tokens=2000, output_tokens=300))
    llm.script("openai:gpt-loopback-unpriced", Reply(text=good, input_tokens=10, output_tokens=10))

    status, body = plan(client, tokens, p, [GPT, CLAUDE, "openai:gpt-loopback-unpriced"])
    assert status == 201, body
    stored = rows(conn, body["plan"]["id"])
    today = datetime.now(UTC)
    gpt_price = calc_price(
        Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=200),
        "gpt-4.1-mini",
        provider_id="openai",
        genai_request_timestamp=today,
    ).total_price
    claude_price = calc_price(
        Usage(input_tokens=2000, output_tokens=300),
        "claude-sonnet-4-6",
        provider_id="anthropic",
        genai_request_timestamp=today,
    ).total_price
    assert (stored[GPT]["input_tokens"], stored[GPT]["output_tokens"]) == (1234, 56)
    assert stored[GPT]["cost_usd"] == gpt_price > 0
    assert stored[CLAUDE]["cost_usd"] == claude_price > 0
    for name in (GPT, CLAUDE):
        assert stored[name]["price_source"] == f"genai-prices {genai_prices.__version__} (bundled table)"
        assert stored[name]["price_date"] == today.date() and stored[name]["cost_note"] is None

    # What a re-evaluation of the stored plan would hand the resource gate.
    stored_costs, _ = store.load_comparison(conn, body["plan"]["id"])
    costs = {c.model: c for c in stored_costs}
    assert costs[GPT].cost_usd == float(gpt_price) and costs["openai:gpt-loopback-unpriced"].cost_usd is None

    unpriced = stored["openai:gpt-loopback-unpriced"]
    assert unpriced["cost_usd"] is None and "not in the price table" in unpriced["cost_note"]
    summary = body["comparison"]
    assert summary["cost_usd"] == pytest.approx(float(gpt_price + claude_price)) and summary["cost_complete"] is False
    resource = next(g for g in body["evaluations"] if g["gate"] == "resource")
    assert any(f["code"] == "resource.unknown_model_price" for f in resource["findings"])
    estimate = next(f for f in resource["findings"] if f["code"] == "resource.estimate")
    assert f"model comparison ${float(gpt_price + claude_price):,.4f}" in estimate["message"]
    assert Decimal(str(summary["models"][0]["cost_usd"])) == gpt_price


def test_the_calls_run_concurrently(client: Client, tokens, conn, llm) -> None:
    p = "mc-par"
    seed_backlog(conn, p, DEPS)
    good = answer(p, [["A", "E"], ["B", "C"], ["D"]])
    llm.script("openai", Reply(text=good, delay_s=0.5))
    llm.script("anthropic", Reply(text=good, delay_s=0.5))

    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    (a,) = llm.seen("openai")
    (b,) = llm.seen("anthropic")
    # Each request arrived before the other was answered: they were in flight together.
    assert a.arrived < b.answered and b.arrived < a.answered
    summary = body["comparison"]
    assert summary["wall_ms"] >= summary["slowest_ms"] >= 500


def test_adopt_best_model_restages_the_plan_and_sets_its_source(client: Client, tokens, conn, llm) -> None:
    p = "mc-adopt"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(text=answer(p, [["A"], ["B", "C", "E"], ["D"]]), input_tokens=500, output_tokens=40))
    llm.script("anthropic", Reply(text=answer(p, [["A"], ["E"], ["B"], ["C"], ["D"]])))
    options = {"compare_models": [GPT, CLAUDE], "adopt_best_model": True}

    # A dry run compares too, and writes nothing.
    before = conn.execute("SELECT count(*) AS n FROM model_comparisons").fetchone()["n"]
    dry = client.post(PLAN, json={"pack_ids": [p], "options": {**options, "dry_run": True}}, token=tokens["planner"])
    assert dry.status == 200 and dry.json()["dry_run"] is True
    assert dry.json()["comparison"]["adopted_model"] == GPT and dry.json()["plan"]["source"] == GPT
    assert len(llm.seen()) == 2
    assert conn.execute("SELECT count(*) AS n FROM model_comparisons").fetchone()["n"] == before
    assert conn.execute("SELECT count(*) AS n FROM plans WHERE pack_ids = %s", ([p],)).fetchone()["n"] == 0

    r = client.post(PLAN, json={"pack_ids": [p], "options": options}, token=tokens["planner"])
    assert r.status == 201, r.text
    body = r.json()
    assert body["plan"]["source"] == GPT and body["comparison"]["adopted_model"] == GPT
    assert stages_of(body) == [["A"], ["B", "C", "E"], ["D"]]  # the deterministic plan is [[A, E], [B, C], [D]]
    assert body["plan"]["totals"]["stages"] == 3
    # Same steps, only restaged: the tokens and rollback are the plan's own.
    dry_steps = {s["item_key"]: s for s in dry.json()["steps"]}
    for step in body["steps"]:
        assert step["idempotency_token"] == dry_steps[step["item_key"]]["idempotency_token"]
        assert step["rollback"] == dry_steps[step["item_key"]]["rollback"]
    stored_stages = conn.execute(
        "SELECT item_key, stage FROM plan_steps WHERE plan_id = %s", (body["plan"]["id"],)
    ).fetchall()
    assert {r["item_key"]: r["stage"] for r in stored_stages}[f"{p}-E"] == 1

    stored = rows(conn, body["plan"]["id"])
    assert stored[GPT]["adopted"] is True and stored[CLAUDE]["adopted"] is False
    per_model = conn.execute(
        "SELECT model, count(*) AS n FROM plan_evaluations WHERE plan_id = %s AND scope = 'model' GROUP BY model",
        (body["plan"]["id"],),
    ).fetchall()
    assert {r["model"]: r["n"] for r in per_model} == {GPT: 5, CLAUDE: 5}  # four gates and overall, each
    detail = client.get(f"/api/plans/{body['plan']['id']}", token=tokens["viewer"]).json()
    assert detail["plan"]["source"] == GPT and detail["comparison"]["adopted_model"] == GPT


def test_unknown_providers_are_a_422_naming_the_field(client: Client, tokens, conn, llm) -> None:
    p = "mc-422"
    seed_backlog(conn, p, DEPS)
    status, body = plan(client, tokens, p, [GPT, "mistral:large-2", "gpt-4o"])
    assert status == 422
    assert [e["loc"] for e in body["errors"]] == [
        ["body", "options", "compare_models", 1],
        ["body", "options", "compare_models", 2],
    ]
    assert "body.options.compare_models.1: unknown provider 'mistral'" in body["detail"]
    assert llm.seen() == []
    assert conn.execute("SELECT count(*) AS n FROM plans WHERE pack_ids = %s", ([p],)).fetchone()["n"] == 0


def test_a_provider_without_a_key_is_a_row_not_a_failure(
    client: Client, tokens, conn, llm, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = "mc-nokey"
    seed_backlog(conn, p, DEPS)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    llm.script("openai", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]])))
    status, body = plan(client, tokens, p, [GPT, CLAUDE])
    assert status == 201, body
    row = rows(conn, body["plan"]["id"])[CLAUDE]
    assert row["error"] == "not sent: ANTHROPIC_API_KEY is not set" and row["attempts"] == 0
    assert row["cost_usd"] == 0 and row["cost_note"] == row["error"]
    assert llm.seen("anthropic") == []


def test_asking_again_returns_the_open_plan_without_calling_again(client: Client, tokens, conn, llm) -> None:
    p = "mc-again"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]])))
    first_status, first = plan(client, tokens, p, [GPT])
    again_status, again = plan(client, tokens, p, [GPT])
    assert (first_status, again_status) == (201, 200)
    assert again["reused"] is True and again["plan"]["id"] == first["plan"]["id"]
    assert again["comparison"] == first["comparison"]
    assert len(llm.seen()) == 1


def test_viewers_read_comparisons_and_nobody_writes_them(client: Client, tokens, conn, llm, database_url) -> None:
    p = "mc-rls"
    seed_backlog(conn, p, DEPS)
    llm.script("openai", Reply(text=answer(p, [["A", "E"], ["B", "C"], ["D"]])))
    status, body = plan(client, tokens, p, [GPT])
    assert status == 201
    select = "SELECT model, cost_usd FROM public.model_comparisons WHERE plan_id = %s"
    assert attempt(database_url, "viewer", select, (body["plan"]["id"],)) == (True, 1)
    assert attempt(database_url, "anon", select, (body["plan"]["id"],))[1] == 0
    insert = (
        "INSERT INTO public.model_comparisons (plan_id, provider, model, score, valid, prompt_digest, comparison_ms, "
        "cost_note) VALUES (%s, 'openai', 'forged', 100, true, repeat('a', 64), 1, 'x')"
    )
    assert attempt(database_url, "admin", insert, (body["plan"]["id"],))[0] is False


def test_an_idempotency_key_holds_no_transaction_while_the_models_answer(client: Client, tokens, conn, llm) -> None:
    p = "mc-key"
    seed_backlog(conn, p, DEPS)
    good = answer(p, [["A", "E"], ["B", "C"], ["D"]])
    llm.script("openai", Reply(text=good, delay_s=1.5))
    llm.script("anthropic", Reply(text=good, delay_s=1.5))
    key = f"mc-{uuid.uuid4()}"
    body = {"pack_ids": [p], "options": {"compare_models": [GPT, CLAUDE]}}
    first: list = []

    def send() -> None:
        first.append(client.post(PLAN, json=body, token=tokens["planner"], headers={"idempotency-key": key}))

    worker = threading.Thread(target=send)
    worker.start()
    deadline = time.monotonic() + 5
    while not llm.seen() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert llm.seen(), "the providers were never asked"

    # while the providers answer: the claim is committed (visible elsewhere), no
    # transaction of the request is open, and a duplicate is told to come back
    claim = conn.execute("SELECT status FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
    assert claim is not None and claim["status"] == "processing"
    idle = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%%'"
    ).fetchone()["n"]
    assert idle == 0
    started = time.monotonic()
    duplicate = client.post(PLAN, json=body, token=tokens["planner"], headers={"idempotency-key": key})
    assert duplicate.status == 409 and duplicate.header("retry-after") == "2", duplicate.text
    assert time.monotonic() - started < 1.0  # answered at once, not after the first finished

    worker.join(10)
    (done,) = first
    assert done.status == 201, done.text
    replay = client.post(PLAN, json=body, token=tokens["planner"], headers={"idempotency-key": key})
    assert replay.status == 201 and replay.header("idempotent-replayed") == "true"
    assert replay.json()["plan"]["id"] == done.json()["plan"]["id"]
    assert len(llm.seen()) == 2  # the replay asked nobody
    stored = conn.execute("SELECT status FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
    assert stored["status"] == "completed"


def test_a_claim_abandoned_by_a_dead_request_is_taken_over(client: Client, tokens, conn, llm) -> None:
    p = "mc-dead"
    seed_backlog(conn, p, DEPS)
    key = f"dead-{uuid.uuid4()}"
    scope = f"{auth.authenticate('Bearer ' + tokens['planner']).subject}|POST {PLAN}"
    conn.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, created_at) "
        "VALUES (%s, %s, 'from-a-request-that-died', 'processing', now() - interval '6 minutes')",
        (scope, key),
    )
    r = client.post(PLAN, json={"pack_ids": [p]}, token=tokens["planner"], headers={"idempotency-key": key})
    assert r.status == 201, r.text
    row = conn.execute("SELECT status, response_status FROM idempotency_keys WHERE key = %s", (key,)).fetchone()
    assert (row["status"], row["response_status"]) == ("completed", 201)

    # a claim that is recent is a request still running: 409, nothing taken over
    fresh = f"busy-{uuid.uuid4()}"
    conn.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status) VALUES (%s, %s, 'x', 'processing')",
        (scope, fresh),
    )
    busy = client.post(PLAN, json={"pack_ids": [p]}, token=tokens["planner"], headers={"idempotency-key": fresh})
    assert busy.status == 409
