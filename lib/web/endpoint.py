"""One helper that turns handler functions into the WSGI `app` of an api/ file.

    app = Endpoint("/api/gates/{planId}")

    @app.get(role="viewer", response=GateReport)
    def read(ctx: Context) -> GateReport: ...

The Endpoint does, in this order: method dispatch (405 with Allow),
authentication and role check (401/403), the feature flag (403
feature-disabled), query and body parsing into pydantic models (400/413/415/
422 naming the field), the Idempotency-Key protocol for POSTs, one database
transaction per request, and RFC 9457 problem documents for every error; a 500
never leaks a stack trace and is logged with the request id.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from lib import settings
from lib.web.problems import CONTENT_TYPE as PROBLEM_JSON
from lib.web.problems import TITLES, Problem, field_error, invalid_input

log = logging.getLogger("nofx.endpoint")

Idempotency = Literal["atomic", "separate", "none"]
PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# the reason phrases of the error statuses are the problem titles
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", **TITLES}


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


class _Body(list[bytes]):
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
        # Work for after the answer is sent, run by the body's close(): a plan
        # of 100,000 steps takes a few tenths of a second to free and to sweep.
        self.after_send = after_send

    @property
    def transaction_open(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> Any:
        """The request's transaction, opened on first use, committed with the response."""
        if self._conn is None:
            from lib.data import db

            self._conn = self._stack.enter_context(db.transaction())
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
    webhook_secret_env: str | None
    max_body: int | None
    problems: tuple[int, ...]
    public: bool
    also: tuple[int, ...] = ()  # other success statuses, with the same body


def _validation_problem(exc: ValidationError, where: str) -> Problem:
    errors: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        loc = [where, *err["loc"]]
        # pydantic prefixes a validator's own words with "Value error, "
        errors.append({"loc": loc, "msg": str(err["msg"]).removeprefix("Value error, ")})
    return invalid_input(errors)


def _parse_query(op: Operation, request: Request, params: dict[str, str]) -> Any:
    """Query parameters into the operation's model. An undeclared parameter is
    a 422 (a typo must not be silently ignored); the [param] segments Vercel
    passes as query parameters are declared by the route."""
    fields = op.query.model_fields if op.query is not None else {}
    declared = {info.alias or name for name, info in fields.items()} | set(params)
    for key, values in request.query.items():
        if key not in declared:
            raise field_error(422, ["query", key], f"unknown parameter; known: {', '.join(sorted(declared))}")
        if any("\x00" in v for v in values):
            raise field_error(422, ["query", key], "text may not contain NUL characters")
    if op.query is None:
        return None
    data: dict[str, Any] = {}
    for name, info in op.query.model_fields.items():
        key = info.alias or name
        given = request.query.get(key)
        if not given:
            continue
        origin = getattr(info.annotation, "__origin__", None)
        data[key] = given if origin is list else given[-1]
    try:
        return op.query.model_validate(data)
    except ValidationError as exc:
        raise _validation_problem(exc, "query") from None


