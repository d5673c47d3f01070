"""A session's end and a small screen, as people meet them: the console warns
before a pasted token expires, keeps a half-written reason across signing in
again, recovers after an outage, and the plans list fits a 390 px phone."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from lib.web import auth
from tests.browser.console import paused_plan, screenshot, sign_in
from tests.support.plans import executed_plan

PHONE = {"width": 390, "height": 844}


def test_a_session_warns_before_it_ends_and_a_half_written_reason_survives_signing_in_again(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    _, pending = paused_plan(client, tokens, conn, "ses1")
    subject = str(uuid.uuid5(uuid.NAMESPACE_URL, "approver"))
    short = auth.mint_token("approver", subject=subject, ttl_seconds=14)
    sign_in(page, console_url, short, f"#/approvals/{pending['id']}")
    card = page.locator(f"#approval-{pending['id']}")
    reason = card.get_by_label("Reason")
    expect(reason).to_be_visible()
    reason.fill("half of a careful reason")

    warning = page.locator("#session-warning")
    expect(warning).to_be_visible(timeout=12_000)
    expect(warning).to_contain_text("Your session ends in")
    screenshot(page, "session-expiry-warning")

    # the token runs out: the sign-in form says so and that the draft is kept
    expect(page.get_by_label("Access token")).to_be_visible(timeout=12_000)
    expect(page.locator("main")).to_contain_text("what you were typing is kept")
    sign_in_again = auth.mint_token("approver", subject=subject)
    page.get_by_label("Access token").fill(sign_in_again)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(rf"#/approvals/{pending['id']}$"))
    card = page.locator(f"#approval-{pending['id']}")
    expect(card.get_by_label("Reason")).to_have_value("half of a careful reason")
    expect(page.locator("#session-warning")).to_be_hidden()

    # an explicit sign-out forgets drafts
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, console_url, sign_in_again, f"#/approvals/{pending['id']}")
    expect(page.locator(f"#approval-{pending['id']}").get_by_label("Reason")).to_have_value("")


def test_the_view_reloads_when_the_connection_comes_back(page: Page, console_url: str, client, tokens, conn) -> None:
    executed_plan(client, tokens, conn, "ses2")
    sign_in(page, console_url, tokens["viewer"], "#/plans")
    status = page.locator("#live-status")
    # the server unreachable for a while: updates pause, and say so
    page.route(re.compile(r".*/api/events.*"), lambda route: route.abort())
    expect(status).to_have_attribute("data-state", "error", timeout=15_000)
    page.unroute(re.compile(r".*/api/events.*"))
    # back: live again, the view read anew and the recovery announced
    expect(status).to_have_attribute("data-state", "live", timeout=20_000)
    expect(page.locator("#activity-log")).to_contain_text("Connection restored")


def test_the_plans_list_fits_a_phone(page: Page, console_url: str, client, tokens, conn) -> None:
    executed_plan(client, tokens, conn, "ses3")
    page.set_viewport_size(PHONE)
    sign_in(page, console_url, tokens["planner"], "#/plans")
    expect(page.locator("#plans-table table")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the plans page is {width} px wide on a 390 px screen"
    # stacked: one value a line, each saying what it is
    labels = page.evaluate(
        """() => [...document.querySelectorAll('#plans-table tbody tr:first-child td')]
            .map((td) => [getComputedStyle(td).display, getComputedStyle(td, '::before').content])"""
    )
    assert labels[0] == ["block", '"Status: "'], labels
    screenshot(page, "plans-phone")
