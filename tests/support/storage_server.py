"""A loopback stand-in for Supabase Storage's REST API: the routes the real
`supabase`/storage3 client calls for what the project does (upload, download,
sign one, sign many, and the signed link itself), with Storage's error
documents ({"statusCode", "error", "message"}) and its checks: the service
key on every call, the bucket must exist, a signed link's token names one
object and expires.

`answers` queues statuses to answer the next calls with (500, 503, 400, ...)
instead of doing them: an outage, or a refusal. `requests` records
(method, path) of every call. `clock_skew` moves this server's clock, so a
link signed for 60 s can be tried after it expired without waiting.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt

from tests.support.loopback import LoopbackServer

SERVICE_KEY = "service-role-key-for-tests"
PREFIX = "/storage/v1"
TOKEN_SECRET = "storage-stand-in-signing-secret-of-32-bytes-or-more"


class StorageState:
    def __init__(self) -> None:
        self.buckets: set[str] = {"nofx"}
        self.objects: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.answers: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self.clock_skew = 0.0
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self.clock_skew


class StorageHandler(BaseHTTPRequestHandler):
    state: ClassVar[StorageState]

    # -- plumbing ----------------------------------------------------------
    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, error: str, message: str) -> None:
        # Storage answers its errors with statusCode as a string
        self._send(status, {"statusCode": str(status), "error": error, "message": message})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        return (
            self.headers.get("Authorization") == f"Bearer {SERVICE_KEY}" and self.headers.get("apikey") == SERVICE_KEY
        )

    def _route(self) -> tuple[list[str], dict[str, list[str]]] | None:
        parts = urlsplit(self.path)
        if not parts.path.startswith(PREFIX + "/"):
            return None
        segments = [unquote(s) for s in parts.path[len(PREFIX) + 1 :].split("/")]
        return segments, parse_qs(parts.query)

    def _queued_failure(self) -> bool:
        with self.state.lock:
            status = self.state.answers.pop(0) if self.state.answers else None
        if status is None:
            return False
        self._error(status, "injected", f"the stand-in was told to answer {status}")
        return True

    def log_message(self, *args: Any) -> None:
        pass

    # -- routes ------------------------------------------------------------
    def do_GET(self) -> None:
        self.state.requests.append(("GET", self.path))
        route = self._route()
        if route is None:
            return self._error(404, "not_found", "no such route")
        segments, query = route
        if self._queued_failure():
            return None
        if segments[:2] == ["object", "sign"]:  # a signed link: the token is the only credential
            return self._signed_download(segments[2], "/".join(segments[3:]), (query.get("token") or [""])[0])
        if not self._authorized():
            return self._error(403, "Unauthorized", "invalid signature")
        if segments[0] == "object":
            return self._download(segments[1], "/".join(segments[2:]))
        return self._error(404, "not_found", "no such route")

    def do_POST(self) -> None:
        self.state.requests.append(("POST", self.path))
        route = self._route()
        body = self._body()
        if route is None:
            return self._error(404, "not_found", "no such route")
        segments, _ = route
        if self._queued_failure():
            return None
        if not self._authorized():
            return self._error(403, "Unauthorized", "invalid signature")
        if segments[:2] == ["object", "sign"] and len(segments) == 3:
            return self._sign_many(segments[2], json.loads(body))
        if segments[:2] == ["object", "sign"]:
            return self._sign_one(segments[2], "/".join(segments[3:]), json.loads(body))
        if segments[0] == "object":
            return self._upload(segments[1], "/".join(segments[2:]), body)
        return self._error(404, "not_found", "no such route")

    # -- what each route does ----------------------------------------------
    def _upload(self, bucket: str, name: str, body: bytes) -> None:
        if bucket not in self.state.buckets:
            return self._error(404, "Bucket not found", "Bucket not found")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        files = [
            part for part in message.iter_parts() if part.get_param("name", header="content-disposition") == "file"
        ]
        if len(files) != 1:
            return self._error(400, "InvalidRequest", "no file in the form")
        data, content_type = files[0].get_payload(decode=True), files[0].get_content_type()
        upsert = self.headers.get("x-upsert") == "true"
        with self.state.lock:
            if (bucket, name) in self.state.objects and not upsert:
                return self._error(400, "Duplicate", "The resource already exists")
            self.state.objects[(bucket, name)] = (data, content_type)
        return self._send(200, {"Key": f"{bucket}/{name}", "Id": str(uuid.uuid4())})

    def _download(self, bucket: str, name: str) -> None:
        found = self.state.objects.get((bucket, name))
        if found is None:
            return self._error(400, "not_found", "Object not found")
        return self._send(200, found[0], found[1])

    def _token(self, bucket: str, name: str, expires_in: int) -> str:
        claims = {"url": f"{bucket}/{name}", "iat": int(self.state.now()), "exp": int(self.state.now()) + expires_in}
        return jwt.encode(claims, TOKEN_SECRET, algorithm="HS256")

    def _link(self, bucket: str, name: str, expires_in: int) -> str:
        return f"/object/sign/{quote(bucket)}/{quote(name)}?token={self._token(bucket, name, expires_in)}"

    def _sign_one(self, bucket: str, name: str, body: dict[str, Any]) -> None:
        if (bucket, name) not in self.state.objects:
            return self._error(400, "not_found", "Object not found")
        return self._send(200, {"signedURL": self._link(bucket, name, int(body["expiresIn"]))})

    def _sign_many(self, bucket: str, body: dict[str, Any]) -> None:
        answers = []
        for name in body["paths"]:
            if (bucket, name) in self.state.objects:
                answers.append(
                    {"error": None, "path": name, "signedURL": self._link(bucket, name, int(body["expiresIn"]))}
                )
            else:
                answers.append(
                    {
                        "error": "Either the object does not exist or you do not have access to it",
                        "path": name,
                        "signedURL": None,
                    }
                )
        return self._send(200, answers)

    def _signed_download(self, bucket: str, name: str, token: str) -> None:
        try:
            claims = jwt.decode(token, TOKEN_SECRET, algorithms=["HS256"], options={"verify_exp": False})
        except jwt.InvalidTokenError:
            return self._error(400, "InvalidJWT", "invalid signature")
        if claims["exp"] < self.state.now():
            return self._error(400, "InvalidJWT", '"exp" claim timestamp check failed')
        if claims["url"] != f"{bucket}/{name}":
            return self._error(400, "InvalidSignature", "The url do not match the signature")
        return self._download(bucket, name)


@contextmanager
def running() -> Iterator[tuple[StorageState, str]]:
    """A fresh stand-in and its project URL (what SUPABASE_URL names)."""
    state = StorageState()
    handler = type("Handler", (StorageHandler,), {"state": state})
    server = LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
