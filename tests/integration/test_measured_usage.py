"""The Supabase footprint measured on the project itself: the tick measures
bytes and invocations per step from finished plans (tables' real sizes, the
stored snapshots), stores them in config, and the next plan's resource gate
prices them and says when they were measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from lib import settings
from lib.data import migrate, storage
from lib.data.db import connect as db_connect
from lib.ops import usage
from tests.integration.test_supabase_fidelity import (  # noqa: F401 - the Supabase-shaped database's fixtures
    OWNER,
    _as_role,
    scratch_url,
    supabase_url,
)
from tests.support.plans import executed_plan, make_plan
from tests.support.wsgi_client import Client

CRON = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}


def test_the_tick_measures_finished_plans_and_the_gate_prices_the_figures(client: Client, tokens, conn) -> None:
    executed_plan(client, tokens, conn, "use1")
    conn.execute("DELETE FROM config WHERE key = %s", (usage.CONFIG_KEY,))
    figures = usage.measure(conn)
    assert figures is not None and figures["plans_sampled"] >= 1
    # a step leaves rows in plan_steps, events, audit_log, tool_metrics ...: kilobytes, not 700 B
    assert figures["rows_per_step"] > 3 and figures["database_bytes_per_step"] > 1_000
    assert figures["storage_bytes_per_step"] > 0 and figures["storage_source"] == "the local store's files"
    assert figures["invocations_per_step"] >= 1

    assert client.get("/api/cron/tick", headers=CRON).json()["usage_measured"] is True
    assert client.get("/api/cron/tick", headers=CRON).json()["usage_measured"] is False  # hourly, not every tick
    stored = conn.execute("SELECT value FROM config WHERE key = %s", (usage.CONFIG_KEY,)).fetchone()["value"]
    assert stored["plans_sampled"] >= 1

    body = make_plan(client, tokens["planner"], conn, "use2", {"A": [], "B": ["A"]})
    gates = client.get(f"/api/gates/{body['plan']['id']}", token=tokens["viewer"]).json()
    footprint = gates["summary"]["supabase"]
    assert footprint["measured_at"] == stored["measured_at"] and footprint["retention_months"] == 12
    assert footprint["database_bytes"] == round(stored["database_bytes_per_step"] * 2)
    assert footprint["cost_usd"] > 0 and footprint["unknown"] == []


def test_stale_figures_are_measured_again(conn) -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    conn.execute(
        "INSERT INTO config (key, value) VALUES (%s, jsonb_build_object('measured_at', %s::text)) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (usage.CONFIG_KEY, old),
    )
    finished = conn.execute("SELECT 1 FROM plans WHERE status = 'completed' LIMIT 1").fetchone()
    assert usage.refresh_if_due(conn) is (finished is not None)


def test_on_supabase_stored_bytes_come_from_storage_objects(supabase_url: str, monkeypatch) -> None:  # noqa: F811
    migrate.migrate(_as_role(supabase_url, OWNER))
    monkeypatch.setattr(storage, "configuration", lambda: ("supabase", "nofx", None))
    with psycopg.connect(supabase_url, autocommit=True) as c:
        c.execute("INSERT INTO tools (id, name, kind) VALUES ('x', 'x', 'builtin')")
        c.execute("INSERT INTO packs (id, name) VALUES ('use', 'use')")
        plan_id = c.execute(
            "INSERT INTO plans (input_fingerprint, created_by, created_by_sub, status) "
            "VALUES ('fp-use', 'u', 'u', 'completed') RETURNING id"
        ).fetchone()[0]
        for n in range(2):
            c.execute(
                "INSERT INTO plan_steps (id, plan_id, item_key, title, pack_id, tool_id, stage, position, "
                "idempotency_token) VALUES (gen_random_uuid(), %s, %s, 't', 'use', 'x', 0, %s, %s)",
                (plan_id, f"K{n}", n, f"tok-{plan_id}-{n}"),
            )
        c.execute(
            "INSERT INTO storage.objects (bucket_id, name, metadata) VALUES "
            "('nofx', %s, '{\"size\": 1000}'), ('nofx', %s, '{\"size\": 3000}'), "
            "('nofx', 'snapshots/other/z.json', '{\"size\": 99}')",
            (f"snapshots/{plan_id}/a.json", f"snapshots/{plan_id}/b.json"),
        )
    with db_connect(_as_role(supabase_url, OWNER)) as c:
        figures = usage.measure(c)
    assert figures["storage_source"] == "storage.objects metadata"
    assert figures["storage_bytes_per_step"] == 2000.0  # (1000 + 3000) bytes over 2 steps
