"""The plan page at scale and under way (issue 19), in headless Chromium against
the dev server's app and the real PostgreSQL: a 1,500-step plan in 116 stages
as rows of counts with search, jumps and dependencies on focus; progress while
a plan runs; items pulled in from packs nobody selected; Execute disabled with
the reason (the execute flag off, a blocked plan) and the override a planner
asks for and an admin grants; and the page at 390 px by keyboard."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import ONE_APPROVAL, screenshot, sign_in
from tests.browser.plan_fixtures import BIG_STAGES, big_plan, gate_blocked_plan, insert_items
from tests.support.plans import builtin_tool, make_plan

pytestmark = pytest.mark.browser


@pytest.fixture
def retire(conn):
    """Packs whose open items are cancelled after the test: 1,500 open items
    would fill every later test's pack list in this session's database."""
    packs: list[str] = []
    yield packs
    conn.execute("UPDATE backlog_items SET status = 'cancelled' WHERE pack_id = ANY(%s) AND status = 'open'", (packs,))


def open_plan(page: Page, console_url: str, token: str, plan_id: str) -> float:
    """Sign in at the plan's page; seconds until its steps and Execute show."""
    started = time.perf_counter()
    sign_in(page, console_url, token, f"#/plans/{plan_id}")
    expect(page.locator("#plan-progress-bar")).to_be_visible()
    expect(page.locator("#graph-heading")).to_be_visible()
    return time.perf_counter() - started


def page_width(page: Page) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def focusables_between(page: Page, first: str, last: str) -> int:
    """How many tab stops lie between two elements in document order."""
    return int(
        page.evaluate(
            """([first, last]) => {
                const stops = 'a[href], button, input, select, textarea, summary, [tabindex]';
                const all = [...document.querySelectorAll(stops)]
                  .filter((el) => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length);
                const a = document.querySelector(first), b = document.querySelector(last);
                return all.filter((el) => a.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING
                  && el.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING).length;
            }""",
            [first, last],
        )
    )


def tab_until(page: Page, selector: str, limit: int = 30) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} not reached in {limit} tabs")


