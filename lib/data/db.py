"""The connector: owns psycopg, hands out connections and transactions.

One small pool per process, opened on first use and kept across warm
invocations. ``prepare_threshold=None`` because Supabase's transaction pooler
(Supavisor, port 6543) hands each transaction to whichever server connection is
free, where a prepared statement from another transaction does not exist.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lib import settings

log = logging.getLogger("nofx.db")

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


def lock_timeout_ms() -> int:
    """How long a request waits for a row another transaction holds (a plan,
    an approval) before it answers 503 with Retry-After: well inside an
    invocation, so one busy plan never holds the pool."""
    return int(settings.env("NOFX_LOCK_TIMEOUT_MS", "3000") or 3000)


def statement_timeout_ms() -> int:
    """No statement outlives the function's maxDuration (60 s)."""
    return int(settings.env("NOFX_STATEMENT_TIMEOUT_MS", "25000") or 25000)


def bounded() -> str:
    """A condition for the WHERE of a transaction's first locking statement:
    evaluated (as an InitPlan) before the row is locked, it sets lock_timeout
    and statement_timeout for the rest of the transaction, with no round trip
    of its own (a SET LOCAL would be one, and startup options do not survive
    every pooler). Both values are integers from settings."""
    return (
        f"(SELECT set_config('lock_timeout', '{lock_timeout_ms()}', true) "
        f"|| set_config('statement_timeout', '{statement_timeout_ms()}', true)) IS NOT NULL"
    )


