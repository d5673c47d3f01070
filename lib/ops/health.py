"""What GET /api/health reports: the database and the migrations applied to it."""

from __future__ import annotations

import time
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel

from lib.data import db, migrate
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


class Health(BaseModel):
    status: str
    database: DatabaseHealth
    migrations: list[AppliedMigration]
    pending_migrations: list[str]


@cache
def _known_versions() -> tuple[str, ...]:
    """The migration files deployed with this process (they do not change under it)."""
    return tuple(m.version for m in migrate.discover())


HEALTH = """
SELECT current_setting('server_version') AS server_version,
       coalesce((SELECT json_agg(json_build_object('version', version, 'name', name, 'applied_at', applied_at)
                                 ORDER BY version)
                   FROM public.nofx_schema_migrations), '[]'::json) AS applied
"""


def check() -> Any:
    started = time.perf_counter()
    try:
        with db.reading() as conn:  # one statement, one round trip
            row = conn.execute(HEALTH).fetchone()
            assert row is not None  # one row, always
            version = row["server_version"]
            applied = row["applied"]
    except Exception as exc:  # noqa: BLE001 - health reports failures, it does not raise them
        report = Health(
            status="unavailable",
            database=DatabaseHealth(ok=False, error=type(exc).__name__ + ": " + str(exc).splitlines()[0]),
            migrations=[],
            pending_migrations=list(_known_versions()),
        )
        return Reply(503, report, headers={"Retry-After": "5"})
    latency = round((time.perf_counter() - started) * 1000, 2)
    done = {m["version"] for m in applied}
    pending = [version for version in _known_versions() if version not in done]
    return Health(
        status="ok" if not pending else "migrations pending",
        database=DatabaseHealth(ok=True, server_version=version, latency_ms=latency),
        migrations=[AppliedMigration(**m) for m in applied],
        pending_migrations=pending,
    )
