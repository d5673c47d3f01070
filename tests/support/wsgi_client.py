"""Calls a WSGI app in-process, exactly as a server would (no mocks of our code)."""

from __future__ import annotations

import io
import json as jsonlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def wsgi_environ(
    method: str,
    url: str,
    *,
    json: Any = None,
    data: bytes | str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The environ a WSGI server hands an app for this request."""
    parts = urlsplit(url)
    body = b""
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    if json is not None:
        body = jsonlib.dumps(json).encode()
        hdrs.setdefault("content-type", "application/json")
    elif data is not None:
        body = data.encode() if isinstance(data, str) else data
    if token:
        hdrs["authorization"] = f"Bearer {token}"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.upper(),
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        environ["CONTENT_LENGTH"] = str(len(body))
    if "content-type" in hdrs:
        environ["CONTENT_TYPE"] = hdrs.pop("content-type")
    for name, value in hdrs.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


class Client:
    def __init__(self, app: Any) -> None:
        self.app = app

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        environ = wsgi_environ(method, url, json=json, data=data, token=token, headers=headers)
        captured: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"] = int(status.split(" ")[0])
            captured["headers"] = {k.lower(): v for k, v in response_headers}

        chunks = self.app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return Response(captured["status"], captured["headers"], payload)

    def get(self, url: str, **kw: Any) -> Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Response:
        return self.request("PUT", url, **kw)