def test_a_1500_step_plan_shows_stages_as_counts_with_search_jumps_and_dependencies(
    page: Page, console_url: str, client, tokens, conn, retire
) -> None:
    retire.append("big")
    body = big_plan(client, tokens, conn, "big")
    plan_id = body["plan"]["id"]
    sign_in(page, console_url, tokens["planner"], "#/plans")
    started = time.perf_counter()
    page.evaluate(f"() => {{ location.hash = '#/plans/{plan_id}'; }}")
    rows = page.locator(".stage-row")
    expect(rows).to_have_count(BIG_STAGES)
    expect(page.get_by_role("button", name="Execute")).to_be_visible()
    seconds = time.perf_counter() - started
    timings = page.evaluate(
        "() => performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/plans/'))"
        ".map((e) => Math.round(e.duration))"
    )
    print(f"\n1,500-step plan page usable {seconds:.2f}s after opening it (GET /api/plans/:id took {timings} ms)")

    # each stage is one row of counts; no lines, and the help text promises none
    expect(rows.first.locator("summary")).to_have_text("Stage 1 · 13 steps · not started")
    expect(rows.last.locator("summary")).to_have_text("Stage 116 · 5 steps · not started")
    expect(page.locator("svg.edges")).to_have_count(0)
    expect(page.locator("#graph-help")).to_contain_text("no lines are drawn")
    expect(page.locator("#graph-help")).not_to_contain_text("Lines and")
    expect(page.locator(".step")).to_have_count(0)  # no step is built before its stage opens
    assert page_width(page) <= 1360  # no 33,000 px box

    # the critical path as a count with a disclosure, not 116 keys in the header
    critical = page.locator("#critical-path")
    expect(critical).to_contain_text(f"{BIG_STAGES} steps")
    expect(critical.locator("details")).not_to_have_attribute("open", "")
    expect(critical.get_by_role("link", name="big-1", exact=True)).to_be_hidden()
    expect(page.locator("#attention-none")).to_contain_text("nothing")

    # Execute above the fold; few tab stops between it and the gates, and none of them per step
    expect(page.get_by_role("button", name="Execute")).to_be_in_viewport()
    assert focusables_between(page, "#execute-button", "#gates-heading") < BIG_STAGES + 30

    # search by key: the exact key first; Enter opens its stage, focuses and highlights the step
    search = page.get_by_label("Find a step by key or title")
    search.fill("big-777")
    expect(page.locator("#step-matches li").first).to_contain_text("big-777")
    expect(page.locator("#step-match-count")).to_contain_text("match")
    search.press("Enter")
    step = page.locator(".step[data-item-key='big-777']")
    expect(step).to_be_focused()
    expect(step).to_have_class(re.compile(r"\bjumped\b"))
    expect(rows.nth(59)).to_have_attribute("open", "")  # 777 = 13 * 59 + 10: stage 60
    expect(rows.nth(59).locator("summary")).to_have_text("Stage 60 · 13 steps · not started")

    # the focused step's dependencies, as links that jump
    expect(step.locator(".deps")).to_have_text("after: big-764; before: big-790")
    screenshot(page, "plan-big-outline")
    step.locator(".deps").get_by_role("link", name="big-790").click()
    after = page.locator(".step[data-item-key='big-790']")
    expect(after).to_be_focused()
    expect(after).to_have_class(re.compile(r"\bjumped\b"))
    expect(after.locator(".deps")).to_have_text("after: big-777; before: big-803")
    expect(rows.nth(60)).to_have_attribute("open", "")

    # "Skip the graph" right after the actions moves focus to the gates
    page.get_by_role("button", name="Execute").focus()
    tab_until(page, "#skip-graph")
    page.keyboard.press("Enter")
    expect(page.locator("#gates-heading")).to_be_focused()
    expect(page.locator("#gates-heading")).to_be_in_viewport()
    screenshot(page, "plan-big-gates")


def test_progress_shows_done_running_waiting_failed_and_time_left_as_the_plan_runs(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    builtin_tool(conn, "gate.prg", "echo", approval=ONE_APPROVAL)
    deps = {"A1": [], "A2": [], "A3": [], "G": ["A1", "A2", "A3"], "Z1": ["G"], "Z2": ["G"]}
    plan_id = make_plan(client, tokens["planner"], conn, "prg", deps, tools={"G": "gate.prg"})["plan"]["id"]
    open_plan(page, console_url, tokens["planner"], plan_id)
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuemax", "6")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#plan-progress-text")).to_contain_text("0 done · 0 running · 6 waiting · 0 failed of 6 steps")
    expect(page.locator("#plan-progress-text")).to_contain_text("left")

    page.get_by_role("button", name="Execute").click()
    expect(page.locator("#plan-status")).to_have_text("paused")
    expect(bar).to_have_attribute("aria-valuenow", "3")
    text = page.locator("#plan-progress-text")
    expect(text).to_contain_text("3 done · 0 running · 3 waiting · 0 failed of 6 steps; about")
    expect(bar).to_have_attribute("aria-valuetext", re.compile(r"^3 of 6 steps done, about .+ left$"))
    expect(page.locator("#needs-attention")).to_contain_text("prg-G")
    expect(page.locator("#needs-attention")).to_contain_text("awaiting approval (0/1)")
    screenshot(page, "plan-progress")

    # someone approves: the open page follows, and nothing is left
    (pending,) = client.get(f"/api/approvals?plan_id={plan_id}", token=tokens["viewer"]).json()["approvals"]
    r = client.post(f"/api/approvals/{pending['id']}", json={"decision": "approve"}, token=tokens["approver"])
    assert r.status == 200, r.text
    expect(page.locator("#plan-status")).to_have_text("completed")
    expect(bar).to_have_attribute("aria-valuenow", "6")
    expect(text).to_contain_text("6 done · 0 running · 0 waiting · 0 failed of 6 steps; nothing left to run.")


