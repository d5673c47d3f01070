"""The approval queue at scale (issue 19) in headless Chromium against the real
server and PostgreSQL, each test on a database of its own so counts are exact:
pages of compact rows and filters over 100 and 202 requests, a lost race told in
place, focus and position held while others decide, keyboard only at 390 px,
two-person votes and one's own request, an outage with Retry, the outcome in the
card's place, decisions on several requests of one plan, a re-asked request's
past and what a plan approval releases."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.console import screenshot, sign_in
from tests.browser.queue_fixtures import connection, gated_plan, open_card, person
from tests.support.backlog import seed_backlog
from tests.support.plans import builtin_tool, make_plan, run_plan

pytestmark = pytest.mark.browser

EVENTS = re.compile(r".*/api/events\?.*")


@pytest.fixture
def qconn(fresh_database: str) -> Iterator[object]:
    """This test's own database: the queue holds only what the test made, so totals are exact."""
    with connection(fresh_database) as c:
        yield c


def hold_events(page: Page) -> None:
    """The event feed answers "nothing new" (as it does while an older transaction
    is open): the page learns nothing of decisions made elsewhere until released."""
    page.route(
        EVENTS,
        lambda route: route.fulfill(
            status=200, content_type="application/json", body='{"events": [], "next_after": null}'
        ),
    )


def card_of(page: Page, approval: dict) -> Locator:
    return page.locator(f"#approval-{approval['id']}")


def keys_shown(page: Page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('article.approval')].map((a) => a.dataset.itemKey)")


def no_sideways_scroll(page: Page, width: int = 390) -> None:
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at {width} px"


