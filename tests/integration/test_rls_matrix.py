"""The RLS role matrix: every table, every role, every operation, against the
intended policy in tests/support/rls_matrix.py (printed in the README).

Each attempt runs in its own transaction, rolled back: as `anon`, as
`authenticated` with Supabase-shaped claims for each NOFX role, and as
`service_role`. Probe rows are written first by the owner, each without
dependents, so a DELETE is decided by permissions, not by foreign keys.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.support.rls import attempt
from tests.support.rls_matrix import EXPECTED, OPS, ROLES

P = str(uuid.uuid4())  # a plan with dependents
P_DEL = str(uuid.uuid4())  # a plan without any
S = str(uuid.uuid4())
S_DEL = str(uuid.uuid4())
A = str(uuid.uuid4())
A_DEL = str(uuid.uuid4())

PROBES = f"""
INSERT INTO config (key, value) VALUES ('rls.probe', '1');
INSERT INTO idempotency_keys (scope, key, fingerprint, status) VALUES ('rls', 'probe', 'fp', 'completed');
INSERT INTO events (type, data) VALUES ('flag.changed', '{{"rls": "probe"}}');
INSERT INTO audit_log (chain, occurred_at, actor, action, content, prev_hash, hash)
  VALUES ('rls', now(), 'probe', 'rls.probe', '{{}}', '', '');
INSERT INTO packs (id, name) VALUES ('rls-probe', 'probe'), ('rls-items', 'items');
INSERT INTO tools (id, name, kind) VALUES ('rls.probe', 'probe', 'builtin'), ('rls.used', 'used', 'builtin');
INSERT INTO tool_metrics (tool_id, status, duration_ms, cost_usd) VALUES ('rls.used', 'succeeded', 5, 0);
INSERT INTO backlog_items (key, title, pack_id, tool_id) VALUES ('RLS-PROBE', 'probe', 'rls-items', 'rls.used');
INSERT INTO plans (id, input_fingerprint, created_by, created_by_sub, status)
  VALUES ('{P}', 'fp-rls', 'probe', 'probe', 'ready'), ('{P_DEL}', 'fp-rls-del', 'probe', 'probe', 'cancelled');
INSERT INTO plan_steps (id, plan_id, item_key, title, pack_id, tool_id, stage, position, idempotency_token)
  VALUES ('{S}', '{P}', 'K1', 't', 'rls-items', 'rls.used', 0, 0, 'tok-1'),
         ('{S_DEL}', '{P}', 'K2', 't', 'rls-items', 'rls.used', 0, 1, 'tok-2');
INSERT INTO plan_evaluations (plan_id, generation, scope, gate, verdict, score, details, policy_version, evaluated_by)
  VALUES ('{P}', 1, 'plan', 'risk', 'allow', 100, '{{"findings": []}}', 'v', 'probe');
INSERT INTO model_comparisons (plan_id, provider, model, score, valid, prompt_digest, comparison_ms, cost_usd)
  VALUES ('{P}', 'openai', 'gpt-probe', 50, true, repeat('a', 64), 1, 0);
INSERT INTO policies (name, source, updated_by) VALUES ('rls_probe', 'package rls', 'probe');
INSERT INTO notifications (channel, payload) VALUES ('slack', '{{}}');
INSERT INTO approvals (id, kind, plan_id, step_id, plan_version, digest, idempotency_token, requested_by, expires_at)
  VALUES ('{A}', 'step', '{P}', '{S}', 1, 'd1', 'tok-1', 'probe', now() + interval '1 hour'),
         ('{A_DEL}', 'step', '{P}', '{S}', 1, 'd2', 'tok-x', 'probe', now() + interval '1 hour');
INSERT INTO approval_events (approval_id, event, actor, source, digest)
  VALUES ('{A}', 'requested', 'probe', 'system', 'd1');
INSERT INTO overrides (plan_id, scope, action, reason, actor, actor_sub)
  VALUES ('{P}', 'plan', 'allow', 'probe', 'p', 'p');
