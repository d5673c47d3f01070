"""One SDK client per provider, key and base URL for the life of the process.

A warm function reuses the client's connection pool (and TLS sessions) and
skips the ~40 ms a client takes to build. Both SDKs' clients are thread-safe
and take the timeout per request. Their own retries are off (max_retries=0):
lib.llm.retry decides, within the call's budget.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

C = TypeVar("C")


@functools.lru_cache(maxsize=16)
def cached(sdk_client: type[C], api_key: str, base_url: str | None) -> C:
    options: dict[str, Any] = {"api_key": api_key, "max_retries": 0}
    if base_url:
        options["base_url"] = base_url
    return sdk_client(**options)
