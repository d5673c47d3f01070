"""Apply supabase/migrations/*.sql: each file once, in order, in a transaction.

Forward-only: an applied file is recorded with its checksum and never run
again; editing it afterwards is an error, not a silent drift. Before the
migrations, the compatibility prelude is applied where the database is not
Supabase (it lacks the roles, auth.jwt() or realtime.send()).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from lib import settings
from lib.data import db

MIGRATIONS_DIR = settings.ROOT / "supabase" / "migrations"
PRELUDE = settings.ROOT / "supabase" / "prelude.sql"
LOCK_KEY = 0x6E6F6678  # "nofx": one migrator at a time per database
FILENAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

LEDGER = """
CREATE TABLE IF NOT EXISTS public.nofx_schema_migrations (
  version    text        PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE public.nofx_schema_migrations ENABLE ROW LEVEL SECURITY;
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        found.append(Migration(match.group(1), path.stem, path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


def needs_prelude(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        """
        SELECT (SELECT count(*) FROM pg_roles
                 WHERE rolname IN ('anon', 'authenticated', 'service_role')) = 3
           AND to_regprocedure('auth.jwt()') IS NOT NULL
           AND to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NOT NULL
           AND to_regprocedure('realtime.topic()') IS NOT NULL AS ready
        """
    ).fetchone()
    assert row is not None
    return not row["ready"]


def migrate(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Bring the database up to date; returns the versions applied now."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with db.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            if needs_prelude(conn):
                with conn.transaction():
                    conn.execute(PRELUDE.read_text())
            with conn.transaction():
                conn.execute(LEDGER)
            done = {
                r["version"]: r
                for r in conn.execute("SELECT version, name, checksum FROM public.nofx_schema_migrations")
            }
            for m in migrations:
                if m.version in done:
                    if done[m.version]["checksum"] != m.checksum:
                        raise MigrationError(
                            f"{m.path.name} changed after it was applied; migrations are forward-only, "
                            "add a new file instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO public.nofx_schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
                applied_now.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def applied(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT version, name, applied_at FROM public.nofx_schema_migrations ORDER BY version"))
