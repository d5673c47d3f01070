"""Loopback stand-ins for where people are told: Slack's Web API
(`chat.postMessage`, which answers the message's `ts`, so replies can go into
its thread) and Zig Todo's inbound webhook (which checks the Standard
Webhooks signature, as Zig Todo would, and keeps each delivery's
`webhook-id`).

`answers` queues statuses for the next calls (500, 503, or "not_ok" for
Slack's HTTP 200 with `ok: false`); otherwise each call succeeds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.loopback import LoopbackServer

SLACK_TOKEN = "xoxb-test-token"


class Receiver:
    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.received: list[dict[str, Any]] = []  # what was accepted, in order
        self.refused: list[str] = []  # why calls were refused (bad token, bad signature)
        self.lock = threading.Lock()

    def next_answer(self) -> Any:
        with self.lock:
            return self.answers.pop(0) if self.answers else None


class _Handler(BaseHTTPRequestHandler):
    receiver: ClassVar[Receiver]
    secret: ClassVar[str]

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class SlackApi(_Handler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/api/chat.postMessage" or self.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
            self.receiver.refused.append(f"{self.path} {self.headers.get('Authorization')}")
            return self._send(200, {"ok": False, "error": "invalid_auth"})
        answer = self.receiver.next_answer()
        if answer == "not_ok":
            return self._send(200, {"ok": False, "error": "ratelimited"})
        if isinstance(answer, str):  # a named refusal, e.g. not_in_channel
            return self._send(200, {"ok": False, "error": answer})
        if answer is not None:
            return self._send(answer, {"ok": False, "error": "internal_error"})
        with self.receiver.lock:
            ts = f"1790000000.{len(self.receiver.received) + 1:06d}"
            self.receiver.received.append({**body, "ts": ts})
        return self._send(
            200, {"ok": True, "channel": body.get("channel"), "ts": ts, "message": {"text": body.get("text")}}
        )


class SlackRelay(_Handler):
    """An incoming-webhook URL that answers as the Web API does, with the
    posted message's ts (a relay or a workflow in front of Slack)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.receiver.lock:
            ts = f"1790000001.{len(self.receiver.received) + 1:06d}"
            self.receiver.received.append({**body, "ts": ts})
        return self._send(200, {"ok": True, "ts": ts})


class ZigTodo(_Handler):
    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            payload = Webhook(self.secret).verify(raw, dict(self.headers))
        except WebhookVerificationError as exc:
            self.receiver.refused.append(str(exc))
            return self._send(400, {"error": "bad signature"})
        answer = self.receiver.next_answer()
        if answer is not None:
            return self._send(answer, {"error": "unavailable"})
        with self.receiver.lock:
            self.receiver.received.append({"webhook_id": self.headers["webhook-id"], **payload})
        return self._send(202, {"accepted": True})


@contextmanager
def running(handler: type[_Handler], secret: str = "") -> Iterator[tuple[Receiver, str]]:
    receiver = Receiver()
    bound = type(handler.__name__, (handler,), {"receiver": receiver, "secret": secret})
    server = LoopbackServer(("127.0.0.1", 0), bound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
