"""Browser fixtures: Debian's Chromium driven by Playwright (never a downloaded
browser), a fresh context per test, screenshots under test-artifacts/screenshots/.

A missing Chromium is a failure, not a skip: the console is part of the product.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("NOFX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
]
VIEWPORT = {"width": 1360, "height": 900}


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `make browser` (apt-get install chromium) "
            "to run the console's browser tests",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def console_url(live_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The live server, and signed links (artifacts, snapshots) that point at it."""
    monkeypatch.setenv("NOFX_PUBLIC_URL", live_server)
    return live_server


@pytest.fixture
def page(browser, console_url: str) -> Iterator[object]:
    """A fresh context (own sessionStorage) per test; uncaught page errors fail the test,
    and nothing may be fetched from anywhere but the console's own server."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    outside: list[str] = []
    errors: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if url.startswith(console_url) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route(re.compile(r".*"), only_local)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not outside, f"the console tried to load from the network: {outside}"
