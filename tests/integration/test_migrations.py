"""Migrations: each file once, forward-only, idempotent, on a fresh database."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

from lib.data import migrate
from lib.data.db import connect as db_connect
from tests.conftest import _server_admin_url, _with_database


@pytest.fixture
def scratch_url():
    admin = _server_admin_url()
    name = f"nofx_scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(admin, name)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema(url: str) -> list[tuple]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema IN ('public', 'nofx', 'auth', 'realtime') ORDER BY 1, 2, 3"
        ).fetchall()


def test_running_twice_is_a_no_op(scratch_url: str) -> None:
    first = migrate.migrate(scratch_url)
    assert first == [m.version for m in migrate.discover()]
    before = _schema(scratch_url)
    assert migrate.migrate(scratch_url) == []
    assert _schema(scratch_url) == before


def test_an_edited_migration_is_refused(scratch_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    migrate.migrate(scratch_url, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited afterwards\n")
    with pytest.raises(migrate.MigrationError, match="forward-only"):
        migrate.migrate(scratch_url, folder)


def test_a_failing_migration_leaves_nothing_behind(scratch_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, folder)
    (folder / "9999_broken.sql").write_text("CREATE TABLE public.half_done (id int);\nSELECT 1/0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate.migrate(scratch_url, folder)
    with psycopg.connect(scratch_url) as c:
        assert c.execute("SELECT to_regclass('public.half_done') AS t").fetchone()[0] is None
        versions = [r[0] for r in c.execute("SELECT version FROM nofx_schema_migrations")]
    assert "9999" not in versions and "0001" in versions


def test_prelude_gives_plain_postgres_the_supabase_objects(scratch_url: str) -> None:
    migrate.migrate(scratch_url)
    with db_connect(scratch_url) as c:
        assert migrate.needs_prelude(c) is False
        c.execute(
            "SELECT set_config('request.jwt.claims', %s, true)",
            ('{"sub": "7d1f0d0e-1111-4222-8333-444455556666", "role": "authenticated"}',),
        )
        assert str(c.execute("SELECT auth.uid() AS u").fetchone()["u"]) == "7d1f0d0e-1111-4222-8333-444455556666"
        c.execute("SELECT realtime.send('{\"a\": 1}'::jsonb, 'probe', 'nofx:test', true)")
        assert c.execute("SELECT count(*) AS n FROM realtime.messages WHERE topic = 'nofx:test'").fetchone()["n"] == 1


def test_prelude_never_redefines_what_exists(scratch_url: str) -> None:
    with db_connect(scratch_url) as c:
        c.execute("CREATE SCHEMA auth")
        c.execute("CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql AS $$ SELECT '{\"ours\": true}'::jsonb $$")
        c.commit()
    migrate.migrate(scratch_url)
    with db_connect(scratch_url) as c:
        assert c.execute("SELECT auth.jwt() AS j").fetchone()["j"] == {"ours": True}


def test_bad_file_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_oops.sql").write_text("SELECT 1;")
    with pytest.raises(migrate.MigrationError, match="NNNN"):
        migrate.discover(tmp_path)
