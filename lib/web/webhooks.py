"""Signed webhooks in (Standard Webhooks, as the Zig Todo app sends them).

The signature covers `webhook-id.webhook-timestamp.body`; the library refuses
timestamps outside a 5 minute window. The webhook id doubles as the request's
idempotency key, so a replayed delivery returns the stored response instead of
acting twice.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from lib import settings
from lib.web.auth import Principal
from lib.web.problems import Problem

if TYPE_CHECKING:
    from lib.web.http import Request

WEBHOOK_ROLE = "approver"


def verify_request(request: Request, secret_name: str, cap: int) -> Principal:
    secret = settings.secret(secret_name)
    if not secret:
        raise Problem(401, f"signed webhooks are not accepted: {secret_name} is not configured", type="unauthorized")
    return verify_with(request, secret, cap, subject="zig-todo", role=WEBHOOK_ROLE)


def verify_with(request: Request, secret: str, cap: int, *, subject: str, role: str | None) -> Principal:
    """The request's Standard Webhooks signature checked against `secret`
    (5 minute window); the delivery's webhook-id becomes its idempotency key."""
    from standardwebhooks import Webhook

    body = request.read_body(cap)
    headers = {name: request.header(name) or "" for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception as exc:  # noqa: BLE001 - malformed headers raise assorted errors
        raise Problem(401, f"webhook signature rejected: {exc or type(exc).__name__}", type="bad-signature") from None
    webhook_id = headers["webhook-id"]
    return Principal(
        subject=subject,
        role=role,
        email=None,
        source="webhook",
        claims={"webhook_id": f"webhook:{webhook_id}"},
    )


def sign(secret: str, webhook_id: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    """Headers for a signed delivery (used by the smoke command and the tests)."""
    import time
    from datetime import datetime

    from standardwebhooks import Webhook

    ts = time.time() if timestamp is None else timestamp
    signature = Webhook(secret).sign(webhook_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(ts)),
        "webhook-signature": signature,
    }