INSERT INTO nofx_schema_migrations (version, name, checksum) VALUES ('9998', 'probe', 'c');
INSERT INTO people (id, email, source) VALUES ('rls-probe-person', 'probe@rls.example', 'registered');
INSERT INTO step_callbacks (delivery_id, step_id, phase, status) VALUES ('rls-probe', '{S}', 'run', 'running');
INSERT INTO audit_checkpoints (chain, seq, hash) VALUES ('rls', 1, 'h');
INSERT INTO storage_outbox (key, data) VALUES ('rls/probe.json', '\\x7b7d');
INSERT INTO override_requests (plan_id, reason, requested_by, requested_by_sub)
  VALUES ('{P}', 'probe', 'p', 'p');
"""

# table -> (probe predicate, column to touch, insert statement)
STATEMENTS: dict[str, tuple[str, str, str]] = {
    "override_requests": (
        "reason = 'probe'",
        "reason",
        "INSERT INTO override_requests (plan_id, reason, requested_by, requested_by_sub) "
        f"VALUES ('{P_DEL}', 'new', 'p', 'p')",
    ),
    "storage_outbox": (
        "key = 'rls/probe.json'",
        "last_error",
        "INSERT INTO storage_outbox (key, data) VALUES ('rls/new.json', '\\x7b7d')",
    ),
    "audit_checkpoints": (
        "chain = 'rls'",
        "hash",
        "INSERT INTO audit_checkpoints (chain, seq, hash) VALUES ('rls-new', 1, 'h')",
    ),
    "step_callbacks": (
        "delivery_id = 'rls-probe'",
        "status",
        f"INSERT INTO step_callbacks (delivery_id, step_id, phase, status) VALUES ('rls-new', '{S}', 'run', 'running')",
    ),
    "people": (
        "id = 'rls-probe-person'",
        "display_name",
        "INSERT INTO people (id, email, source) VALUES ('rls-new-person', 'new@rls.example', 'signed_in')",
    ),
    "config": ("key = 'rls.probe'", "description", "INSERT INTO config (key, value) VALUES ('rls.new', '1')"),
    "idempotency_keys": (
        "scope = 'rls'",
        "status",
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status) VALUES ('r', 'n', 'f', 'processing')",
    ),
    "events": ("data->>'rls' = 'probe'", "type", "INSERT INTO events (type) VALUES ('flag.changed')"),
    "audit_log": (
        "chain = 'rls'",
        "actor",
        "INSERT INTO audit_log (chain, occurred_at, actor, action, content, prev_hash, hash) "
        "VALUES ('rls2', now(), 'x', 'x', '{}', '', '')",
    ),
    "audit_chain_heads": (
        "chain = 'rls'",
        "hash",
        "INSERT INTO audit_chain_heads (chain, seq, hash) VALUES ('rls-new', 0, 'h')",
    ),
    "packs": ("id = 'rls-probe'", "name", "INSERT INTO packs (id, name) VALUES ('rls-new', 'n')"),
    "tools": ("id = 'rls.probe'", "name", "INSERT INTO tools (id, name, kind) VALUES ('rls.new', 'n', 'builtin')"),
    "tool_metrics": (
        "tool_id = 'rls.used'",
        "status",
        "INSERT INTO tool_metrics (tool_id, status, duration_ms, cost_usd) VALUES ('x', 'ok', 1, 0)",
    ),
    "backlog_items": (
        "key = 'RLS-PROBE'",
        "title",
        "INSERT INTO backlog_items (key, title, pack_id, tool_id) VALUES ('RLS-NEW', 't', 'rls-items', 'rls.used')",
    ),
    "plans": (
        f"id = '{P_DEL}'",
        "title",
        "INSERT INTO plans (input_fingerprint, created_by, created_by_sub) VALUES ('fp-new', 'x', 'y')",
    ),
    "plan_steps": (
        f"id = '{S_DEL}'",
        "title",
        f"INSERT INTO plan_steps (id, plan_id, item_key, title, pack_id, tool_id, stage, position, "
        f"idempotency_token) VALUES (gen_random_uuid(), '{P}', 'k', 't', 'p', 't', 0, 9, 'tok-new')",
    ),
    "plan_evaluations": (
        f"plan_id = '{P}'",
        "evaluated_by",
        f"INSERT INTO plan_evaluations (plan_id, generation, scope, gate, verdict, score, details, "
        f"policy_version, evaluated_by) VALUES ('{P}', 99, 'plan', 'risk', 'allow', 100, "
        "'{\"findings\": []}', 'v', 'x')",
    ),
    "model_comparisons": (
        f"plan_id = '{P}'",
        "error",
        f"INSERT INTO model_comparisons (plan_id, provider, model, score, valid, prompt_digest, "
        f"comparison_ms, cost_usd) VALUES ('{P}', 'anthropic', 'new', 1, true, repeat('b', 64), 1, 0)",
    ),
    "policies": (
        "name = 'rls_probe'",
        "source",
        "INSERT INTO policies (name, source, updated_by) VALUES ('rls_new', 'package x', 'x')",
    ),
    "notifications": (
        "channel = 'slack'",
        "status",
        "INSERT INTO notifications (channel, payload) VALUES ('slack', '{}')",
    ),
    "approvals": (
        f"id = '{A_DEL}'",
        "requested_by",
        f"INSERT INTO approvals (kind, plan_id, step_id, plan_version, digest, idempotency_token, "
        f"requested_by, expires_at) VALUES ('step', '{P}', '{S}', 1, 'dn', 'tn', 'x', now() + interval '1h')",
    ),
    "approval_events": (
        f"approval_id = '{A}'",
        "actor",
        f"INSERT INTO approval_events (approval_id, event, actor, source, digest) "
        f"VALUES ('{A}', 'requested', 'x', 'system', 'd')",
    ),
    "overrides": (
        f"plan_id = '{P}'",
        "reason",
        f"INSERT INTO overrides (plan_id, scope, action, reason, actor, actor_sub) "
        f"VALUES ('{P}', 'plan', 'allow', 'because', 'x', 'y')",
    ),
    "nofx_schema_migrations": (
        "version = '9998'",
        "name",
        "INSERT INTO nofx_schema_migrations (version, name, checksum) VALUES ('9997', 'x', 'c')",
    ),
}


def sql_for(table: str, op: str) -> str:
    where, column, insert = STATEMENTS[table]
    return {
        "select": f"SELECT 1 FROM public.{table} WHERE {where}",
        "insert": insert,
        "update": f"UPDATE public.{table} SET {column} = {column} WHERE {where}",
        "delete": f"DELETE FROM public.{table} WHERE {where}",
    }[op]


@pytest.fixture(scope="module")
def probed(template_database: str) -> str:
    """A database of this module's own with the probe rows in it."""
    from tests.conftest import _create_database, _drop_database, _server_admin_url

    admin = _server_admin_url()
    name = f"nofx_rls_{uuid.uuid4().hex[:8]}"
    url = _create_database(admin, name, template=template_database)
    with psycopg.connect(url) as conn:
        conn.execute(PROBES)
    yield url
    _drop_database(admin, name)


