"""Helpers for the console's browser tests: sign in through the page, plans that
pause at an approval (made through the real endpoints), accessibility checks and
screenshots for review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from lib import settings
from tests.support.plans import builtin_tool, make_plan, run_plan
from tests.support.wsgi_client import Client

SCREENSHOTS = settings.ROOT / "test-artifacts" / "screenshots"
ONE_APPROVAL = {"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"}


def sign_in(page: Page, base: str, token: str, route: str = "#/approvals", query: str = "") -> None:
    """Open the console at `route`, paste the token into the sign-in form, wait for the view."""
    page.goto(f"{base}/{'?' + query if query else ''}{route}")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#who")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def paused_plan(client: Client, tokens: dict[str, str], conn: Any, prefix: str) -> tuple[str, dict[str, Any]]:
    """A -> G -> Z where G's tool needs one approval; planned and executed by the
    planner until it pauses at G. Returns the plan id and the pending approval."""
    builtin_tool(conn, f"gate.{prefix}", "echo", approval=ONE_APPROVAL)
    body = make_plan(
        client, tokens["planner"], conn, prefix, {"A": [], "G": ["A"], "Z": ["G"]}, tools={"G": f"gate.{prefix}"}
    )
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    (pending,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    return plan_id, pending


def assert_labelled(page: Page) -> None:
    """Every visible form control has an accessible name (a label, aria-label or aria-labelledby)."""
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((el) => el.offsetParent !== null)
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
            .map((el) => el.outerHTML.slice(0, 120))"""
    )
    assert not unnamed, f"form controls without an accessible name: {unnamed}"


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot for review (test-artifacts/ is gitignored)."""
    assert_labelled(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