def test_an_item_pulled_in_from_a_pack_not_selected_is_named_with_why(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    plt = insert_items(
        conn, "platform19", [{"key": "PLT-2", "title": "Rotate database credentials", "environment": "production"}]
    )
    insert_items(conn, "payments19", [{"key": "PAY-7", "title": "Charge saved cards", "deps": [plt["PLT-2"]]}])
    sign_in(page, console_url, tokens["planner"], "#/plans")
    page.locator("#new-plan summary").click()
    page.get_by_label(re.compile(r"^payments19")).check()  # one pack; its item needs the other's
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/plans/[0-9a-f-]{36}$"))
    pulled = page.locator("#plan-pulled-in")
    expect(pulled.locator("li")).to_have_count(1)
    expect(pulled.locator("li")).to_have_text(
        "PLT-2 Rotate database credentials, production, added as a dependency of PAY-7"
    )
    expect(pulled).to_contain_text("platform19")
    screenshot(page, "plan-pulled-in")
    pulled.get_by_role("link", name="PAY-7").click()
    expect(page.locator(".step[data-item-key='PAY-7']")).to_be_focused()
    expect(page.locator(".step[data-item-key='PAY-7'] .deps")).to_have_text("after: PLT-2; before: none")


def test_execute_is_disabled_with_the_reason_while_the_execute_flag_is_off(
    page: Page, console_url: str, client, tokens, conn, features
) -> None:
    plan_id = make_plan(client, tokens["planner"], conn, "flg", {"A": [], "B": ["A"]})["plan"]["id"]
    features("FEATURE_PLANNER_EXECUTE", False)
    open_plan(page, console_url, tokens["planner"], plan_id)
    execute = page.get_by_role("button", name="Execute")
    expect(execute).to_be_disabled()
    why = page.locator("#execute-why")
    expect(why).to_contain_text(re.compile(r"^Execution is switched off \(FEATURE_PLANNER_EXECUTE, by [^)]+\): "))
    expect(why).to_contain_text("steps wait until an admin switches it on.")
    expect(execute).to_have_attribute("aria-describedby", "execute-why")  # the reason is the button's description
    execute.focus()  # still reachable by keyboard (aria-disabled): Enter says why instead of starting
    page.keyboard.press("Enter")
    expect(page.locator("#execute-result [role=alert]")).to_contain_text(
        "Execution is switched off (FEATURE_PLANNER_EXECUTE"
    )
    screenshot(page, "plan-execute-switched-off")
    # nothing ran
    plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]
    assert plan["status"] == "ready"