def _behind_transaction_pooler(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.port == 6543 or "pgbouncer=true" in parts.query


def connect_kwargs(url: str | None = None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"prepare_threshold": None, "row_factory": dict_row, "connect_timeout": 10}
    if url is None or not _behind_transaction_pooler(url):
        # Startup options: no round trip per transaction. Supabase's
        # transaction pooler (6543) takes none; there the locking statements
        # bound themselves (bounded()), and the role's own statement_timeout
        # applies (README: deploying).
        kwargs["options"] = f"-c statement_timeout={statement_timeout_ms()} -c lock_timeout={lock_timeout_ms()}"
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


def usable(conn: psycopg.Connection[Any]) -> bool:
    """Whether a pooled connection can be handed out. An idle connection has
    nothing to read: if its socket is readable, the server said something
    while it sat in the pool (a FATAL "terminating connection", or EOF), so
    it is dead; found without a round trip. One idle for a while is pinged,
    since a cut through a pooler or a network may say nothing."""
    import select

    if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        return False
    last_used = getattr(conn, "_nofx_last_used", None)
    if last_used is None or time.monotonic() - last_used > IDLE_CHECK_SECONDS:
        from psycopg_pool import ConnectionPool

        try:
            ConnectionPool.check_connection(conn)
        except psycopg.Error:
            return False
    return True


def pool() -> Any:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                from psycopg_pool import ConnectionPool

                size = int(settings.env("NOFX_DB_POOL_MAX", "8") or 8)
                url = resolve_url()
                _pool = ConnectionPool(
                    url,
                    min_size=0 if settings.on_vercel() else 1,
                    max_size=size,
                    kwargs=connect_kwargs(url),
                    open=True,
                    name="nofx",
                )
    return _pool


@contextmanager
def _checked_out() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A usable pooled connection. A pooled connection may have been cut (a
    restart, the pooler, a terminated backend) while it sat idle: a dead one
    is closed and the next taken at once, up to the whole pool, then a new
    one is opened. (The pool's own check backs off a growing delay between
    attempts, which made the first request after a cut wait seconds.)"""
    connections = pool()
    for _ in range(connections.max_size + 1):
        conn = connections.getconn()
        if usable(conn):
            break
        conn.close()
        connections.putconn(conn)  # a closed connection is discarded and replaced
    else:
        raise psycopg.OperationalError("no usable database connection")
    try:
        yield conn
    finally:
        conn._nofx_last_used = time.monotonic()
        connections.putconn(conn)


def _abandon(conn: psycopg.Connection[Any]) -> None:
    """Roll back whatever the connection has open; close it if even that fails."""
    if conn.closed:
        return
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()


# work to do once the connection's transaction has committed (uploads of
# what it staged): a list on the connection while one of the context managers
# below holds it, run after its commit, dropped on rollback
AFTER_COMMIT = "_nofx_after_commit"


def after_commit(conn: Any, work: Callable[[Any], Any]) -> None:
    """Run `work(conn)` once what `conn` has written so far is committed.
    Outside the context managers below: at once if it is (an autocommit
    connection between statements), else never (the tick's retries cover it)."""
    hooks = getattr(conn, AFTER_COMMIT, None)
    if hooks is not None:
        hooks.append(work)
    elif conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        _run_after_commit(conn, [work])


# Inside a request (the Endpoint sets it), work after a commit is handed to
# this instead of run at once: it then runs after the reply, on a connection
# of its own, so nobody waits for it and it costs the request no round trip.
_after_reply: ContextVar[Callable[[Callable[[], Any]], Any] | None] = ContextVar("nofx_after_reply", default=None)


@contextmanager
def work_after_reply(schedule: Callable[[Callable[[], Any]], Any]) -> Iterator[None]:
    token = _after_reply.set(schedule)
    try:
        yield
    finally:
        _after_reply.reset(token)


def _on_own_connection(work: Callable[[Any], Any]) -> None:
    with reading() as conn:
        work(conn)


def _run_after_commit(conn: Any, hooks: list[Callable[[Any], Any]]) -> None:
    schedule = _after_reply.get()
    if schedule is not None:
        for hook in hooks:
            schedule(functools.partial(_on_own_connection, hook))
        return
    for work in hooks:
        try:
            work(conn)
        except Exception:  # the commit stands; what follows it retries on its own
            log.exception("work after commit failed")


@contextmanager
def _hooks(conn: Any) -> Iterator[list[Callable[[Any], Any]]]:
    hooks: list[Callable[[Any], Any]] = []
    setattr(conn, AFTER_COMMIT, hooks)
    try:
        yield hooks
    finally:
        setattr(conn, AFTER_COMMIT, None)


@contextmanager
def transaction() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection inside one transaction: commit on success, roll back on error."""
    with _checked_out() as conn, _hooks(conn) as hooks:
        try:
            yield conn
        except BaseException:
            _abandon(conn)
            raise
        else:
            conn.commit()
        setattr(conn, AFTER_COMMIT, None)
        _run_after_commit(conn, hooks)


@contextmanager
def reading() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection for a request that only reads: autocommit, so each
    statement is its own transaction and costs one round trip (no BEGIN, no
    COMMIT). Statements queued in a pipeline (conn.pipeline()) share one."""
    with _checked_out() as conn, _hooks(conn) as hooks:
        conn.autocommit = True
        try:
            yield conn
            setattr(conn, AFTER_COMMIT, None)
            _run_after_commit(conn, hooks)
        finally:
            if not conn.closed:
                conn.autocommit = False


def in_pipeline(conn: Any) -> bool:
    """Whether statements on `conn` are queued (pipeline mode): reading a
    result there costs a round trip, so writers that can go without one do."""
    return bool(conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF)


@contextmanager
def pipelined() -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """One transaction whose statements travel together: BEGIN goes with the
    first statement, COMMIT with the last writes, and a statement costs a
    round trip only when its result is needed (fetchone() sends everything
    queued so far). An autocommit connection with an explicit BEGIN in
    pipeline mode: psycopg's own BEGIN, outside a pipeline, is a round trip
    of its own. Errors surface at the next fetch, or at the end. COPY and
    server-side cursors do not work in here (pipeline mode)."""
    with _checked_out() as conn, _hooks(conn) as hooks:
        conn.autocommit = True
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                yield conn
                conn.execute("COMMIT")
            setattr(conn, AFTER_COMMIT, None)
            _run_after_commit(conn, hooks)
        except BaseException:
            if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                try:
                    conn.execute("ROLLBACK")
                except psycopg.Error:
                    conn.close()
            raise
        finally:
            if not conn.closed:
                conn.autocommit = False


def connect(url: str | None = None, **kwargs: Any) -> psycopg.Connection[dict[str, Any]]:
    """A dedicated connection outside the pool (CLI, migrations, long work)."""
    target = url or resolve_url()
    return psycopg.connect(target, **{**connect_kwargs(target), **kwargs})
