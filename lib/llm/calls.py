"""Sending the prompt to every model at once: the only part of lib.llm that
touches the network (through the provider adapters).

Each call runs in its own thread with one time budget for all its attempts,
so a comparison takes about as long as its slowest provider, not the sum. A
provider that fails, times out or is not configured is a record with its
error; it never raises. A call that does not return within its budget (plus
a grace second) is recorded as timed out and its thread is left to end on its
own HTTP timeout.
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lib import settings
from lib.llm.answer import Answer
from lib.llm.prompt import MAX_ITEMS, Prompt
from lib.llm.refs import ModelRef
from lib.llm.retry import ProviderFailure

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_ATTEMPTS = 3
GRACE_S = 1.0

ADAPTERS = {"openai": "lib.llm.provider_openai", "anthropic": "lib.llm.provider_anthropic"}
KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
URL_VARS = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


@dataclass(frozen=True)
class CallRecord:
    ref: ModelRef
    started_at: datetime
    answer: Answer | None = None
    failure: ProviderFailure | None = None
    sent: bool = True  # False: never sent (not configured, or the plan is too large)
    latency_ms: int | None = None
    attempts: int = 0


def timeout_s() -> float:
    return float(settings.env("NOFX_LLM_TIMEOUT_SECONDS", str(DEFAULT_TIMEOUT_S)) or DEFAULT_TIMEOUT_S)


def max_attempts() -> int:
    return max(1, int(settings.env("NOFX_LLM_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS)) or DEFAULT_MAX_ATTEMPTS))


def _not_sent(ref: ModelRef, reason: str) -> CallRecord:
    return CallRecord(ref, datetime.now(UTC), failure=ProviderFailure(reason, kind="config"), sent=False)


def _one(adapter: Any, ref: ModelRef, prompt: Prompt, api_key: str, base_url: str | None, budget: float) -> CallRecord:
    started_at, t0 = datetime.now(UTC), time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - t0) * 1000)

    try:
        answer, tried = adapter.ask(
            ref.model, prompt, api_key=api_key, base_url=base_url, budget_s=budget, max_attempts=max_attempts()
        )
    except ProviderFailure as failure:
        return CallRecord(ref, started_at, failure=failure, latency_ms=elapsed(), attempts=failure.attempts)
    except Exception as exc:  # noqa: BLE001 - a provider must never fail the plan
        unexpected = ProviderFailure(f"unexpected {type(exc).__name__}: {str(exc)[:300]}", kind="answer")
        return CallRecord(ref, started_at, failure=unexpected, latency_ms=elapsed(), attempts=1)
    return CallRecord(ref, started_at, answer=answer, latency_ms=elapsed(), attempts=tried.attempts)


def run_calls(refs: list[ModelRef], prompt: Prompt) -> tuple[list[CallRecord], int]:
    """One record per ref, in order, and the wall time of the whole comparison (ms)."""
    budget = timeout_s()
    records: dict[ModelRef, CallRecord] = {}
    jobs: list[tuple[ModelRef, Any, str, str | None]] = []
    for ref in refs:
        api_key = settings.env(KEY_VARS[ref.provider])
        if prompt.items > MAX_ITEMS:
            records[ref] = _not_sent(
                ref, f"not sent: the plan has {prompt.items} items; a comparison sends at most {MAX_ITEMS}"
            )
        elif api_key is None:
            records[ref] = _not_sent(ref, f"not sent: {KEY_VARS[ref.provider]} is not set")
        else:
            # Import before the clock starts: the SDK's import is not the provider's latency.
            try:
                adapter = importlib.import_module(ADAPTERS[ref.provider])
            except ImportError as exc:  # a broken install is this provider's row, not a failed plan
                records[ref] = _not_sent(ref, f"not sent: the {ref.provider} SDK does not import ({exc})")
                continue
            jobs.append((ref, adapter, api_key, settings.env(URL_VARS[ref.provider])))
    started, submitted_at = time.perf_counter(), datetime.now(UTC)
    if jobs:
        pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="nofx-llm")
        futures: dict[Future[CallRecord], ModelRef] = {
            pool.submit(_one, adapter, ref, prompt, key, url, budget): ref for ref, adapter, key, url in jobs
        }
        done, _ = wait(futures, timeout=budget + GRACE_S)
        pool.shutdown(wait=False, cancel_futures=True)
        for future, ref in futures.items():
            if future in done:
                records[ref] = future.result()
            else:
                failure = ProviderFailure(f"no answer within the call's {budget:g} s budget", kind="timeout")
                records[ref] = CallRecord(
                    ref, submitted_at, failure=failure, latency_ms=round(budget * 1000), attempts=1
                )
    wall_ms = round((time.perf_counter() - started) * 1000)
    return [records[ref] for ref in refs], wall_ms