def test_a_blocked_plan_says_why_and_a_planner_asks_for_the_override_an_admin_grants(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    plan_id = gate_blocked_plan(client, tokens, conn, "blk")["plan"]["id"]
    open_plan(page, console_url, tokens["planner"], plan_id)
    expect(page.locator("#plan-status")).to_have_text("blocked")
    expect(page.get_by_role("button", name="Execute")).to_be_disabled()
    expect(page.locator("#execute-why")).to_contain_text("The plan is blocked")
    why = page.locator("#blocked-why")
    expect(why).to_contain_text("blk-P changes production through t.write without an approval")
    expect(why).to_contain_text("Tip:")
    expect(page.locator("#needs-attention")).to_contain_text("blocked by a gate")

    # the request form is open for a blocked plan; a reason is required
    form = page.locator("#request-override")
    expect(form).to_have_attribute("open", "")
    expect(page.get_by_label("Override to ask for")).to_have_value("allow")
    page.get_by_role("button", name="Ask for the override").click()
    expect(page.locator("#request-result [role=alert]")).to_have_text(
        "A request needs a reason (at least 3 characters)."
    )
    expect(page.get_by_label("Why it should be overridden (required)")).to_be_focused()
    page.keyboard.type("staging ran it clean twice")
    page.get_by_role("button", name="Ask for the override").click()
    expect(page.locator("#request-result")).to_contain_text("You asked for the allow override")
    request = page.locator(".override-request").first
    expect(request).to_contain_text("allow the whole plan")
    expect(request).to_contain_text("open")
    expect(request).to_contain_text("“staging ran it clean twice”")
    expect(request.get_by_role("button", name="Grant")).to_have_count(0)  # a planner cannot decide
    screenshot(page, "plan-blocked-request")

    # an admin grants it in the browser, with a reason
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, console_url, tokens["admin"], f"#/plans/{plan_id}")
    request = page.locator(".override-request").first
    expect(request).to_contain_text("asked by")
    request.get_by_role("button", name="Grant").click()
    expect(request.locator("[role=alert]")).to_have_text("Granting needs a reason (at least 3 characters).")
    request.get_by_label("Reason for your decision").fill("checked the staging runs")
    screenshot(page, "plan-blocked-admin-decides")
    request.get_by_role("button", name="Grant").click()
    expect(page.locator("#request-decision")).to_contain_text("You granted the allow override")
    expect(request).to_contain_text("granted")
    expect(request.locator(".decided")).to_contain_text("“checked the staging runs”")
    expect(page.locator("#plan-status")).to_have_text("ready")
    expect(page.get_by_role("button", name="Execute")).to_be_enabled()
    expect(page.locator("#blocked-why")).to_be_hidden()
    expect(page.locator("#override")).to_be_visible()  # the admin's own override form stays
    screenshot(page, "plan-blocked-granted")
    listed = client.get(
        f"/api/automation/override-requests?plan_id={plan_id}&status=all", token=tokens["viewer"]
    ).json()["requests"]
    assert [(r["status"], r["decision_reason"]) for r in listed] == [("granted", "checked the staging runs")]


def test_at_390px_the_plan_page_fits_and_works_by_keyboard(
    page: Page, console_url: str, client, tokens, conn, retire
) -> None:
    retire.append("nar")
    page.set_viewport_size({"width": 390, "height": 844})
    plan_id = big_plan(client, tokens, conn, "nar")["plan"]["id"]
    open_plan(page, console_url, tokens["planner"], plan_id)
    expect(page.locator(".stage-row")).to_have_count(BIG_STAGES)
    assert page_width(page) <= 390

    # keyboard only: find a step, jump, then follow a dependency
    tab_until(page, "#step-search", limit=60)
    page.keyboard.type("nar-40")
    page.keyboard.press("Enter")
    step = page.locator(".step[data-item-key='nar-40']")
    expect(step).to_be_focused()
    tab_until(page, ".step[data-item-key='nar-40'] .deps a", limit=3)
    expect(page.locator(":focus")).to_have_text("nar-27")
    page.keyboard.press("Enter")
    expect(page.locator(".step[data-item-key='nar-27']")).to_be_focused()
    assert page_width(page) <= 390
    screenshot(page, "plan-390-outline")

    # a small blocked plan: its graph scrolls inside its box, the forms fit
    small = gate_blocked_plan(client, tokens, conn, "nbk")["plan"]["id"]
    page.goto(f"{console_url}/#/plans/{small}")
    expect(page.locator("#blocked-why")).to_be_visible()
    expect(page.locator("svg.edges path.edge")).to_have_count(1)
    assert page_width(page) <= 390
    screenshot(page, "plan-390-blocked")


def test_a_plan_that_does_not_exist_is_said_once_in_words(page: Page, console_url: str, tokens) -> None:
    missing = "00000000-0000-4000-8000-000000000019"
    sign_in(page, console_url, tokens["viewer"], f"#/plans/{missing}")
    alert = page.locator(".view-error [role=alert]")
    expect(alert).to_have_text(f"There is no plan {missing}. Check the link you followed.")
    expect(alert).not_to_contain_text("404")  # no status codes, no second copy of the API's detail