def test_a_queue_of_a_hundred_comes_in_pages_of_rows_with_filters(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    plan_id, pending = gated_plan(client, tokens, qconn, "qhd", 100)
    gated_plan(client, tokens, qconn, "qho", 2)
    assert len(pending) == 100
    sign_in(page, console_url, tokens["approver"])
    summary = page.locator("#approval-summary")
    expect(summary).to_have_text("Showing 1–50 of 102 pending approvals, oldest first.")
    expect(page.locator("#approvals-count")).to_have_text("102 pending")  # the nav badge agrees
    rows = page.locator("article.approval")
    expect(rows).to_have_count(50)
    # natural order from the API: S2 before S10
    assert keys_shown(page)[:12] == [f"qhd-S{i}" for i in range(1, 13)]
    # a row: item key and title, tool, plan, time left, votes; the first is open, the rest closed
    first = rows.nth(0)
    expect(first.locator(".row-toggle")).to_have_text("qhd-S1 item S1")
    expect(first.locator(".row-facts")).to_contain_text("gate.qhd")
    expect(first.locator(".row-facts")).to_contain_text("100 steps across qhd")
    expect(first.locator(".countdown")).to_contain_text("left")
    expect(first.locator(".row-votes")).to_have_text("0 of 1 approvals")
    expect(first.locator(".row-toggle")).to_have_attribute("aria-expanded", "true")
    expect(rows.nth(1).locator(".row-toggle")).to_have_attribute("aria-expanded", "false")
    expect(rows.nth(1).get_by_label("Reason")).to_be_hidden()
    screenshot(page, "queue-compact")
    # one open at a time
    rows.nth(3).locator(".row-toggle").click()
    expect(rows.nth(3).locator(".row-toggle")).to_have_attribute("aria-expanded", "true")
    expect(rows.nth(3).get_by_label("Reason")).to_be_visible()
    expect(rows.nth(3).get_by_role("region", name="Inputs summary")).to_contain_text("target")
    expect(first.locator(".row-toggle")).to_have_attribute("aria-expanded", "false")

    # the rest, a page at a time; focus lands on the first newly shown row
    more = page.locator("#approval-more")
    expect(more).to_have_text("Show 50 more (52 not shown)")
    more.click()
    expect(summary).to_have_text("Showing 1–100 of 102 pending approvals, oldest first.")
    expect(rows.nth(50).locator(".row-toggle")).to_be_focused()
    expect(rows.nth(50).locator(".row-toggle")).to_contain_text("qhd-S51")
    more.click()
    expect(summary).to_have_text("Showing 1–102 of 102 pending approvals, oldest first.")
    expect(more).to_be_hidden()
    expect(rows).to_have_count(102)

    # filters: tool, pack, search, plan (selects built from what is loaded and the packs)
    page.locator("#approval-tool").select_option("gate.qho")
    expect(summary).to_have_text("Showing 1–2 of 2 pending approvals matching the filters, oldest first.")
    assert keys_shown(page) == ["qho-S1", "qho-S2"]
    page.locator("#approval-tool").select_option("")
    page.locator("#approval-pack").select_option("qho")
    expect(summary).to_have_text("Showing 1–2 of 2 pending approvals matching the filters, oldest first.")
    page.locator("#approval-pack").select_option("")
    page.get_by_label("Search").fill("S77")
    expect(summary).to_have_text("Showing 1–1 of 1 pending approvals matching the filters, oldest first.")
    assert keys_shown(page) == ["qhd-S77"]
    page.get_by_label("Search").fill("")
    page.locator("#approval-plan").select_option(plan_id)
    expect(summary).to_have_text("Showing 1–50 of 100 pending approvals matching the filters, oldest first.")
    screenshot(page, "queue-filtered")


def test_two_hundred_and_two_pending_are_all_reachable_and_a_link_opens_at_one(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    _, pending = gated_plan(client, tokens, qconn, "qbg", 202)
    assert len(pending) == 202
    sign_in(page, console_url, tokens["approver"])
    summary = page.locator("#approval-summary")
    expect(summary).to_have_text("Showing 1–50 of 202 pending approvals, oldest first.")
    expect(page.locator("#approvals-count")).to_have_text("202 pending")
    more = page.locator("#approval-more")
    for shown in (100, 150, 200, 202):
        more.click()
        expect(summary).to_have_text(f"Showing 1–{shown} of 202 pending approvals, oldest first.")
    expect(more).to_be_hidden()
    expect(page.locator("article.approval")).to_have_count(202)
    assert keys_shown(page) == [f"qbg-S{i}" for i in range(1, 203)]  # every one, once, in natural order

    # a link to a request beyond the first page: the queue opens with it on top, open and focused
    target = next(a for a in pending if a["step"]["item_key"] == "qbg-S190")
    page.goto(f"{console_url}/#/approvals/{target['id']}")
    expect(summary).to_have_text("Showing 1–50 of 202 pending approvals, oldest first.")
    card = card_of(page, target)
    expect(page.locator("article.approval").first).to_have_attribute("data-approval-id", target["id"])
    expect(card.locator(".row-toggle")).to_have_attribute("aria-expanded", "true")
    expect(card.locator(".row-toggle")).to_be_focused()
    expect(card.get_by_label("Reason")).to_be_visible()


def test_a_lost_race_is_told_in_the_card_which_stays_until_dismissed(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    # three plans of one request each (a denial blocks its plan, which cancels the plan's other requests)
    pending = [gated_plan(client, tokens, qconn, f"qlr{i}", 1)[1][0] for i in range(3)]
    sign_in(page, console_url, tokens["approver"])
    summary = page.locator("#approval-summary")
    expect(summary).to_contain_text("of 3 pending")
    hold_events(page)
    target = pending[1]
    card = card_of(page, target)
    open_card(card)
    card.get_by_label("Reason").fill("looks fine")

    bea = person("approver", "bea@example.com")
    r = client.post(f"/api/approvals/{target['id']}", json={"decision": "deny", "reason": "wrong window"}, token=bea)
    assert r.status == 200, r.text

    card.get_by_role("button", name="Approve", exact=True).click()
    outcome = card.locator(".outcome")
    expect(outcome).to_contain_text("Already denied by bea@example.com: your approval did not count.")
    expect(outcome).to_be_focused()
    expect(card.get_by_role("button", name="Approve", exact=True)).to_be_disabled()
    expect(card.get_by_role("button", name="Deny", exact=True)).to_be_disabled()
    expect(page.locator("article.approval").nth(1)).to_have_attribute("data-approval-id", target["id"])  # where it was
    screenshot(page, "queue-lost-race")

    # the feed catches up and the queue reloads: the card stays where it was until dismissed
    page.unroute(EVENTS)
    expect(summary).to_contain_text("of 2 pending")
    expect(page.locator("article.approval").nth(1)).to_have_attribute("data-approval-id", target["id"])
    expect(outcome).to_contain_text("your approval did not count")
    card.get_by_role("button", name="Dismiss").click()
    expect(card).to_have_count(0)
    expect(page.locator("article.approval")).to_have_count(2)
    # nothing counted for me: bea's denial stands alone
    history = client.get(f"/api/approvals/{target['id']}", token=tokens["viewer"]).json()["history"]
    assert [e["event"] for e in history if e["event"] in ("approve", "deny")] == ["deny"]


def test_focus_and_position_hold_while_others_decide(page: Page, console_url: str, client, tokens, qconn) -> None:
    _, pending = gated_plan(client, tokens, qconn, "qfp", 10)
    sign_in(page, console_url, tokens["approver"])
    expect(page.locator("#approval-summary")).to_contain_text("of 10 pending")
    mine = card_of(page, pending[3])
    open_card(mine)
    mine.evaluate("(el) => el.scrollIntoView({ block: 'center' })")
    reason = mine.get_by_label("Reason")
    reason.click()
    page.keyboard.type("checking the window")
    before = mine.bounding_box()
    assert before

    bea = person("approver", "bea@example.com")
    for other in (pending[0], pending[5]):  # one above my card, one below
        r = client.post(f"/api/approvals/{other['id']}", json={"decision": "approve"}, token=bea)
        assert r.status == 200, r.text

    for other in (pending[0], pending[5]):
        marked = card_of(page, other)
        expect(marked.locator(".card-state")).to_have_text("Decided by bea@example.com: approved.")
        expect(marked).to_have_class(re.compile(r"\bclosed\b"))
        expect(marked.locator("form.decision")).to_have_count(0)  # its buttons are gone
    expect(page.locator("article.approval")).to_have_count(10)  # marked in place, not removed
    expect(page.locator("#activity-log")).to_contain_text("qfp-S1 was approved by bea@example.com")
    expect(reason).to_be_focused()
    expect(reason).to_have_value("checking the window")
    after = mine.bounding_box()
    assert after and abs(after["y"] - before["y"]) < 2, (before, after)  # my card kept its place on screen
    page.keyboard.type(", done")
    expect(reason).to_have_value("checking the window, done")


def test_keyboard_only_at_390px_opens_a_linked_request_denies_it_and_keeps_focus_on_the_result(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _, pending = gated_plan(client, tokens, qconn, "qkb", 5)
    sign_in(page, console_url, tokens["approver"])
    target = pending[3]
    page.goto(f"{console_url}/#/approvals/{target['id']}")
    card = card_of(page, target)
    toggle = card.locator(".row-toggle")
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(card.locator(".countdown")).to_contain_text("left")
    first = card.locator(".countdown").inner_text()
    expect(card.locator(".countdown")).not_to_have_text(first, timeout=3000)  # it ticks
    no_sideways_scroll(page)
    screenshot(page, "queue-390-open")

    reason = card.get_by_label("Reason")
    for _ in range(40):
        if reason.evaluate("(el) => el === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(reason).to_be_focused()
    page.keyboard.type("wrong maintenance window")
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Approve", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Deny", exact=True)).to_be_focused()
    page.keyboard.press("Enter")

    outcome = card.locator(".outcome")
    expect(outcome).to_contain_text("You denied qkb-S4: wrong maintenance window.")
    expect(outcome).to_be_focused()
    expect(outcome).to_be_in_viewport()
    expect(outcome.locator(".plan-status-after")).to_have_text("blocked")
    no_sideways_scroll(page)
    screenshot(page, "queue-390-denied")
    assert client.get(f"/api/approvals/{target['id']}", token=tokens["viewer"]).json()["status"] == "denied"


def test_two_person_approval_says_my_vote_counted_and_waits_for_a_second(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    _, (request,) = gated_plan(client, tokens, qconn, "qtw", 1, required=2)
    sign_in(page, console_url, tokens["approver"])
    card = card_of(page, request)
    open_card(card)
    approve = card.get_by_role("button", name="Approve", exact=True)
    deny = card.get_by_role("button", name="Deny", exact=True)
    approve.click()
    state = card.locator(".card-state")
    expect(state).to_have_text("You approved qtw-S1; waiting for a second approver (1 of 2).")
    expect(state).to_be_focused()
    expect(approve).to_be_disabled()
    expect(deny).to_be_disabled()
    expect(card.locator(".row-votes")).to_have_text("1 of 2 approvals")

    # read again from the API: its history shows my vote (by my subject), so the card still says so
    page.reload()
    expect(page.locator("#approval-summary")).to_contain_text("of 1 pending")
    open_card(card)
    expect(state).to_have_text("You approved; waiting for a second approver (1 of 2).")
    expect(approve).to_be_disabled()
    expect(deny).to_be_disabled()
    expect(card.locator(".row-select")).to_be_hidden()  # not offered for a decision on several either
    screenshot(page, "queue-two-person")

    # the second approver decides elsewhere: nobody is acting in the list, so it leaves, and that is said
    bea = person("approver", "bea@example.com")
    r = client.post(f"/api/approvals/{request['id']}", json={"decision": "approve"}, token=bea)
    assert r.status == 200 and r.json()["status"] == "approved", r.text
    expect(card).to_have_count(0)
    expect(page.locator("#activity-log")).to_contain_text(
        re.compile(r"qtw-S1 was approved by \S+ and bea@example\.com")
    )
    expect(page.locator("#approval-summary")).to_have_text("No pending approvals.")


def test_my_own_request_may_be_denied_but_not_approved(page: Page, console_url: str, client, tokens, qconn) -> None:
    _, (own,) = gated_plan(client, tokens, qconn, "qrq", 1, planner="admin")  # the admin planned and executed it
    _, (other,) = gated_plan(client, tokens, qconn, "qro", 1)
    sign_in(page, console_url, tokens["admin"])
    card = card_of(page, own)
    open_card(card)
    expect(card.locator(".card-state")).to_have_text(
        "You requested this: someone else has to approve it (you may still deny it)."
    )
    expect(card.get_by_role("button", name="Approve", exact=True)).to_be_disabled()
    expect(card.get_by_role("button", name="Deny", exact=True)).to_be_enabled()
    expect(card.locator(".row-select")).to_be_hidden()
    expect(card_of(page, other).locator(".row-select")).to_be_visible()  # one I may decide can be ticked


def test_an_outage_says_not_sent_and_retry_sends_the_same_decision(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    _, pending = gated_plan(client, tokens, qconn, "qout", 2)
    sign_in(page, console_url, tokens["approver"])
    card = card_of(page, pending[0])
    open_card(card)
    dropped: list[str] = []

    def drop_the_first_post(route) -> None:
        if route.request.method == "POST" and not dropped:
            dropped.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    decision = re.compile(r".*/api/approvals/[0-9a-f-]{36}$")
    page.route(decision, drop_the_first_post)
    card.get_by_label("Reason").fill("checked the diff")
    card.get_by_role("button", name="Approve", exact=True).click()
    alert = card.locator(".decision-result [role=alert]")
    expect(alert).to_contain_text("Not sent: the server could not be reached.")
    expect(alert).not_to_contain_text("refused")
    retry = card.get_by_role("button", name="Retry")
    expect(retry).to_be_focused()
    assert client.get(f"/api/approvals/{pending[0]['id']}", token=tokens["viewer"]).json()["status"] == "pending"
    screenshot(page, "queue-not-sent")
    retry.click()
    expect(card.locator(".outcome")).to_contain_text(
        "qout-S1 approved; the plan 2 steps across qout now waits for qout-S2"
    )
    page.unroute(decision)
    history = client.get(f"/api/approvals/{pending[0]['id']}", token=tokens["viewer"]).json()["history"]
    approvals = [e for e in history if e["event"] == "approve"]
    assert len(dropped) == 1 and len(approvals) == 1 and approvals[0]["reason"] == "checked the diff"

    # the queue cannot be read while the server is away: said so, and cleared once it answers again
    listing = re.compile(r".*/api/approvals\?.*")
    page.route(listing, lambda route: route.abort("internetdisconnected"))
    page.locator("#approval-status").select_option("all")
    error = page.locator(".view-error")
    expect(error).to_contain_text("Could not load the approval queue: the server could not be reached.")
    expect(error).not_to_contain_text("refused")
    page.unroute(listing)
    expect(error).to_be_empty(timeout=10_000)
    expect(page.locator("#approval-summary")).to_have_text("Showing 1–2 of 2 approvals, oldest first.")


def test_the_outcome_replaces_the_form_in_the_cards_place_and_a_refusal_is_said_once(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    _, pending = gated_plan(client, tokens, qconn, "qcf", 3)
    sign_in(page, console_url, tokens["approver"])
    first = card_of(page, pending[0])
    open_card(first)
    first.get_by_label("Reason").fill("window agreed")
    first.get_by_role("button", name="Approve", exact=True).click()
    outcome = first.locator(".outcome")
    expect(outcome.locator(".outcome-text")).to_have_text(
        "qcf-S1 approved; the plan 3 steps across qcf now waits for qcf-S2, qcf-S3 (approval requested). "
        "Its status: paused."
    )
    expect(outcome).to_be_focused()
    expect(first.locator("form.decision")).to_have_count(0)
    expect(page.locator("article.approval").first).to_have_attribute("data-approval-id", pending[0]["id"])
    expect(page.locator("#activity-log")).to_contain_text(
        "qcf-S1 approved; the plan 3 steps across qcf now waits for qcf-S2"
    )
    screenshot(page, "queue-confirmed")

    second = card_of(page, pending[1])
    open_card(second)
    second.get_by_role("button", name="Deny", exact=True).click()
    alert = second.locator(".decision-result [role=alert]")
    expect(alert).to_contain_text("The denial was refused.")
    expect(alert.locator(".problem-errors")).to_have_text("the reason: a denial needs a reason")
    assert alert.inner_text().count("a denial needs a reason") == 1  # the problem, once
    expect(second.get_by_label("Reason")).to_be_focused()


def test_several_requests_of_one_plan_are_decided_together_each_on_its_own(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    _, a = gated_plan(client, tokens, qconn, "qba", 4)
    _, b = gated_plan(client, tokens, qconn, "qbb", 2)
    sign_in(page, console_url, tokens["approver"])
    expect(page.locator("#approval-summary")).to_contain_text("of 6 pending")
    hold_events(page)
    for request in a[:3]:
        page.get_by_label(f"Select {request['step']['item_key']} (plan 4 steps across qba)").check()
    expect(card_of(page, b[0]).locator(".row-select")).to_be_disabled()  # one plan at a time
    expect(card_of(page, a[3]).locator(".row-select")).to_be_enabled()
    bar = page.locator("#bulk-bar")
    expect(bar).to_contain_text("3 selected from plan “4 steps across qba”")

    bea = person("approver", "bea@example.com")
    r = client.post(f"/api/approvals/{a[1]['id']}", json={"decision": "approve"}, token=bea)
    assert r.status == 200, r.text

    bar.get_by_label("Reason for the selected").fill("release train 12")
    screenshot(page, "queue-bulk-selected")
    page.get_by_role("button", name="Approve selected (3)").click()
    report = page.locator("#bulk-report")
    expect(report).to_contain_text("2 of 3 approved; 1 did not go through (see each below).")
    expect(report.locator("li")).to_have_text(
        [
            "qba-S1: approved",
            "qba-S2: already approved by bea@example.com: your approval did not count.",
            "qba-S3: approved",
        ]
    )
    expect(report).to_be_focused()
    expect(card_of(page, a[1]).locator(".outcome")).to_contain_text("Already approved by bea@example.com")
    screenshot(page, "queue-bulk-report")
    for request in (a[0], a[2]):  # each its own vote, with the one reason
        view = client.get(f"/api/approvals/{request['id']}", token=tokens["viewer"]).json()
        assert view["status"] == "approved"
        assert [(e["event"], e["reason"]) for e in view["history"] if e["event"] == "approve"] == [
            ("approve", "release train 12")
        ]
    assert client.get(f"/api/approvals/{a[3]['id']}", token=tokens["viewer"]).json()["status"] == "pending"


def test_a_reasked_request_shows_its_past_overrides_and_undo(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    builtin_tool(qconn, "undo.qpa", "echo")
    builtin_tool(
        qconn,
        "gate.qpa",
        "echo",
        mutating=True,
        approval={"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"},
        rollback={"tool_id": "undo.qpa", "inputs": {"version": "{{inputs.previous}}"}},
    )
    body = make_plan(client, tokens["planner"], qconn, "qpa", {"G": []}, tool="gate.qpa")
    plan_id = body["plan"]["id"]
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    (first,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    bea = person("approver", "bea@example.com")
    r = client.post(
        f"/api/approvals/{first['id']}", json={"decision": "deny", "reason": "not during the freeze"}, token=bea
    )
    assert r.status == 200, r.text
    r = client.post(
        "/api/automation/override",
        json={"plan_id": plan_id, "step_id": first["step"]["id"], "action": "retry", "reason": "the freeze is over"},
        token=tokens["admin"],
    )
    assert r.status == 201, r.text
    (again,) = client.get(f"/api/approvals?plan_id={plan_id}&status=pending", token=tokens["viewer"]).json()[
        "approvals"
    ]
    assert again["id"] != first["id"]

    sign_in(page, console_url, tokens["approver"])
    card = card_of(page, again)
    open_card(card)
    expect(card.locator(".past-warning")).to_contain_text("Denied before by bea@example.com: not during the freeze")
    past = card.get_by_role("region", name="Asked before")
    expect(past).to_contain_text("Asked before (1)")
    expect(past).to_contain_text("denied by bea@example.com: not during the freeze")
    expect(past.locator(".changed")).to_have_text("Nothing in its inputs changed since.")  # past[].changed is empty
    expect(past.locator(".overrides")).to_contain_text("retry of this step by admin@nofx.local: the freeze is over")
    expect(past).to_contain_text("Undoing it runs undo.qpa with:")
    expect(past.locator("dl.kv")).to_contain_text("v0")
    screenshot(page, "queue-reasked")


def test_a_plan_approval_lists_what_it_releases_and_what_was_pulled_in(
    page: Page, console_url: str, client, tokens, qconn
) -> None:
    dependency = seed_backlog(qconn, "qrd", {"X": []})
    seed_backlog(qconn, "qrp", {"A": [], "B": ["A"]}, extra_deps={"A": [dependency["X"]]})
    r = client.post("/api/auto-planner/plan", json={"pack_ids": ["qrp"]}, token=tokens["planner"])
    assert r.status == 201, r.text
    plan_id = r.json()["plan"]["id"]
    qconn.execute("UPDATE plans SET verdict = 'warn' WHERE id = %s", (plan_id,))
    assert run_plan(client, tokens["planner"], plan_id)["status"] == "paused"
    (request,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    assert request["kind"] == "plan"
    findings = [
        {"gate": "risk", "severity": "warn", "code": "R1", "message": "touches billing", "item_key": "qrp-A"},
        {"gate": "risk", "severity": "info", "code": "R2", "message": "long chain", "item_key": "qrp-B"},
        {"gate": "resource", "severity": "warn", "code": "C1", "message": "over budget", "item_key": "qrp-A"},
    ]
    qconn.execute("UPDATE approvals SET findings = %s WHERE id = %s", (json.dumps(findings), request["id"]))

    sign_in(page, console_url, tokens["approver"])
    card = card_of(page, request)
    open_card(card)
    expect(card.locator(".row-toggle")).to_contain_text("Plan approval:")
    releases = card.get_by_role("region", name="What approving releases")
    expect(releases).to_contain_text("Approving releases 3 steps")
    expect(releases.locator(".release-list li")).to_have_count(3)
    expect(releases.locator(".release-list")).to_contain_text("qrp-B item B, t.read")
    expect(releases.locator(".pulled-in")).to_have_text("qrd-X item X, added as a dependency of qrp-A (pack qrd)")
    groups = card.get_by_role("region", name="Gate findings").locator(".finding-group h4")
    expect(groups).to_have_text(["qrp-A (2)", "qrp-B (1)"])
    screenshot(page, "queue-plan-approval")
