"""Tools the executor can run: builtins (for demos and tests) and webhooks.

Every call carries the step's idempotency token; a webhook tool receives it as
the `Idempotency-Key` header, so a retried or re-leased step never acts twice
on a tool that honours the key.

A webhook tool that works for minutes or hours (a deploy, a CI run) answers
202 Accepted, optionally with `{run_id, status_url}`, and reports later to the
`callback_url` it was given (POST /api/steps/:stepId/result, Standard Webhooks
signed with the secret its config names in `callback_secret_env`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from lib.planner.models import Tool

DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
MAX_SLEEP_SECONDS = 30.0


@dataclass
class ToolCall:
    plan: dict[str, Any]
    step: dict[str, Any] | None
    tool: Tool
    inputs: dict[str, Any]
    token: str
    deadline: float  # time.monotonic() by which the call must be over
    transaction: Callable[[], AbstractContextManager[Any]] | None = None  # for require_approval's check
    conn: Any = None  # set while require_approval checks

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class ToolResult:
    output: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # the tool answered 202: it works on, and reports to the step's callback
    accepted: bool = False
    run: dict[str, Any] | None = None


class ToolFailed(Exception):
    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# --------------------------------------------------------------- builtins ----


def _noop(call: ToolCall) -> ToolResult:
    return ToolResult(output={})


def _echo(call: ToolCall) -> ToolResult:
    return ToolResult(output={"inputs": call.inputs, "idempotency_key": call.token})


def _sleep(call: ToolCall) -> ToolResult:
    seconds = float(call.inputs.get("seconds", 1.0))
    seconds = max(0.0, min(seconds, MAX_SLEEP_SECONDS, call.seconds_left()))
    time.sleep(seconds)
    return ToolResult(output={"slept": seconds})


def _fail(call: ToolCall) -> ToolResult:
    if call.inputs.get("fail", True):
        raise ToolFailed(str(call.inputs.get("message", "failed on demand")))
    return ToolResult(output={"failed": False})


BUILTINS: dict[str, Callable[[ToolCall], ToolResult]] = {
    "noop": _noop,
    "echo": _echo,
    "sleep": _sleep,
    "fail": _fail,
}


# ---------------------------------------------------------------- webhook ----


def _backoff(attempt: int) -> float:
    return min(4.0, 0.25 * 2**attempt)


def _webhook(call: ToolCall) -> ToolResult:
    import httpx

    config = call.tool.config
    url = config["url"]
    timeout = float(config.get("timeout_seconds", DEFAULT_TIMEOUT))
    retries = int(config.get("retries", DEFAULT_RETRIES))
    step_id = str(call.step["id"]) if call.step else None
    body = {
        "plan_id": str(call.plan["id"]),
        "step_id": step_id,
        "item_key": call.step["item_key"] if call.step else None,
        "tool_id": call.tool.id,
        "inputs": call.inputs,
        # for a tool that answers 202 and reports later: where, and what the
        # report must name (the callback refuses another step's or run's token)
        "idempotency_token": call.token,
        "callback_url": callback_url(step_id) if step_id else None,
    }
    last_error = "no attempt made"
    for attempt in range(retries + 1):
        left = call.seconds_left()
        if left <= 0:
            raise ToolFailed(f"out of time after {attempt} attempt(s): {last_error}", retryable=True)
        try:
            response = httpx.post(url, json=body, headers={"Idempotency-Key": call.token}, timeout=min(timeout, left))
        except httpx.HTTPError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status_code < 300:
                try:
                    output: Any = response.json()
                except ValueError:
                    output = {"text": response.text[:10_000]}
                if response.status_code == 202:  # accepted: the outcome comes to the callback
                    details = output if isinstance(output, dict) else {}
                    run = {k: details.get(k) for k in ("run_id", "status_url") if details.get(k) is not None}
                    return ToolResult(output=output, attempts=attempt + 1, accepted=True, run=run)
                return ToolResult(output=output, attempts=attempt + 1)
            last_error = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code < 500 and response.status_code != 429:
                raise ToolFailed(last_error)  # the tool said no; asking again will not help
        if attempt < retries:
            time.sleep(min(_backoff(attempt), call.seconds_left()))
    raise ToolFailed(f"gave up after {retries + 1} attempts: {last_error}", retryable=True)


def callback_url(step_id: str) -> str:
    from lib import settings

    return f"{settings.worker_url()}/api/steps/{step_id}/result"


def callback_secret(tool: Tool) -> str | None:
    """The secret a long-running tool signs its reports with: the environment
    variable its config names in `callback_secret_env` (never the secret
    itself in the tools table, which every viewer can read)."""
    from lib import settings

    name = tool.config.get("callback_secret_env")
    return settings.env(name) if isinstance(name, str) and name else None


def async_lease_seconds(tool: Tool) -> float:
    """How long a step whose tool answered 202 may go without news (config
    `lease_seconds`, one minute to a day; an hour unless said)."""
    return max(60.0, min(float(tool.config.get("lease_seconds", 3600)), 86400.0))


def implementation(tool: Tool) -> Callable[[ToolCall], ToolResult]:
    if tool.kind == "webhook":
        return _webhook
    action = tool.config.get("action", "noop")
    if action not in BUILTINS:
        raise ToolFailed(f"tool {tool.id}: unknown builtin action {action!r}")
    return BUILTINS[action]


def cost_of(tool: Tool, duration_ms: int) -> tuple[float | None, str | None]:
    """What one run cost by the tool's cost model; unknown is None with a reason."""
    if tool.cost_model is None:
        return None, f"no cost model for {tool.id}"
    return round(tool.cost_model.usd_per_call + tool.cost_model.usd_per_minute * duration_ms / 60_000, 6), None
