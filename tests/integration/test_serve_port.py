"""`make dev` / `make serve` bind the port PORT names (3000 when unset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from lib import settings
from tests.conftest import _free_port


def test_serve_binds_the_port_named_by_PORT(database_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": database_url, "NOFX_TICK_INTERVAL_SECONDS": "3600"}
    env.pop("NOFX_PUBLIC_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib.cli", "serve"],
        cwd=settings.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, answer = time.time() + 20, None
        while time.time() < deadline and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    answer = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert answer is not None and answer["database"]["ok"] is True
    finally:
        proc.terminate()
        proc.wait(10)
