"""The console's page, its settings and its assets as a browser receives them
from the dev server, which follows vercel.json's rewrites and headers: the
Content-Security-Policy names only this origin and the configured Supabase
project, nothing a link can add, and no page may be framed."""

from __future__ import annotations

import json

import pytest

from lib import settings
from tests.support.wsgi_client import Client


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: rest for name, *rest in (part.split() for part in policy.split(";") if part.strip())}


@pytest.fixture
def supabase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SUPABASE_URL", "https://abcd.supabase.co/")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key")
    return "https://abcd.supabase.co"


def test_the_page_allows_connections_to_itself_and_the_configured_project_only(client: Client, supabase: str) -> None:
    for path in ("/", "/index.html", "/?supabase_url=https://attacker.test&supabase_anon_key=k"):
        r = client.get(path)
        assert r.status == 200 and r.headers["content-type"].startswith("text/html")
        assert b'<script type="module" src="app.js"></script>' in r.body
        policy = _directives(r.headers["content-security-policy"])
        assert policy["connect-src"] == ["'self'", "https://abcd.supabase.co", "wss://abcd.supabase.co"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["script-src"] == ["'self'"]
        assert r.headers["x-frame-options"] == "DENY"
        assert "attacker" not in r.headers["content-security-policy"]


def test_without_a_project_the_page_connects_to_itself_only(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_ANON_KEY", raising=False)
    policy = _directives(client.get("/").headers["content-security-policy"])
    assert policy["connect-src"] == ["'self'"]
    assert client.get("/config.json").json() == {"supabase_url": None, "supabase_anon_key": None}


def test_the_settings_come_from_the_deployment_never_from_the_request(client: Client, supabase: str) -> None:
    r = client.get("/config.json?supabase_url=https://attacker.test&supabase_anon_key=k")
    assert r.status == 200
    assert r.json() == {"supabase_url": supabase, "supabase_anon_key": "anon-key"}


def test_static_assets_and_api_replies_carry_the_policy_from_vercel_json(client: Client) -> None:
    configured = {
        h["key"].lower(): h["value"]
        for rule in json.loads((settings.ROOT / "vercel.json").read_text())["headers"]
        for h in rule["headers"]
    }
    for path in ("/app.js", "/app.css", "/js/live.js", "/api/health"):
        r = client.get(path)
        assert r.status in (200, 503), path
        assert r.headers["content-security-policy"] == configured["content-security-policy"], path
        assert _directives(r.headers["content-security-policy"])["frame-ancestors"] == ["'none'"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"


def test_the_page_is_not_a_static_file_anymore() -> None:
    # a static index.html would be served by Vercel's filesystem before the rewrite, without the policy
    assert not (settings.ROOT / "public" / "index.html").exists()
    assert not (settings.ROOT / "public" / "config.json").exists()
