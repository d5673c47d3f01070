"""The admin console's page and settings, served by functions so the page's
Content-Security-Policy names exactly what it may reach: its own origin and
the one Supabase project of this deployment (SUPABASE_URL), nothing a link
could add. The page's static assets stay in public/.

`GET /` (rewritten to /api/console) answers the page with the policy as a
response header (frame-ancestors 'none' included, which a meta tag cannot
carry); `GET /config.json` (rewritten to /api/console/config) answers the
Supabase settings the page may use: the URL and the anon key, both public by
design. The console reads its settings from there and nowhere else.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from lib import settings

PAGE = settings.ROOT / "lib" / "web" / "console.html"


class ConsoleSettings(BaseModel):
    supabase_url: str | None = None
    supabase_anon_key: str | None = None


class PageQuery(BaseModel):
    """Whatever a link to the page carries is the page's business (its hash
    routes, a stale bookmark): nothing in it changes the answer."""

    model_config = ConfigDict(extra="ignore")


def console_settings() -> ConsoleSettings:
    url, key = settings.env("SUPABASE_URL"), settings.env("SUPABASE_ANON_KEY")
    if not url or not key:
        return ConsoleSettings()
    return ConsoleSettings(supabase_url=url.rstrip("/"), supabase_anon_key=key)


def policy(config: ConsoleSettings) -> str:
    """The page's Content-Security-Policy: connections to this origin and, when
    one is configured, the Supabase project's host (its REST and Realtime)."""
    connect = ["'self'"]
    if config.supabase_url:
        parts = urlsplit(config.supabase_url)
        socket = "wss" if parts.scheme == "https" else "ws"
        connect += [f"{parts.scheme}://{parts.netloc}", f"{socket}://{parts.netloc}"]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )


@cache
def page() -> bytes:
    return PAGE.read_bytes()


def page_headers() -> dict[str, Any]:
    return {"Content-Security-Policy": policy(console_settings()), "X-Frame-Options": "DENY"}
