"""A loopback server that speaks the wire formats the official SDKs expect:
OpenAI Chat Completions (POST /v1/chat/completions) and Anthropic Messages
(POST /v1/messages), usage blocks and error bodies included.

Each test scripts the answers, per provider ("openai", "anthropic") or per
model ("openai:gpt-4.1-mini"): the answer text, status code, headers (e.g.
Retry-After), a delay before answering, and the token counts to report. Every
request is recorded with its server-side arrival and answer times
(time.monotonic), so tests can check retries and concurrency structurally.

    server = LLMServer()
    server.script("openai", Reply(status=429, headers={"retry-after": "0.3"}), Reply(text='{"stages": ...}'))
    ... OPENAI_BASE_URL=server.openai_url, ANTHROPIC_BASE_URL=server.anthropic_url ...
    server.close()
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer

PATHS = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


@dataclass
class Reply:
    status: int = 200
    text: str | None = '{"stages": [], "rationale": "empty"}'  # the model's answer (status 200)
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    input_tokens: int | None = None  # None: estimated from the request (4 characters a token)
    output_tokens: int | None = None  # None: estimated from the answer
    cache_read_tokens: int = 0
    stop: str | None = None  # finish_reason / stop_reason; None: the normal one
    raw_body: str | None = None  # sent as is instead of the generated body
    drip_s: float = 0.0  # send the body a byte at a time, this far apart (each read is quick, the whole is not)


@dataclass
class Seen:
    provider: str
    path: str
    model: str | None
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]
    arrived: float  # time.monotonic() when the request was read
    answered: float = 0.0  # time.monotonic() just before the response was written
    status: int = 0


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _prompt_text(body: dict[str, Any]) -> str:
    parts = [str(body.get("system", ""))]
    for message in body.get("messages", []):
        content = message.get("content")
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


def openai_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply.text or ""
    prompt = reply.input_tokens if reply.input_tokens is not None else _tokens(_prompt_text(body))
    completion = reply.output_tokens if reply.output_tokens is not None else _tokens(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{body['model']}-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": reply.stop or "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_loopback",
    }


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply.text or ""
    prompt = reply.input_tokens if reply.input_tokens is not None else _tokens(_prompt_text(body))
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": reply.stop or "end_turn",
        "stop_sequence": None,
        "usage": {
            # Anthropic reports cache reads apart from input_tokens
            "input_tokens": prompt - reply.cache_read_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cache_read_tokens,
            "output_tokens": reply.output_tokens if reply.output_tokens is not None else _tokens(text),
            "service_tier": "standard",
        },
    }


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}


def error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "overloaded_error" if status == 529 else "api_error")
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def request_problem(provider: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, str] | None:
    """What the real APIs would refuse before answering."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if not (lowered.get("authorization", "").startswith("Bearer ") or lowered.get("x-api-key")):
        return 401, "missing API key"
    required = ("model", "messages") if provider == "openai" else ("model", "messages", "max_tokens")
    missing = [name for name in required if name not in body]
    if missing:
        return 400, f"{missing[0]}: Field required"
    if provider == "anthropic" and "anthropic-version" not in lowered:
        return 400, "anthropic-version: header is required"
    return None


class LLMServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = LoopbackServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._httpd.server_port}"

    @property
    def openai_url(self) -> str:
        return self.base + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.base

    def script(self, key: str, *replies: Reply) -> None:
        """Answers for "openai", "anthropic" or one "provider:model", in order;
        the last one keeps answering."""
        with self._lock:
            self._scripts[key] = list(replies)

    def seen(self, provider: str | None = None, model: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (provider is None or r.provider == provider) and (model is None or r.model == model)
            ]

    def close(self) -> None:
        self._closing.set()  # ends any drip in progress
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self, provider: str, model: str | None) -> Reply:
        with self._lock:
            queue = self._scripts.get(f"{provider}:{model}") or self._scripts.get(provider)
            if not queue:
                return Reply(status=500, text=None, raw_body=None, headers={"x-loopback": "unscripted"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        provider = PATHS.get(path)
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        arrived = time.monotonic()
        if provider is None:
            self._write(h, 404, {"error": {"message": f"no route {path}"}}, {})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._write(h, 400, error_body(provider, 400, "body is not JSON"), {})
            return
        headers = {k.lower(): v for k, v in h.headers.items()}
        seen = Seen(provider, path, body.get("model"), headers, body, arrived)
        with self._lock:
            self.requests.append(seen)
        problem = request_problem(provider, seen.headers, body)
        reply = Reply(status=problem[0], text=problem[1]) if problem else self._next(provider, seen.model)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.raw_body is not None:
            payload: Any = reply.raw_body
        elif reply.status != 200:
            payload = error_body(provider, reply.status, reply.text or f"loopback status {reply.status}")
        elif provider == "openai":
            payload = openai_completion(body, reply)
        else:
            payload = anthropic_message(body, reply)
        seen.status = reply.status
        seen.answered = time.monotonic()
        self._write(h, reply.status, payload, reply.headers, reply.drip_s)

    def _write(
        self, h: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str], drip_s: float = 0.0
    ) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
            for name, value in headers.items():
                h.send_header(name, value)
            h.end_headers()
            if not drip_s:
                h.wfile.write(data)
                return
            for index in range(len(data)):
                if self._closing.wait(drip_s):
                    h.close_connection = True  # cut it short: the client sees a broken response
                    return
                h.wfile.write(data[index : index + 1])
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer to
