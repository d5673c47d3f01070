"""The connector: owns psycopg, hands out connections and transactions.

One small pool per process, opened on first use and kept across warm
invocations. ``prepare_threshold=None`` because Supabase's transaction pooler
(Supavisor, port 6543) hands each transaction to whichever server connection is
free, where a prepared statement from another transaction does not exist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lib import settings

_lock = threading.Lock()
_pool: Any = None
_url: str | None = None


def resolve_url() -> str:
    """DATABASE_URL, or locally the embedded PostgreSQL the project starts itself."""
    url = _url or settings.database_url()
    if url:
        return url
    if settings.on_vercel():
        raise RuntimeError("DATABASE_URL is not set")
    from lib.data import embedded_db

    return embedded_db.ensure_running()


def connect_kwargs() -> dict[str, Any]:
    kwargs: dict[str, Any] = {"prepare_threshold": None, "row_factory": dict_row, "connect_timeout": 10}
    timeout_ms = settings.env("NOFX_STATEMENT_TIMEOUT_MS")
    if timeout_ms:
        # A startup option: no round trip per transaction. (Behind a pooler
        # that drops startup options, set it on the role instead.)
        kwargs["options"] = f"-c statement_timeout={int(timeout_ms)}"
    return kwargs


def use(url: str | None) -> None:
    """Point this process at another database (tests, CLI); closes the old pool."""
    global _url, _pool
    with _lock:
        if _pool is not None:
            _pool.close()
        _pool = None
        _url = url


IDLE_CHECK_SECONDS = 5.0


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    last_used = getattr(conn, "_nofx_last_used", None)
    if last_used is None or time.monotonic() - last_used > IDLE_CHECK_SECONDS:
        from psycopg_pool import ConnectionPool

        ConnectionPool.check_connection(conn)


def pool() -> Any:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                from psycopg_pool import ConnectionPool

                size = int(settings.env("NOFX_DB_POOL_MAX", "8") or 8)
                _pool = ConnectionPool(
                    resolve_url(),
                    min_size=0 if settings.on_vercel() else 1,
                    max_size=size,
                    kwargs=connect_kwargs(),
                    # A pooled connection may have been cut by the pooler or a
                    # restart while the function slept: ping it before handing
                    # it out, unless it was in use a moment ago.
                    check=_check_if_idle,
                    open=True,
                    name="nofx",
                )
    return _pool


@contextmanager
def transaction() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection inside one transaction: commit on success, roll back on error."""
    with pool().connection() as conn:
        yield conn
        conn._nofx_last_used = time.monotonic()


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
    """A dedicated connection outside the pool (CLI, migrations, long work)."""
    return psycopg.connect(url or resolve_url(), **{**connect_kwargs(), **kwargs})
