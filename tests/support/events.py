"""Reading events as a client does. GET /api/events holds an event back
until every transaction older than it has finished (so a cursor never skips
one); with other work running on the server that can take a moment, so
tests wait for what they expect instead of assuming it is there at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.support.wsgi_client import Client


def event_types(
    client: Client, token: str, plan_id: str, until: Callable[[list[str]], bool], timeout: float = 10.0
) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(f"/api/events?plan_id={plan_id}&limit=1000", token=token).json()
        types = [e["type"] for e in page["events"]]
        if until(types) or time.monotonic() > deadline:
            return types
        time.sleep(0.05)


def wait_for_page(
    client: Client, token: str, query: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = client.get(f"/api/events?{query}", token=token).json()["events"]
        if until(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.05)
