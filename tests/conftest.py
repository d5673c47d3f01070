"""Shared fixtures: a fresh, migrated database per test session on the real
PostgreSQL (DATABASE_URL's server if set, else the embedded one), tokens per
role, an in-process client over the dev server's router, and a real server."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from lib.data import db, migrate
from lib.ops import flags
from lib.web import auth
from tests.support.wsgi_client import Client

ROLES = ("viewer", "planner", "approver", "admin")


def _server_admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from lib.data import embedded_db

    return embedded_db.server_url("postgres")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(admin_url, name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database() -> Iterator[str]:
    """A migrated database nobody connects to, cloned for each test database."""
    admin_url = _server_admin_url()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"nofx_tpl_{worker}_{uuid.uuid4().hex[:8]}"
    url = _create_database(admin_url, name)
    migrate.migrate(url)
    for flag in flags.FLAGS:  # they ship dark; the suite runs with both switched on
        set_flag(url, flag, True)
    yield name
    _drop_database(admin_url, name)


@pytest.fixture(scope="session")
def database_url(template_database: str) -> Iterator[str]:
    """The session's database: a fresh clone of the migrated template."""
    admin_url = _server_admin_url()
    name = template_database.replace("nofx_tpl_", "nofx_test_")
    url = _create_database(admin_url, name, template=template_database)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    db.use(url)
    yield url
    db.use(None)
    if previous is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = previous
    _drop_database(admin_url, name)


@pytest.fixture
def fresh_database(template_database: str, database_url: str) -> Iterator[str]:
    """A database of this test's own (for 'every open item' style tests);
    the process points at it for the test, then back at the session's."""
    admin_url = _server_admin_url()
    name = f"nofx_fresh_{uuid.uuid4().hex[:10]}"
    url = _create_database(admin_url, name, template=template_database)
    os.environ["DATABASE_URL"] = url
    db.use(url)
    flags.forget()
    try:
        yield url
    finally:
        os.environ["DATABASE_URL"] = database_url
        db.use(database_url)
        flags.forget()
        _drop_database(admin_url, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with db.connect(database_url, autocommit=True) as c:
        yield c


@pytest.fixture(scope="session")
def tokens(database_url: str) -> dict[str, str]:
    return {role: auth.mint_token(role, subject=str(uuid.uuid5(uuid.NAMESPACE_URL, role))) for role in ROLES}


@pytest.fixture(scope="session")
def app(database_url: str):
    from lib.web.devserver import build_app

    return build_app()


@pytest.fixture(scope="session")
def client(app) -> Client:
    return Client(app)


def set_flag(url: str, name: str, enabled: bool) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("UPDATE public.config SET value = %s::jsonb WHERE key = %s", ("true" if enabled else "false", name))
    flags.forget()


@pytest.fixture
def features(database_url: str):
    """Switch flags for one test; restores them after."""
    changed: list[tuple[str, str]] = []

    def switch(name: str, enabled: bool) -> None:
        changed.append((os.environ["DATABASE_URL"], name))
        set_flag(os.environ["DATABASE_URL"], name, enabled)

    yield switch
    for url, name in changed:
        set_flag(url, name, True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The dev server's app on a real waitress server in this process."""
    from waitress.server import create_server

    port = _free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=16, ident="nofx-test")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    yield base
    server.close()


@pytest.fixture(scope="session")
def pooled_server(database_url: str) -> Iterator[tuple[str, Any]]:
    """The dev server as `make dev` runs it: work after each answer on a pool
    of worker threads apart from the request threads (lib/web/background.py).
    Yields its base URL and the pool."""
    from waitress.server import create_server

    from lib.web.background import Background
    from lib.web.devserver import build_app

    workers = Background(8)
    server = create_server(build_app(background=workers), host="127.0.0.1", port=_free_port(), threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    yield f"http://127.0.0.1:{server.effective_port}", workers
    server.close()
    workers.close()


@pytest.fixture
def tool_server() -> Iterator[object]:
    """A loopback HTTP server standing in for webhook tools (it records the calls)."""
    from tests.support.tool_server import ToolServer

    server = ToolServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The model providers' SDKs pointed at a loopback server that speaks their APIs."""
    from tests.support.llm_server import LLMServer

    server = LLMServer()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-loopback")
    monkeypatch.setenv("NOFX_LLM_TIMEOUT_SECONDS", "10")
    yield server
    server.close()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """SLACK_WEBHOOK_URL pointed at a loopback receiver (tests.support.slack_receiver)."""
    from tests.support.slack_receiver import running

    with running() as (receiver, url):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
        yield receiver


@pytest.fixture
def storage_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Count the storage backend's reads and signings (the real ones still run)."""
    from lib.data import storage

    backend = storage.backend()
    calls: dict[str, Any] = {"get": Counter(), "signed_urls": [], "signed_url": 0}
    real_get, real_signed_urls, real_signed_url = backend.get, backend.signed_urls, backend.signed_url

    def get(key: str) -> bytes:
        calls["get"][key] += 1
        return real_get(key)

    def signed_urls(keys: Any, expires_in: int = storage.DEFAULT_TTL) -> dict[str, str]:
        calls["signed_urls"].append(list(keys))
        return real_signed_urls(keys, expires_in)

    def signed_url(key: str, expires_in: int = storage.DEFAULT_TTL) -> str:
        calls["signed_url"] += 1
        return real_signed_url(key, expires_in)

    monkeypatch.setattr(backend, "get", get)
    monkeypatch.setattr(backend, "signed_urls", signed_urls)
    monkeypatch.setattr(backend, "signed_url", signed_url)
    return calls
