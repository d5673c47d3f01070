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

import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from pydantic import BaseModel

from lib import settings
from lib.data import db
from lib.web import background
from lib.web.http import STATUS_TEXT, Connection, Context, Handler, Idempotency, Operation, Reply, Request, ResponseBody
from lib.web.parsing import parse_body, parse_query
from lib.web.problems import CONTENT_TYPE as PROBLEM_JSON
from lib.web.problems import Problem

# Re-exported: the api/ files import what they answer with from here.
__all__ = ["Context", "Endpoint", "Reply", "Request"]

log = logging.getLogger("nofx.endpoint")

PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Endpoint:
    """A WSGI application for one route, with one handler per HTTP method."""

    def __init__(self, path: str, *, tags: Iterable[str] = ()) -> None:
        from lib.data import storage

        storage.report_at_start()  # a function's cold start says what is missing, once
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
        connection: Connection | None = None,
        webhook_secret_env: str | None = None,
        server_secret_env: str | None = None,
        webhook_secret: Callable[[dict[str, str]], list[tuple[str, str]]] | None = None,
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
                # a GET only reads: its statements need no BEGIN or COMMIT
                connection=connection or ("read" if method == "GET" else "plain"),
                webhook_secret_env=webhook_secret_env,
                server_secret_env=server_secret_env,
                webhook_secret=webhook_secret,
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
        start_response(f"{reply.status} {STATUS_TEXT.get(reply.status, 'Status')}", headers)
        log.debug("%s %s %s %.1fms", request.method, request.path, reply.status, (time.perf_counter() - started) * 1000)
        return ResponseBody([body] if request.method != "HEAD" else [b""], after_send)

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
        # work that follows a commit (uploads the transaction staged) waits
        # for the reply; it is handed to after_reply below, once committed
        later: list[Callable[[], Any]] = []
        with db.work_after_reply(later.append):
            try:
                params = self.path_params(request)
                ctx = Context(request, request_id, params, stack, after_send)
                ctx.connection = op.connection
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
        for work in later:
            background.after_reply(ctx, work)
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
        ctx.principal = self._authenticate(op, request, ctx.params)
        if ctx.principal is not None and ctx.principal.source == "api":
            from lib.web import people

            principal = ctx.principal  # who signed in is recorded after the answer, costing the caller nothing
            ctx.after_send.append(lambda: people.remember_after_send(principal))
        if op.flag:
            from lib.ops import flags

            flags.require(op.flag)
        ctx.query = parse_query(op, request, ctx.params)
        ctx.body, ctx.raw_body = parse_body(op, request)

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

    def _authenticate(self, op: Operation, request: Request, params: dict[str, str]) -> Any:
        if op.webhook_secret is not None:  # signed by a party whose secret depends on the target
            from lib.web import webhooks

            if not request.header("webhook-signature"):
                raise Problem(
                    401, "this endpoint takes signed deliveries only (Standard Webhooks)", type="unauthorized"
                )
            cap = op.max_body or settings.max_body_bytes()
            refusal = Problem(401, "webhook signature rejected: no secret to check it with", type="bad-signature")
            for subject, secret in op.webhook_secret(params):
                try:
                    return webhooks.verify_with(request, secret, cap, subject=subject, role=None)
                except Problem as problem:
                    refusal = problem
            raise refusal
        if op.server_secret_env:
            from lib.web import auth

            return auth.server_principal(request.header("authorization"), op.server_secret_env)
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

        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return self._problem(
                Problem(
                    503,
                    "what this request changes is busy (another request or worker holds it); retry shortly",
                    type="busy",
                    headers={"Retry-After": "1"},
                )
            )
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
