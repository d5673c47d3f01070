"""What GET /api/health reports: the database, the migrations applied to it,
and storage: which backend the settings name (missing ones said here, not on
the first step) and the uploads still waiting in the outbox."""

from __future__ import annotations

import time
from datetime import datetime
from functools import cache
from typing import Any

import psycopg
from pydantic import BaseModel

from lib.data import db, migrate, storage
from lib.web.http import Reply


class AppliedMigration(BaseModel):
    version: str
    name: str
    applied_at: datetime


class DatabaseHealth(BaseModel):
    ok: bool
    server_version: str | None = None
    latency_ms: float | None = None
    error: str | None = None


class StorageHealth(BaseModel):
    backend: str  # supabase, local, or missing (on Vercel without its settings)
    bucket: str | None = None
    problem: str | None = None
    pending_uploads: int | None = None  # staged snapshots and artifacts not yet in storage
    failed_uploads: int | None = None  # of those, refused at least once
    oldest_pending_seconds: float | None = None
    last_error: str | None = None


class Health(BaseModel):
    status: str
    database: DatabaseHealth
    storage: StorageHealth
    migrations: list[AppliedMigration]
    pending_migrations: list[str]


@cache
def _known_versions() -> tuple[str, ...]:
    """The migration files deployed with this process (they do not change under it)."""
    return tuple(m.version for m in migrate.discover())


BASIC = """
SELECT current_setting('server_version') AS server_version,
       coalesce((SELECT json_agg(json_build_object('version', version, 'name', name, 'applied_at', applied_at)
                                 ORDER BY version)
                   FROM public.nofx_schema_migrations), '[]'::json) AS applied"""
HEALTH = (
    BASIC  # noqa: S608 - constants only
    + """,
       (SELECT json_build_object(
                 'pending', count(*), 'failed', count(*) FILTER (WHERE attempts > 0),
                 'oldest_seconds', extract(epoch FROM now() - min(created_at)),
                 'last_error', (array_agg(last_error ORDER BY next_attempt_at DESC)
                                  FILTER (WHERE last_error IS NOT NULL))[1])
          FROM public.storage_outbox) AS uploads"""
)


def _read(conn: Any) -> dict[str, Any]:
    try:
        row = conn.execute(HEALTH).fetchone()
    except psycopg.errors.UndefinedTable:  # before migration 0014: no outbox to report on yet
        row = {**conn.execute(BASIC).fetchone(), "uploads": None}
    assert row is not None  # one row, always
    return dict(row)


def _storage(uploads: dict[str, Any] | None) -> StorageHealth:
    backend, bucket, problem = storage.configuration()
    report = StorageHealth(backend=backend, bucket=bucket, problem=problem)
    if uploads:
        report.pending_uploads = uploads["pending"]
        report.failed_uploads = uploads["failed"]
        oldest = uploads["oldest_seconds"]
        report.oldest_pending_seconds = round(float(oldest), 1) if oldest is not None else None
        report.last_error = uploads["last_error"]
    return report


def check() -> Any:
    started = time.perf_counter()
    try:
        with db.reading() as conn:  # one statement, one round trip
            row = _read(conn)
            version = row["server_version"]
            applied = row["applied"]
    except Exception as exc:  # noqa: BLE001 - health reports failures, it does not raise them
        report = Health(
            status="unavailable",
            database=DatabaseHealth(ok=False, error=type(exc).__name__ + ": " + str(exc).splitlines()[0]),
            storage=_storage(None),
            migrations=[],
            pending_migrations=list(_known_versions()),
        )
        return Reply(503, report, headers={"Retry-After": "5"})
    latency = round((time.perf_counter() - started) * 1000, 2)
    done = {m["version"] for m in applied}
    pending = [version for version in _known_versions() if version not in done]
    kept = _storage(row["uploads"])
    status = "migrations pending" if pending else "storage not configured" if kept.backend == "missing" else "ok"
    return Health(
        status=status,
        database=DatabaseHealth(ok=True, server_version=version, latency_ms=latency),
        storage=kept,
        migrations=[AppliedMigration(**m) for m in applied],
        pending_migrations=pending,
    )
