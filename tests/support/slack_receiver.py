"""A loopback stand-in for Slack's incoming webhook: answers each POST with
the next status in `answers` (200 when none are left), keeps the messages it
accepted in `received`, and runs the `during` hooks while a POST is in flight
(to look at the database while Slack is slow)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from tests.support.loopback import LoopbackServer


class SlackReceiver(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    received: ClassVar[list[dict]] = []
    during: ClassVar[list[Callable[[], None]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for hook in self.during:
            hook()
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.received.append(body)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"unavailable")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def running() -> Iterator[tuple[type[SlackReceiver], str]]:
    """The receiver (its state reset) and its webhook URL, while it runs."""
    SlackReceiver.answers, SlackReceiver.received, SlackReceiver.during = [], [], []
    server = LoopbackServer(("127.0.0.1", 0), SlackReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield SlackReceiver, f"http://127.0.0.1:{server.server_port}/services/T000/B000/XXX"
    finally:
        server.shutdown()
        server.server_close()