def test_every_table_is_covered(conn) -> None:
    tables = {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == set(EXPECTED) == set(STATEMENTS), "every table needs a row in the matrix"
    without_rls = [
        r["tablename"]
        for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT rowsecurity")
    ]
    assert without_rls == [], "row level security is on for every table"


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_matrix(probed: str, table: str) -> None:
    actual: dict[str, set[str]] = {op: set() for op in OPS}
    for role in ROLES:
        for op in OPS:
            ok, rows = attempt(probed, role, sql_for(table, op))
            if ok and rows >= 1:
                actual[op].add(role)
    assert actual == EXPECTED[table]


def test_viewers_may_join_the_nofx_realtime_channels_only(probed: str) -> None:
    from tests.support.rls import acting_as

    with psycopg.connect(probed) as conn:
        conn.execute("SELECT realtime.send('{\"x\": 1}'::jsonb, 'probe', 'nofx:events', true)")
        conn.execute("SELECT realtime.send('{\"x\": 2}'::jsonb, 'probe', 'elsewhere', true)")
        conn.commit()
    for role, topic, visible in (
        ("viewer", "nofx:events", True),
        ("viewer", "elsewhere", False),
        ("anon", "nofx:events", False),
    ):
        with acting_as(probed, role) as conn:
            conn.execute("SELECT set_config('realtime.topic', %s, true)", (topic,))
            rows = conn.execute("SELECT count(*) FROM realtime.messages").fetchone()[0] if role != "anon" else None
            if role == "anon":
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("SELECT count(*) FROM realtime.messages")
            else:
                assert (rows > 0) is visible
