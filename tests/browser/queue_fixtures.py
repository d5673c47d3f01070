"""Helpers for the approval queue's browser tests at scale: a connection to a
database of the test's own (the queue's counts are exact there), plans whose
independent steps each wait for an approval, a second approver, and opening a
row to its card."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from playwright.sync_api import Locator, expect

from lib.data import db
from lib.web import auth
from tests.support.plans import builtin_tool, make_plan, run_plan
from tests.support.wsgi_client import Client


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection]:
    """A connection to the test's own database (fresh_database), which the live server uses too."""
    with db.connect(url, autocommit=True) as c:
        yield c


def person(role: str, email: str) -> str:
    """A token for another person (own subject) with `role`."""
    return auth.mint_token(role, subject=str(uuid.uuid4()), email=email)


def gated_plan(
    client: Client,
    tokens: dict[str, str],
    conn: Any,
    prefix: str,
    n: int,
    *,
    required: int = 1,
    planner: str = "planner",
    deps: dict[str, list[str]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A plan of `n` independent steps (S1..Sn), each on a builtin tool that needs
    `required` approvals, planned and executed by `planner` until it pauses.
    Returns the plan id and its pending approvals in the queue's order."""
    tool = f"gate.{prefix}"
    builtin_tool(
        conn,
        tool,
        "echo",
        approval={"required_approvals": required, "timeout_seconds": 3600, "approver_role": "approver"},
    )
    steps = deps or {f"S{i}": [] for i in range(1, n + 1)}
    body = make_plan(
        client, tokens[planner], conn, prefix, steps, tool=tool, options={"max_parallel": max(len(steps), 1)}
    )
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens[planner], plan_id)["status"] == "paused"
    pending = client.get(f"/api/approvals?plan_id={plan_id}&status=pending&limit=500", token=tokens["viewer"]).json()[
        "approvals"
    ]
    return plan_id, pending


def open_card(card: Locator) -> None:
    """Open a request's row to its full card (a click on its toggle, if closed)."""
    toggle = card.locator(".row-toggle")
    if toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
