"""The request and reply types every part of the HTTP side shares: the parts of
a WSGI environ a handler reads (Request), what it answers (Reply), what it is
given (Context) and how an operation is declared (Operation).

They sit below the Endpoint, the Idempotency-Key protocol and the signed
webhooks, which all import them and never each other the other way round.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel

from lib.web.problems import TITLES, Problem, field_error

log = logging.getLogger("nofx.endpoint")

Idempotency = Literal["atomic", "separate", "none"]
Connection = Literal["plain", "pipelined", "read"]
# the reason phrases of the error statuses are the problem titles
STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", **TITLES}


def json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value) if isinstance(value, uuid.UUID) else float(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    return json.dumps(value, default=json_default, separators=(",", ":")).encode()


@dataclass
class Reply:
    """What a handler returns when the declared status or plain JSON is not enough."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    # An error reply rolls the request back, unless the refusal itself is
    # state to keep (an approval that expired is recorded, then answered 410).
    commit: bool | None = None

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return dumps(self.body)


class Request:
    """The parts of a WSGI environ a handler reads."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            self.headers["content-type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            self.headers["content-length"] = environ["CONTENT_LENGTH"]
        self._body: bytes | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def read_body(self, cap: int) -> bytes:
        if self._body is None:
            length_text = self.header("content-length") or ""
            stream = self.environ.get("wsgi.input")
            if length_text:
                try:
                    length = int(length_text)
                except ValueError:
                    raise Problem(400, "Content-Length is not a number", type="bad-request") from None
                if length > cap:
                    raise Problem(413, f"request body is {length} bytes; the limit is {cap}", type="body-too-large")
                self._body = stream.read(length) if (stream and length) else b""
            elif stream is not None and self.header("transfer-encoding"):
                data = stream.read(cap + 1)
                if len(data) > cap:
                    raise Problem(413, f"request body exceeds the limit of {cap} bytes", type="body-too-large")
                self._body = data
            else:
                self._body = b""
        return self._body


class ResponseBody(list[bytes]):
    """The WSGI response body. The server calls close() once it has sent the
    body (PEP 3333), which runs the handler's after-send work; a server that
    never calls it still runs that work when it drops the body."""

    def __init__(self, chunks: list[bytes], after_send: list[Callable[[], Any]]) -> None:
        super().__init__(chunks)
        self._after_send = after_send

    def close(self) -> None:
        while self._after_send:
            work = self._after_send.pop(0)
            try:
                work()
            except Exception:
                log.warning("after-send work failed", exc_info=True)

    def __del__(self) -> None:
        self.close()


class Context:
    """Everything a handler gets: the request, who asked, parsed input, one transaction."""

    def __init__(
        self,
        request: Request,
        request_id: str,
        params: dict[str, str],
        stack: ExitStack,
        after_send: list[Callable[[], Any]],
    ) -> None:
        self.request = request
        self.request_id = request_id
        self.params = params
        self.principal: Any = None
        self.body: Any = None
        self.query: Any = None
        self.raw_body: Any = None
        self._stack = stack
        self._conn: Any = None
        self.after_commit: list[Callable[[], Any]] = []  # run once the transaction has committed
        self.connection: Connection = "plain"  # set from the operation
        # Work for after the answer is sent, run by the body's close(): a plan
        # of 100,000 steps takes a few tenths of a second to free and to sweep.
        self.after_send = after_send

    @property
    def transaction_open(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> Any:
        """The request's connection, opened on first use: a transaction
        committed with the response (`plain`, or `pipelined`: its statements
        sent together where they can be), or for a request that only reads,
        statements in autocommit (`read`: no BEGIN or COMMIT round trips)."""
        if self._conn is None:
            from lib.data import db

            opened = {"plain": db.transaction, "pipelined": db.pipelined, "read": db.reading}[self.connection]
            self._conn = self._stack.enter_context(opened())
        return self._conn

    def param(self, name: str) -> str:
        return self.params[name]

    def uuid_param(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(self.params[name])
        except ValueError:
            raise field_error(422, ["path", name], f"{self.params[name]!r} is not a UUID") from None


Handler = Callable[[Context], Any]


@dataclass
class Operation:
    method: str
    handler: Handler
    role: str | None
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    flag: str | None
    idempotency: Idempotency
    connection: Connection
    webhook_secret_env: str | None
    server_secret_env: str | None
    # a signature required, with the secrets found per request: [(who signs, their secret)]
    webhook_secret: Callable[[dict[str, str]], list[tuple[str, str]]] | None
    max_body: int | None
    problems: tuple[int, ...]
    public: bool
    also: tuple[int, ...] = ()  # other success statuses, with the same body
