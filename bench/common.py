"""What every benchmark shares: a database of its own, a server, timing."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from lib import settings
from lib.data import migrate
from lib.web import auth


def admin_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from lib.data import embedded_db

    return embedded_db.server_url("postgres")


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A migrated database for one benchmark, dropped afterwards."""
    admin = admin_url()
    name = f"nofx_bench_{label}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    migrate.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE config SET value = 'true' WHERE key LIKE 'FEATURE\\_%'")
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dev_server(
    database_url: str, threads: int = 16, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """The dev server in its own process, as a user would run it."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "NOFX_DB_POOL_MAX": str(max(8, threads)), **(extra_env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from lib.web import devserver; devserver.serve('127.0.0.1', {port}, threads={threads})",
        ],
        cwd=settings.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                status, _ = request("127.0.0.1", port, "GET", "/api/health")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, Any]:
    own = conn is None
    conn = conn or http.client.HTTPConnection(host, port, timeout=600)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, (json.loads(data) if data else None)


def fan_out(
    clients: int,
    jobs: Sequence[Any],
    connect: Callable[[], Any],
    call: Callable[[Any, Any], Any],
) -> tuple[list[float], float, list[Any]]:
    """Run `call(conn, job)` for every job from `clients` threads, each on a
    connection of its own made by `connect` (kept for all its jobs), all
    starting together. Returns each call's latency, the wall time from the
    start to the last job, and what each call returned."""
    shares = [jobs[i::clients] for i in range(clients)]
    latencies: list[float] = []
    results: list[Any] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client(share: Sequence[Any]) -> None:
        conn = connect()
        try:
            mine, answers = [], []
            barrier.wait()
            for job in share:
                start = time.perf_counter()
                answers.append(call(conn, job))
                mine.append(time.perf_counter() - start)
            with lock:
                latencies.extend(mine)
                results.extend(answers)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started, results


def token(role: str) -> str:
    return auth.mint_token(role, email=f"bench-{role}@nofx.local")


def timed(fn: Callable[[], Any], runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
