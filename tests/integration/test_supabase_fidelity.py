"""Supabase fidelity: the same migrations on a database prepared like Supabase's
(applied by a non-superuser owner, without the prelude) and on plain PostgreSQL
(with the prelude), the event broadcast on both, and the migration linter."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from lib import settings
from lib.data import migrate
from lib.data.db import connect as db_connect
from tests.conftest import _server_admin_url, _with_database

SUPABASE_PLATFORM = Path(__file__).resolve().parents[1] / "fixtures" / "supabase_platform.sql"
OWNER = "nofx_owner"  # plays Supabase's `postgres`, which is not a superuser there

# Everything Supabase owns that the migrations could touch: schemas, tables and
# functions of auth and realtime (definitions, owners, grants, RLS switches),
# the publication, and the API roles. Policies on realtime.messages are left
# out on purpose: adding those is the one change the design allows.
PLATFORM_OBJECTS = """
SELECT 'schema ' || n.nspname AS name,
       jsonb_build_object('owner', pg_get_userbyid(n.nspowner), 'acl', n.nspacl::text) AS state
  FROM pg_namespace n WHERE n.nspname IN ('auth', 'realtime')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text,
       jsonb_build_object('owner', pg_get_userbyid(p.proowner), 'acl', p.proacl::text,
                          'definition', pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace IN ('auth'::regnamespace, 'realtime'::regnamespace)
UNION ALL
SELECT 'relation ' || c.oid::regclass::text,
       jsonb_build_object('owner', pg_get_userbyid(c.relowner), 'acl', c.relacl::text, 'kind', c.relkind,
                          'rls', c.relrowsecurity, 'force_rls', c.relforcerowsecurity,
                          'columns', (
                            SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                              || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-'),
                                              ', ' ORDER BY a.attnum)
                              FROM pg_attribute a
                              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
  FROM pg_class c WHERE c.relnamespace IN ('auth'::regnamespace, 'realtime'::regnamespace)
UNION ALL
SELECT 'publication ' || pubname,
       jsonb_build_object('owner', pg_get_userbyid(pubowner), 'all_tables', puballtables,
                          'tables', (SELECT array_agg(t.tablename ORDER BY t.tablename)
                                       FROM pg_publication_tables t WHERE t.pubname = p.pubname))
  FROM pg_publication p
UNION ALL
SELECT 'role ' || rolname,
       jsonb_build_object('super', rolsuper, 'bypassrls', rolbypassrls, 'login', rolcanlogin, 'inherit', rolinherit)
  FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role', 'authenticator', 'supabase_admin')
"""


def _as_role(url: str, role: str) -> str:
    """The same database URL, logged in as another role (trust auth in tests)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
def scratch_url() -> Iterator[str]:
    """A fresh, empty database of this test's own; the URL logs in as the superuser."""
    admin = _server_admin_url()
    name = f"nofx_fidelity_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(admin, name)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _prepare_like_supabase(superuser_url: str) -> None:
    with psycopg.connect(superuser_url, autocommit=True) as c:
        c.execute(SUPABASE_PLATFORM.read_text())


@pytest.fixture
def supabase_url(scratch_url: str) -> str:
    """The scratch database prepared like a Supabase project's (as the superuser)."""
    _prepare_like_supabase(scratch_url)
    return scratch_url


def _platform(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as c:
        return {name: state for name, state in c.execute(PLATFORM_OBJECTS)}


def _all_versions() -> list[str]:
    return [m.version for m in migrate.discover()]


def test_the_fixture_looks_like_supabase_to_the_migrator(supabase_url: str) -> None:
    with db_connect(_as_role(supabase_url, OWNER)) as c:
        me = c.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
        assert me == {"rolsuper": False, "rolcreaterole": False}
        assert migrate.needs_prelude(c) is False
        partitioned = c.execute("SELECT relkind FROM pg_class WHERE oid = 'realtime.messages'::regclass").fetchone()[
            "relkind"
        ]
        assert partitioned == "p"


def test_migrations_apply_as_the_non_superuser_owner_and_leave_supabase_alone(supabase_url: str) -> None:
    before = _platform(supabase_url)
    assert "function auth.jwt()" in before and "relation realtime.messages" in before

    assert migrate.migrate(_as_role(supabase_url, OWNER)) == _all_versions()

    after = _platform(supabase_url)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed == set(), f"migrations (or the prelude) changed Supabase's objects: {sorted(changed)}"
    with psycopg.connect(supabase_url) as c:
        owners = {r[0] for r in c.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        policies = c.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'realtime'").fetchone()[0]
    assert owners == {OWNER}
    assert policies >= 1, "0001 adds the viewers' policy on realtime.messages"


def test_a_webhook_approver_resolves_through_supabase_auth_users(supabase_url: str) -> None:
    """Where Supabase's auth.users exists it alone says who an email names (the
    project's own record is for databases without it)."""
    migrate.migrate(_as_role(supabase_url, OWNER))
    kim, gone = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(supabase_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO auth.users (id, email, deleted_at) VALUES (%s, 'Kim@Example.com', NULL), "
            "(%s, 'gone@example.com', now())",
            (kim, gone),
        )
        c.execute(
            "INSERT INTO public.people (id, email, source) VALUES ('not-in-auth', 'lee@example.com', 'registered')"
        )
    with db_connect(_as_role(supabase_url, OWNER)) as c:

        def ids(email: str) -> list[str]:
            return [r["id"] for r in c.execute("SELECT nofx.people_by_email(%s) AS id", (email,))]

        assert ids("kim@EXAMPLE.com") == [kim]
        assert ids("gone@example.com") == []  # a deleted user names nobody
        assert ids("lee@example.com") == []  # auth.users decides here, not the project's record


def test_supabase_cron_calls_the_tick_every_minute_where_it_exists(supabase_url: str) -> None:
    migrate.migrate(_as_role(supabase_url, OWNER))
    with psycopg.connect(supabase_url, autocommit=True) as c:
        job = c.execute("SELECT jobname, schedule, command FROM cron.job").fetchall()
        assert job == [("nofx-tick", "* * * * *", "SELECT nofx.call_tick()")]
        assert c.execute("SELECT nofx.call_tick()").fetchone() == (None,)  # not configured yet: nothing sent
        c.execute("UPDATE public.config SET value = '\"https://nofx.example/api/cron/tick\"' WHERE key = 'tick.url'")
        c.execute("INSERT INTO vault.secrets (name, secret) VALUES ('nofx_cron_secret', 's3cret')")
    with db_connect(_as_role(supabase_url, OWNER)) as c:  # the job runs as the owner
        assert c.execute("SELECT nofx.call_tick() AS id").fetchone()["id"] is not None
    with psycopg.connect(supabase_url, autocommit=True) as c:
        sent = c.execute("SELECT method, url, headers FROM net.http_request_queue").fetchall()
    assert sent == [("GET", "https://nofx.example/api/cron/tick", {"Authorization": "Bearer s3cret"})]


def test_the_storage_bucket_is_made_private_where_supabase_storage_exists(supabase_url: str) -> None:
    migrate.migrate(_as_role(supabase_url, OWNER))
    with psycopg.connect(supabase_url, autocommit=True) as c:
        assert c.execute("SELECT id, name, public FROM storage.buckets").fetchall() == [("nofx", "nofx", False)]


def test_plain_postgres_gets_the_prelude_then_the_migrations(scratch_url: str) -> None:
    with db_connect(scratch_url) as c:
        assert migrate.needs_prelude(c) is True
    assert migrate.migrate(scratch_url) == _all_versions()
    with db_connect(scratch_url) as c:
        assert migrate.needs_prelude(c) is False
        kind = c.execute("SELECT relkind FROM pg_class WHERE oid = 'realtime.messages'::regclass").fetchone()
        assert kind == {"relkind": "r"}  # the prelude's own, unpartitioned table
        # no pg_cron or pg_net here: the Supabase Cron migration applied and scheduled nothing
        assert c.execute("SELECT to_regclass('cron.job') AS job").fetchone() == {"job": None}
        assert c.execute("SELECT nofx.call_tick() AS id").fetchone() == {"id": None}
        # no Storage schema either: the bucket migration applied and made nothing
        assert c.execute("SELECT to_regclass('storage.buckets') AS b").fetchone() == {"b": None}


def _insert_event(url: str) -> tuple[int, list[dict[str, Any]], list[str]]:
    """Insert one event the way the server does (as the table owner); return its
    id, the broadcast rows written in realtime.messages, and the warnings seen."""
    warnings: list[str] = []
    with db_connect(url, autocommit=True) as c:
        c.add_notice_handler(lambda diag: warnings.append(f"{diag.severity}: {diag.message_primary}"))
        event_id = c.execute(
            "INSERT INTO public.events (type, plan_id, data) VALUES ('flag.changed', NULL, '{}') RETURNING id"
        ).fetchone()["id"]
        rows = c.execute(
            """SELECT tableoid::regclass::text AS partition, to_char(inserted_at, 'YYYY_MM_DD') AS day,
                      topic, event, extension, private, payload
                 FROM realtime.messages"""
        ).fetchall()
    return event_id, rows, warnings


@pytest.mark.parametrize("platform", ["supabase", "plain"])
def test_an_event_row_is_broadcast_on_the_events_topic(platform: str, scratch_url: str) -> None:
    if platform == "supabase":
        _prepare_like_supabase(scratch_url)
        url = _as_role(scratch_url, OWNER)
    else:
        url = scratch_url
    migrate.migrate(url)

    event_id, rows, warnings = _insert_event(url)

    assert warnings == []
    assert len(rows) == 1, rows  # no plan_id: only the nofx:events topic
    message = rows[0]
    assert (message["topic"], message["event"], message["extension"], message["private"]) == (
        "nofx:events",
        "flag.changed",
        "broadcast",
        True,
    )
    assert message["payload"]["id"] == event_id and message["payload"]["type"] == "flag.changed"
    if platform == "supabase":  # Supabase keeps one partition per day
        assert message["partition"] == f"realtime.messages_{message['day']}"


def test_a_failed_broadcast_never_fails_the_event(supabase_url: str) -> None:
    """Supabase's realtime.send swallows its errors: with no partition for
    today the event is still stored (the record of truth), with a warning."""
    migrate.migrate(_as_role(supabase_url, OWNER))
    with psycopg.connect(supabase_url, autocommit=True) as c:
        for (part,) in c.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'realtime.messages'::regclass"
        ).fetchall():
            c.execute(f"ALTER TABLE realtime.messages DETACH PARTITION {part}")

    event_id, rows, warnings = _insert_event(_as_role(supabase_url, OWNER))

    assert rows == []
    assert any("ErrorSendingBroadcastMessage" in w for w in warnings), warnings
    with psycopg.connect(supabase_url) as c:
        assert c.execute("SELECT type FROM public.events WHERE id = %s", (event_id,)).fetchone() == ("flag.changed",)


def test_migrations_pass_the_squawk_linter() -> None:
    squawk = Path(sys.executable).parent / "squawk"
    files = sorted(str(p.relative_to(settings.ROOT)) for p in migrate.MIGRATIONS_DIR.glob("*.sql"))
    assert files, "no migrations found"
    result = subprocess.run(
        [str(squawk), "--config", ".squawk.toml", *files],
        cwd=settings.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