def _nul_location(value: Any, loc: list[Any]) -> list[Any] | None:
    """Where a NUL character hides in parsed JSON: PostgreSQL text cannot hold one."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*loc, key]
            found = _nul_location(item, [*loc, key])
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_location(item, [*loc, index])
            if found is not None:
                return found
    return None


def _parse_body(op: Operation, request: Request) -> tuple[Any, Any]:
    cap = op.max_body or settings.max_body_bytes()
    raw = request.read_body(cap)
    if op.body is None:
        return None, None
    if raw.strip():
        ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise Problem(
                415, f"send JSON (Content-Type: application/json), not {ctype}", type="unsupported-media-type"
            )
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Problem(
                400,
                f"body is not valid JSON: {exc}",
                type="malformed-json",
                errors=[{"loc": ["body"], "msg": str(exc)}],
            ) from None
    else:
        data = {}
    if b"\\u0000" in raw:
        where = _nul_location(data, ["body"])
        if where is not None:
            msg = "text may not contain NUL (\\u0000) characters"
            raise field_error(422, where, msg)
    if not isinstance(data, dict):
        raise Problem(
            422,
            "body: expected a JSON object",
            type="invalid-input",
            errors=[{"loc": ["body"], "msg": "expected a JSON object"}],
        )
    try:
        return op.body.model_validate(data), data
    except ValidationError as exc:
        raise _validation_problem(exc, "body") from None


class Endpoint:
    """A WSGI application for one route, with one handler per HTTP method."""

    def __init__(self, path: str, *, tags: Iterable[str] = ()) -> None:
        self.path = path
        self.param_names = PARAM.findall(path)
        self.tags = list(tags)
        self.operations: dict[str, Operation] = {}
        pattern = (
            "^"
            + PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))
            + "/?$"
        )
        self._pattern = re.compile(pattern)

    # -- registration ------------------------------------------------------
    def route(
        self,
        method: str,
        *,
        role: str | None = None,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        flag: str | None = None,
        idempotency: Idempotency | None = None,
        webhook_secret_env: str | None = None,
        max_body: int | None = None,
        problems: Iterable[int] = (),
        public: bool = False,
        also: Iterable[int] = (),
    ) -> Callable[[Handler], Handler]:
        method = method.upper()
        if role is None and not public:
            raise ValueError(f"{method} {self.path}: give a role, or public=True")

        def register(handler: Handler) -> Handler:
            self.operations[method] = Operation(
                method=method,
                handler=handler,
                role=role,
                body=body,
                query=query,
                response=response,
                status=status,
                summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
                flag=flag,
                idempotency=idempotency or ("atomic" if method == "POST" else "none"),
                webhook_secret_env=webhook_secret_env,
                max_body=max_body,
                problems=tuple(problems),
                public=public,
                also=tuple(also),
            )
            return handler

        return register

    def get(self, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", **kw)

    def post(self, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", **kw)

    def put(self, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", **kw)

    def delete(self, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", **kw)

    # -- serving -----------------------------------------------------------
    def path_params(self, request: Request) -> dict[str, str]:
        """Vercel passes a [param] file segment as a query parameter; the dev
        server does the same. Fall back to matching the path itself."""
        params = {name: request.arg(name) for name in self.param_names}
        if all(params.values()):
            return {k: v for k, v in params.items() if v is not None}
        match = self._pattern.match(request.path)
        if match:
            return match.groupdict()
        missing = [k for k, v in params.items() if not v]
        raise Problem(404, f"missing path parameter {', '.join(missing)}", type="not-found")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        request_id = (request.header("x-request-id") or request.header("x-vercel-id") or uuid.uuid4().hex)[:128]
        after_send: list[Callable[[], Any]] = []
        reply = self._handle(request, request_id, after_send)
        body = reply.encode()
        headers = [
            ("Content-Type", reply.content_type),
            ("Content-Length", str(len(body))),
            ("X-Request-Id", request_id),
            ("Cache-Control", "no-store"),
            *reply.headers.items(),
        ]
        start_response(f"{reply.status} {_STATUS_TEXT.get(reply.status, 'Status')}", headers)
        log.debug("%s %s %s %.1fms", request.method, request.path, reply.status, (time.perf_counter() - started) * 1000)
        return _Body([body] if request.method != "HEAD" else [b""], after_send)

    def _handle(self, request: Request, request_id: str, after_send: list[Callable[[], Any]]) -> Reply:
        method = "GET" if request.method == "HEAD" else request.method
        op = self.operations.get(method)
        allow = ", ".join(sorted(self.operations))
        if method == "OPTIONS":
            return Reply(204, headers={"Allow": allow})
        if op is None:
            return self._problem(
                Problem(
                    405,
                    f"{request.method} is not allowed here; use {allow}",
                    type="method-not-allowed",
                    headers={"Allow": allow},
                ),
            )
        stack = ExitStack()
        try:
            params = self.path_params(request)
            ctx = Context(request, request_id, params, stack, after_send)
            reply = self._run(op, ctx)
        except Problem as problem:
            self._rollback(stack)
            return self._problem(problem)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            self._rollback(stack)
            return self._unexpected(exc, request, request_id)
        if reply.status >= 400 and not reply.commit:
            # A handler's error reply must not commit half of its work.
            self._rollback(stack)
            return reply
        try:
            stack.close()  # commits the request's transaction
        except Exception as exc:  # noqa: BLE001 - a failed commit is the request's failure
            return self._unexpected(exc, request, request_id)
        for callback in ctx.after_commit:
            try:
                callback()
            except Exception:
                log.warning("request %s: after-commit work failed", request_id, exc_info=True)
        return reply

    @staticmethod
    def _rollback(stack: ExitStack) -> None:
        try:
            stack.__exit__(Problem, Problem(500, "rollback"), None)
        except Exception:
            log.warning("rollback failed", exc_info=True)
        stack.pop_all()

    def _run(self, op: Operation, ctx: Context) -> Reply:
        request = ctx.request
        ctx.principal = self._authenticate(op, request)
        if op.flag:
            from lib.ops import flags

            flags.require(op.flag)
        ctx.query = _parse_query(op, request, ctx.params)
        ctx.body, ctx.raw_body = _parse_body(op, request)

        key = request.header("idempotency-key")
        if key is None and ctx.principal is not None and ctx.principal.source == "webhook":
            key = ctx.principal.claims.get("webhook_id")
        if key is not None and op.method == "POST" and op.idempotency != "none":
            from lib.web import idempotency

            return idempotency.run(op, ctx, key, lambda: self._invoke(op, ctx))
        return self._invoke(op, ctx)

    def _invoke(self, op: Operation, ctx: Context) -> Reply:
        result = op.handler(ctx)
        if isinstance(result, Reply):
            return result
        return Reply(op.status, result)

    def _authenticate(self, op: Operation, request: Request) -> Any:
        if op.public and op.role is None:
            return None
        if op.webhook_secret_env and request.header("webhook-signature"):
            from lib.web import webhooks

            return webhooks.verify_request(request, op.webhook_secret_env, op.max_body or settings.max_body_bytes())
        from lib.web import auth

        principal = auth.authenticate(request.header("authorization"))
        if op.role:
            auth.require_role(principal, op.role)
        return principal

    @staticmethod
    def _problem(problem: Problem) -> Reply:
        return Reply(problem.status, problem.document(), dict(problem.headers), PROBLEM_JSON)

    def _unexpected(self, exc: Exception, request: Request, request_id: str) -> Reply:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return self._problem(
                Problem(503, "the database took too long; try again", type="timeout", headers={"Retry-After": "1"})
            )
        if isinstance(exc, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)):
            log.warning("request %s: %s", request_id, exc)
            return self._problem(
                Problem(503, "a concurrent request got in the way; retry", type="retry", headers={"Retry-After": "1"})
            )
        if isinstance(exc, (psycopg.OperationalError,)) or type(exc).__name__ == "PoolTimeout":
            log.error("request %s: database unavailable: %s", request_id, exc)
            return self._problem(
                Problem(503, "the database is unavailable; try again", type="unavailable", headers={"Retry-After": "2"})
            )
        log.error(
            "request %s: %s %s failed\n%s",
            request_id,
            request.method,
            request.path,
            "".join(traceback.format_exception(exc)),
        )
        return self._problem(
            Problem(
                500,
                f"unexpected error; quote request id {request_id} when reporting it",
                type="internal",
                extra={"request_id": request_id},
            )
        )
