"""Retries on 429 and 5xx within one budget, on a fake clock: which failures
are retried, how long it waits (Retry-After first), and when it gives up."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from lib.llm.retry import ProviderFailure, backoff, call_with_retries, retry_after_seconds


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def scripted(*outcomes, cost_s: float = 0.1, clock: FakeTime):
    """A send() that fails or answers in turn; each attempt takes cost_s."""
    timeouts: list[float] = []
    queue = list(outcomes)

    def send(timeout_s: float) -> str:
        timeouts.append(timeout_s)
        clock.now += cost_s
        outcome = queue.pop(0)
        if isinstance(outcome, ProviderFailure):
            raise outcome
        return outcome

    return send, timeouts


def run(send, clock: FakeTime, budget_s: float = 10.0, max_attempts: int = 3):
    return call_with_retries(
        send, budget_s=budget_s, max_attempts=max_attempts, clock=clock.clock, sleep=clock.sleep, jitter=lambda: 0.0
    )


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_its_forms(headers, seconds) -> None:
    assert retry_after_seconds(headers) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC).timestamp()
    header = format_datetime(datetime(2026, 11, 25, 12, 0, 7, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds({"Retry-After": header}, now=now) == 7.0


def test_a_429_waits_as_told_then_succeeds() -> None:
    t = FakeTime()
    send, timeouts = scripted(ProviderFailure("HTTP 429", status=429, retry_after=1.5), "ok", clock=t)
    result, tried = run(send, t)
    assert result == "ok" and tried.attempts == 2 and t.slept == [1.5]
    # the second attempt may use what is left of the one budget
    assert timeouts == [10.0, pytest.approx(10.0 - 0.1 - 1.5)]


def test_5xx_without_retry_after_backs_off_exponentially_and_is_bounded() -> None:
    t = FakeTime()
    failures = [ProviderFailure(f"HTTP {s}", status=s) for s in (500, 502, 503)]
    send, _ = scripted(*failures, clock=t)
    with pytest.raises(ProviderFailure) as caught:
        run(send, t)
    assert caught.value.attempts == 3 and "gave up after 3 attempts" in caught.value.message
    assert t.slept == [backoff(1, 0.0), backoff(2, 0.0)] == [0.5, 1.0]


@pytest.mark.parametrize(
    "failure",
    [
        ProviderFailure("HTTP 400: bad schema", status=400),
        ProviderFailure("HTTP 401: bad key", status=401),
        ProviderFailure("timed out after 10.0 s", kind="timeout"),
    ],
)
def test_client_errors_and_timeouts_are_not_retried(failure) -> None:
    t = FakeTime()
    send, timeouts = scripted(failure, "never", clock=t)
    with pytest.raises(ProviderFailure) as caught:
        run(send, t)
    assert caught.value.attempts == 1 and len(timeouts) == 1 and t.slept == []


def test_a_retry_after_beyond_the_budget_ends_the_call_with_that_reason() -> None:
    t = FakeTime()
    send, timeouts = scripted(ProviderFailure("HTTP 429: slow down", status=429, retry_after=30), "ok", clock=t)
    with pytest.raises(ProviderFailure) as caught:
        run(send, t, budget_s=5)
    assert len(timeouts) == 1 and t.slept == []
    assert "the provider asked to retry after 30.0 s, beyond the 4.9 s left of the call's 5 s budget" in str(
        caught.value.message
    )


def test_a_connection_failure_is_retried() -> None:
    t = FakeTime()
    send, _ = scripted(ProviderFailure("connection refused", kind="connection"), "ok", clock=t)
    result, tried = run(send, t)
    assert result == "ok" and tried.attempts == 2


def test_backoff_is_capped_and_jittered_down_only() -> None:
    assert backoff(1, 0.0) == 0.5 and backoff(10, 0.0) == 8.0
    assert backoff(3, 1.0) == pytest.approx(2.0 * 0.75)
