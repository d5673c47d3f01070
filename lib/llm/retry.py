"""Bounded retries on 429 and 5xx that honour Retry-After, inside one budget.

The SDKs' own retry loops are switched off (max_retries=0) on purpose: they
also retry timeouts (each one a whole new timeout), retry 408 and 409, and
wait up to two minutes for a Retry-After whatever the caller's budget. Here a
call has one budget for all its attempts: each attempt may use what is left,
a Retry-After that does not fit in what is left ends the call with that
reason, and a timeout is final (the budget is spent).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0


class ProviderFailure(Exception):
    """One failed attempt, in provider-neutral terms."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        kind: str = "status",  # status, timeout, connection, answer
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.kind = kind
        self.attempts = 0

    @property
    def retryable(self) -> bool:
        if self.kind == "connection":
            return True
        return self.kind == "status" and self.status is not None and (self.status == 429 or self.status >= 500)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Retry-After as seconds: `retry-after-ms`, then `retry-after` as seconds
    or as an HTTP date. None when absent or unreadable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue
        if seconds == seconds and seconds != float("inf"):  # not NaN, finite
            return max(0.0, seconds)
    value = lowered.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return None


def backoff(attempt: int, jitter: float) -> float:
    """Exponential from 0.5 s, at most 8 s, less up to a quarter at random."""
    return min(BASE_DELAY_S * 2 ** (attempt - 1), MAX_DELAY_S) * (1 - 0.25 * jitter)


@dataclass
class Attempted:
    attempts: int
    waited_s: float


def call_with_retries(
    send: Callable[[float], T],
    *,
    budget_s: float,
    max_attempts: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> tuple[T, Attempted]:
    """`send(timeout_s)` makes one attempt or raises ProviderFailure; the
    failure that ends the call is raised with `.attempts` set."""
    start = clock()
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        remaining = budget_s - (clock() - start)
        try:
            if remaining <= 0:
                raise ProviderFailure(f"no time left in the call's {budget_s:g} s budget", kind="timeout")
            return send(remaining), Attempted(attempt, waited)
        except ProviderFailure as failure:
            failure.attempts = attempt
            if not failure.retryable or attempt >= max_attempts:
                if failure.retryable:
                    failure.message += f" (gave up after {attempt} attempts)"
                raise
            wait = failure.retry_after if failure.retry_after is not None else backoff(attempt, jitter())
            left = budget_s - (clock() - start)
            if wait >= left:
                asked = "the provider asked to retry after" if failure.retry_after is not None else "backoff of"
                failure.message += (
                    f" (not retried: {asked} {wait:.1f} s, beyond the {max(left, 0):.1f} s left "
                    f"of the call's {budget_s:g} s budget)"
                )
                raise
            sleep(wait)
            waited += wait
