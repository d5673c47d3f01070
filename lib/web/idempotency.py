"""The Idempotency-Key protocol for POSTs (after Stripe's).

The first request under a key stores the request's fingerprint and, when it
succeeds, its response; a repeat with the same body replays the stored
response with `Idempotent-Replayed: true`; the same key with another body is a
409. An error response that rolls back is not stored (the client may retry
under the same key); one whose writes commit (a 410 that records an expiry)
is stored and replayed, so a retry is never left "in progress".

Two modes:
- atomic (default): the key row is inserted in the request's own transaction.
  A concurrent request with the same key blocks on that row's unique index
  until the first commits, then replays its response: exactly one executes.
- separate: for handlers that commit in several steps (execute) or do slow
  work before they write (a plan that asks LLM providers). The key is claimed
  in its own short transaction, so no transaction is held while the handler
  works; a concurrent duplicate gets 409 "in progress" with Retry-After
  instead of waiting. The response is stored in the handler's own
  transaction when it opened one (it commits with the writes, or neither
  does), else in a short transaction after it. A claim left `processing` by
  a process that died is taken over after ABANDONED_AFTER.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lib.data import db
from lib.web.problems import Problem, field_error

if TYPE_CHECKING:
    from lib.web.http import Context, Operation, Reply

CLAIM = """
INSERT INTO public.idempotency_keys (scope, key, fingerprint, status)
VALUES (%(scope)s, %(key)s, %(fingerprint)s, 'processing')
ON CONFLICT (scope, key) DO NOTHING
RETURNING key
"""
# longer than any request runs (Vercel stops a function at its maxDuration,
# 60 s): a claim its request left behind frees itself on the request's own
# timescale, not the client's patience
ABANDONED_AFTER = "90 seconds"
# separate mode: a claim whose request died (never completed, never released)
# is taken over by the next request under the key
CLAIM_OR_TAKE_OVER = f"""
INSERT INTO public.idempotency_keys (scope, key, fingerprint, status)
VALUES (%(scope)s, %(key)s, %(fingerprint)s, 'processing')
ON CONFLICT (scope, key) DO UPDATE
   SET fingerprint = EXCLUDED.fingerprint, created_at = now()
 WHERE idempotency_keys.status = 'processing'
   AND idempotency_keys.created_at < now() - interval '{ABANDONED_AFTER}'
RETURNING key
"""  # noqa: S608 - ABANDONED_AFTER is a constant
# the stored answer, and a replay counted when it will be given (GET /api/metrics)
LOOKUP = """
UPDATE public.idempotency_keys
   SET replays = replays + (status = 'completed' AND fingerprint = %(fingerprint)s)::int
 WHERE scope = %(scope)s AND key = %(key)s
RETURNING fingerprint, status, response_status, response_headers, response_body
"""
COMPLETE = """
UPDATE public.idempotency_keys
   SET status = 'completed', response_status = %(status)s, response_headers = %(headers)s,
       response_body = %(body)s, completed_at = now()
 WHERE scope = %(scope)s AND key = %(key)s
"""
RELEASE = "DELETE FROM public.idempotency_keys WHERE scope = %(scope)s AND key = %(key)s AND status = 'processing'"

KEPT_HEADERS = ("Location",)


def fingerprint(ctx: Context) -> str:
    request = ctx.request
    canonical = json.dumps(ctx.raw_body, sort_keys=True, separators=(",", ":")) if ctx.raw_body is not None else ""
    material = f"{request.method}\n{request.path}\n{canonical}"
    return hashlib.sha256(material.encode()).hexdigest()


def scope(ctx: Context) -> str:
    who = ctx.principal.subject if ctx.principal is not None else "anonymous"
    return f"{who}|{ctx.request.method} {ctx.request.path}"


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 255:
        raise field_error(422, ["header", "Idempotency-Key"], "must be 1 to 255 characters")


def _replay_or_conflict(row: dict[str, Any] | None, fp: str) -> Reply:
    from lib.web.http import Reply

    if row is None:  # the other request rolled back between our two statements
        raise Problem(
            409,
            "a request with this Idempotency-Key just failed; retry",
            type="idempotency-retry",
            headers={"Retry-After": "1"},
        )
    if row["fingerprint"] != fp:
        raise Problem(
            409,
            "this Idempotency-Key was used with a different request body; use a new key",
            type="idempotency-key-reused",
        )
    if row["status"] != "completed":
        raise Problem(
            409,
            "a request with this Idempotency-Key is still in progress; retry later",
            type="idempotency-in-progress",
            headers={"Retry-After": "2"},
        )
    stored = row["response_headers"] or {}
    headers = {k: v for k, v in stored.items() if k in KEPT_HEADERS}
    headers["Idempotent-Replayed"] = "true"
    return Reply(
        row["response_status"],
        (row["response_body"] or "").encode(),
        headers,
        stored.get("Content-Type", "application/json"),
    )


def _store_args(reply: Reply, params: dict[str, Any]) -> dict[str, Any]:
    headers = {k: v for k, v in reply.headers.items() if k in KEPT_HEADERS}
    headers["Content-Type"] = reply.content_type
    return {**params, "status": reply.status, "headers": json.dumps(headers), "body": reply.encode().decode()}


def run(op: Operation, ctx: Context, key: str, invoke: Callable[[], Reply]) -> Reply:
    _check_key(key)
    params = {"scope": scope(ctx), "key": key, "fingerprint": fingerprint(ctx)}
    if op.idempotency == "atomic":
        conn = ctx.conn
        if conn.execute(CLAIM, params).fetchone() is None:
            return _replay_or_conflict(conn.execute(LOOKUP, params).fetchone(), params["fingerprint"])
        reply = invoke()
        if _commits(reply):
            conn.execute(COMPLETE, _store_args(reply, params))
        return reply

    with db.transaction() as conn:
        claimed = conn.execute(CLAIM_OR_TAKE_OVER, params).fetchone() is not None
        existing = None if claimed else conn.execute(LOOKUP, params).fetchone()
    if not claimed:
        return _replay_or_conflict(existing, params["fingerprint"])
    try:
        reply = invoke()
    except BaseException:
        _release(params)
        raise
    if _commits(reply) and ctx.transaction_open:
        ctx.conn.execute(COMPLETE, _store_args(reply, params))  # commits with the handler's writes
        return reply
    if _commits(reply):
        with db.transaction() as conn:
            conn.execute(COMPLETE, _store_args(reply, params))
    else:
        _release(params)
    return reply


def _release(params: dict[str, Any]) -> None:
    """Free the key of a request that failed. The failure may have been the
    database connection itself: then on a connection of its own, so a blip
    never leaves the key 'in progress' (it would free itself after
    ABANDONED_AFTER anyway)."""
    import psycopg

    try:
        with db.transaction() as conn:
            conn.execute(RELEASE, params)
    except psycopg.OperationalError:
        with db.connect(autocommit=True) as conn:
            conn.execute(RELEASE, params)


def _commits(reply: Reply) -> bool:
    """Whether the request's writes commit with this reply: then the reply is
    the request's outcome and is stored. A refusal that is itself recorded
    (an approval found expired: 410) is replayed like a success; one that
    rolls back leaves the key free for a retry."""
    return reply.status < 400 or bool(reply.commit)
