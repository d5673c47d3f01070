"""Supabase Storage for real: the project's SupabaseStorage through the real
`supabase`/storage3 client against a loopback server that speaks Storage's
REST routes (tests/support/storage_server.py), and uploads that follow the
commit, so a storage outage never fails a step or an approval request."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from storage3.exceptions import StorageApiError

from lib import settings
from lib.data import storage, uploads
from lib.ops import health
from tests.browser.console import paused_plan
from tests.support import storage_server
from tests.support.plans import executed_plan
from tests.support.wsgi_client import Client

CRON = {"authorization": f"Bearer {settings.secret('CRON_SECRET')}"}


@pytest.fixture
def supabase_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[storage_server.StorageState]:
    """The app's storage is the loopback Supabase Storage for this test."""
    with storage_server.running() as (state, url):
        monkeypatch.setenv("SUPABASE_URL", url)
        monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", storage_server.SERVICE_KEY)
        monkeypatch.setattr(storage, "_backend", None)
        yield state
    storage._backend = None  # the next test's settings decide again


def _download(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - a loopback URL the test made
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_client_writes_reads_and_signs_through_storage_routes(supabase_storage) -> None:
    backend = storage.backend()
    assert isinstance(backend, storage.SupabaseStorage)
    key, digest = storage.put_json("snapshots/client-test", {"plan": {"status": "ready"}})
    assert ("nofx", key) in supabase_storage.objects
    assert hashlib.sha256(backend.get(key)).hexdigest() == digest
    assert storage.put_json("snapshots/client-test", {"plan": {"status": "ready"}}) == (key, digest)  # upsert

    status, body = _download(backend.signed_url(key, 60))
    assert status == 200 and hashlib.sha256(body).hexdigest() == digest
    before = len(supabase_storage.requests)
    urls = backend.signed_urls([key, "snapshots/client-test/missing.json", key])
    assert supabase_storage.requests[before:] == [("POST", "/storage/v1/object/sign/nofx")]  # one request
    assert list(urls) == [key, "snapshots/client-test/missing.json"]  # each distinct key once, in one request
    assert urls["snapshots/client-test/missing.json"] is None and urls[key]

    expiring = backend.signed_url(key, 60)
    supabase_storage.clock_skew = 120  # two minutes later
    status, body = _download(expiring)
    assert status == 400 and b"exp" in body


def test_storage_errors_reach_the_caller_as_storage_errors(supabase_storage) -> None:
    backend = storage.backend()
    supabase_storage.answers.append(503)
    with pytest.raises(StorageApiError) as outage:
        backend.put("snapshots/errors/a.json", b"{}")
    assert str(outage.value.status) == "503"  # Storage sends statusCode as text
    with pytest.raises(StorageApiError) as missing:
        backend.get("snapshots/errors/none.json")
    assert str(missing.value.status) == "400" and "not found" in missing.value.message.lower()
    supabase_storage.buckets.clear()  # a project whose bucket was never made
    with pytest.raises(StorageApiError, match="Bucket not found"):
        backend.put("snapshots/errors/b.json", b"{}")


def test_a_plan_snapshots_to_storage_after_each_commit_and_its_links_download(
    client: Client, tokens, conn, supabase_storage
) -> None:
    plan_id = executed_plan(client, tokens, conn, "sst1")
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM storage_outbox WHERE key LIKE %s", (f"snapshots/{plan_id}/%",)
        ).fetchone()["n"]
        == 0
    )
    stored = {name for bucket, name in supabase_storage.objects if name.startswith(f"snapshots/{plan_id}/")}
    assert stored
    trail = client.get(f"/api/audit/{plan_id}?verify=full", token=tokens["viewer"]).json()
    assert trail["chain"]["ok"] is True
    final = trail["entries"][-1]["snapshot"]
    assert final["key"] in stored and final["verified"] is True
    status, body = _download(final["url"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == final["sha256"]


def test_a_storage_outage_fails_nothing_and_the_tick_uploads_afterwards(
    client: Client, tokens, conn, supabase_storage
) -> None:
    supabase_storage.answers.extend([500] * 200)  # Storage down for everything this plan does
    plan_id = executed_plan(client, tokens, conn, "sst2")  # completes all the same
    _, approval = paused_plan(client, tokens, conn, "sst3")  # and an approval request is made
    waiting = conn.execute(
        "SELECT key, attempts, last_error FROM storage_outbox WHERE key LIKE %s OR key LIKE %s",
        (f"snapshots/{plan_id}/%", f"approvals/{approval['id']}/%"),
    ).fetchall()
    assert waiting and all(w["attempts"] == 1 and "500" in w["last_error"] for w in waiting)
    assert any(w["key"].startswith("approvals/") for w in waiting)

    # meanwhile the trail verifies from the outbox, and says the link is not there yet
    trail = client.get(f"/api/audit/{plan_id}?verify=full", token=tokens["viewer"]).json()
    assert trail["chain"]["ok"] is True and trail["snapshots_ok"] is True
    assert trail["entries"][-1]["snapshot"]["url"] is None
    # and health tells the operator
    report = client.get("/api/health").json()["storage"]
    assert report["backend"] == "supabase" and report["pending_uploads"] >= len(waiting)
    assert report["failed_uploads"] >= len(waiting) and "500" in report["last_error"]

    supabase_storage.answers.clear()  # Storage is back; the retries are due
    conn.execute(
        "UPDATE storage_outbox SET next_attempt_at = now() WHERE key = ANY(%s)", ([w["key"] for w in waiting],)
    )
    tick = client.get("/api/cron/tick", headers=CRON).json()
    assert tick["uploads"]["uploaded"] >= len(waiting)
    assert (
        conn.execute(
            "SELECT count(*) AS n FROM storage_outbox WHERE key = ANY(%s)", ([w["key"] for w in waiting],)
        ).fetchone()["n"]
        == 0
    )
    assert {w["key"] for w in waiting} <= {name for _, name in supabase_storage.objects}
    after = client.get(f"/api/audit/{plan_id}?verify=full", token=tokens["viewer"]).json()
    assert after["chain"]["ok"] is True and after["entries"][-1]["snapshot"]["url"]


def test_failed_uploads_back_off(client: Client, conn, supabase_storage) -> None:
    key = "snapshots/backoff/" + "0" * 64 + ".json"
    conn.execute("INSERT INTO storage_outbox (key, data) VALUES (%s, '{}')", (key,))
    supabase_storage.answers.extend([503, 503])
    waits = []
    for _ in range(2):
        uploads.upload(conn, [key])
        row = conn.execute(
            "SELECT attempts, extract(epoch FROM next_attempt_at - now()) AS wait FROM storage_outbox WHERE key = %s",
            (key,),
        ).fetchone()
        waits.append((row["attempts"], round(float(row["wait"]))))
    assert waits == [(1, uploads.BACKOFF[0]), (2, uploads.BACKOFF[1])]
    uploads.upload(conn, [key])  # Storage answers now
    assert conn.execute("SELECT 1 FROM storage_outbox WHERE key = %s", (key,)).fetchone() is None


def test_on_vercel_without_storage_settings_health_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERCEL", "1")
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
    backend, bucket, problem = storage.configuration()
    assert bucket is None
    assert backend == "missing" and problem and "SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY" in problem
    report = health.check()
    assert report.storage.backend == "missing" and report.status == "storage not configured"
