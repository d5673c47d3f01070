"""Where notifications go, and how each is sent: Slack and Zig Todo.

Slack, two ways:
- with SLACK_BOT_TOKEN and SLACK_CHANNEL, `chat.postMessage` (Slack's Web
  API; SLACK_API_URL names another base, as the tests' loopback server): the
  answer carries the message's `ts`, so an approval's votes and outcome are
  posted into the request's thread;
- else with SLACK_WEBHOOK_URL, an incoming webhook: Slack's own answers "ok"
  without saying where the message went, so an outcome is a message of its
  own; a webhook that answers the message's `ts` (a relay speaking as the Web
  API does) gets the replies in the request's thread (`thread_ts`).
Zig Todo: ZIG_TODO_URL receives JSON signed with Standard Webhooks, with the
same secret its inbound webhook uses (ZIG_TODO_WEBHOOK_SECRET) and a
`webhook-id` that is the same on every retry of one message, so the receiver
can drop duplicates.

Each sender answers (error or None, the id the channel gave the message); an
error no retry can fix (Slack's `not_in_channel`, `invalid_auth`, ...) starts
with PERMANENT, and the outbox gives it up at once.
"""

from __future__ import annotations

import json
from typing import Any

from lib import settings
from lib.web import webhooks

SLACK = "slack"
ZIG_TODO = "zig_todo"


def slack_api() -> tuple[str, str] | None:
    token, channel = settings.env("SLACK_BOT_TOKEN"), settings.env("SLACK_CHANNEL")
    return (token, channel) if token and channel else None


def enabled(channel: str) -> bool:
    if channel == SLACK:
        return slack_api() is not None or bool(settings.env("SLACK_WEBHOOK_URL"))
    if channel == ZIG_TODO:
        return bool(settings.env("ZIG_TODO_URL"))
    return False


def threads() -> bool:
    """Whether Slack replies can go into a thread (the Web API, not a webhook)."""
    return slack_api() is not None


# Slack's answers that no retry can change: give up at once and say why
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
    }
)
PERMANENT = "permanent: "


def _failed(response: Any) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def send_slack(client: Any, payload: dict[str, Any], thread_ts: str | None) -> tuple[str | None, str | None]:
    api = slack_api()
    if api is None:
        url = settings.env("SLACK_WEBHOOK_URL")
        if not url:
            return "Slack is not configured (SLACK_BOT_TOKEN and SLACK_CHANNEL, or SLACK_WEBHOOK_URL)", None
        body = {**payload, **({"thread_ts": thread_ts} if thread_ts else {})}
        response = client.post(url, json=body)
        if error := _failed(response):
            return error, None
        return None, _ts_of(response)
    token, channel = api
    base = (settings.env("SLACK_API_URL", "https://slack.com/api") or "https://slack.com/api").rstrip("/")
    body = {**payload, "channel": channel, **({"thread_ts": thread_ts} if thread_ts else {})}
    response = client.post(
        f"{base}/chat.postMessage",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
    )
    if error := _failed(response):
        return error, None
    answer = response.json()
    if not answer.get("ok"):  # the Web API says no with 200 and ok: false
        error = str(answer.get("error", "not ok"))
        return f"{PERMANENT if error in PERMANENT_SLACK_ERRORS else ''}Slack: {error}", None
    return None, str(answer.get("ts") or "") or None


def _ts_of(response: Any) -> str | None:
    """The posted message's ts, where the webhook says it (a relay, a workflow
    that answers as the Web API does); Slack's own incoming webhook answers
    "ok", and its replies then go out as messages of their own."""
    try:
        answer = response.json()
    except ValueError:
        return None
    ts = answer.get("ts") if isinstance(answer, dict) else None
    return str(ts) if ts else None


def send_zig_todo(client: Any, payload: dict[str, Any], webhook_id: str) -> tuple[str | None, str | None]:
    url, secret = settings.env("ZIG_TODO_URL"), settings.secret("ZIG_TODO_WEBHOOK_SECRET")
    if not url or not secret:
        return "Zig Todo is not configured (ZIG_TODO_URL and ZIG_TODO_WEBHOOK_SECRET)", None
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = {**webhooks.sign(secret, webhook_id, body), "Content-Type": "application/json"}
    return _failed(client.post(url, content=body, headers=headers)), None


def send(client: Any, row: dict[str, Any]) -> tuple[str | None, str | None]:
    """One outbox row to its channel; any transport failure is an error to retry."""
    try:
        if row["channel"] == ZIG_TODO:
            return send_zig_todo(client, row["payload"], row["dedupe_key"] or f"nofx-notification-{row['id']}")
        return send_slack(client, row["payload"], row.get("thread_ts"))
    except Exception as exc:  # noqa: BLE001 - any transport failure is a retry, never a crash
        return f"{type(exc).__name__}: {exc}"[:500], None
