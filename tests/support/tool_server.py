"""A webhook tool on loopback that behaves like a careful real one: it honours
Idempotency-Key (a repeated key replays the first answer and does not act
again), and it can be slowed down, made to fail, or made to hang."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass
class ToolServer:
    delay: float = 0.0
    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    hang: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    effects: dict[str, int] = field(default_factory=dict)  # idempotency key -> times it really acted
    answers: dict[str, Any] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Any = None
    # calls hold here until the test sets it (a tool that is still working)
    gate: threading.Event | None = None
    # items this tool takes on and reports later (it answers 202 with a run id)
    long_running: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/tool"

    def start(self) -> ToolServer:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                with state.lock:
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                    state.calls.append({"key": key, "body": body, "at": time.monotonic()})
                    status = state.statuses.pop(0) if state.statuses else 200
                try:
                    if state.gate is not None:
                        state.gate.wait(30)
                    if state.hang:
                        time.sleep(state.hang)
                    if state.delay:
                        time.sleep(state.delay)
                    if status == 200 and body.get("item_key") in state.long_running:
                        status = 202
                        with state.lock:
                            state.effects[key] = state.effects.get(key, 0) + 1
                        answer = {"run_id": f"run-{key[:12]}", "status_url": "https://ci.example/runs/1"}
                    with state.lock:
                        if status == 202:
                            pass
                        elif status == 200:
                            if key not in state.answers:  # act once per key
                                state.effects[key] = state.effects.get(key, 0) + 1
                                state.answers[key] = {"done": body["item_key"], "key": key}
                            answer = state.answers[key]
                        else:
                            answer = {"error": "unavailable"}
                    payload = json.dumps(answer).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    with state.lock:
                        state.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
