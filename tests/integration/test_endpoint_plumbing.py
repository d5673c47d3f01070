"""The endpoint helper and the dev server's router, on the real PostgreSQL.

A small api/ tree of test endpoints (written to a temp folder) exercises what
every real endpoint relies on: file routes with [param] segments, method
dispatch, problem documents, body caps, idempotency keys, the 500 path.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

from lib.web.devserver import DevServer
from tests.support.wsgi_client import Client

ECHO = """
from pydantic import BaseModel, ConfigDict, Field
from lib.web.endpoint import Endpoint
from lib.trail import events

app = Endpoint("{path}")

class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    count: int = 1

@app.get(role="viewer")
def read(ctx):
    return {{"params": ctx.params, "who": ctx.principal.role}}

@app.post(role="planner", body=Thing, status=201, max_body=2048)
def create(ctx):
    event_id = events.emit(ctx.conn, "flag.changed", None, {{"probe": ctx.body.name}})
    return {{"event_id": event_id, "name": ctx.body.name, "count": ctx.body.count}}
"""

BOOM = """
from lib.web.endpoint import Endpoint
app = Endpoint("/api/boom")

@app.get(public=True)
def read(ctx):
    raise RuntimeError("secret internals: password=hunter2")
"""


@pytest.fixture(scope="module")
def probe_client(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Client:
    root = tmp_path_factory.mktemp("probe")
    api = root / "api"
    (api / "things").mkdir(parents=True)
    (api / "things" / "index.py").write_text(textwrap.dedent(ECHO.format(path="/api/things")))
    (api / "things" / "[thingId].py").write_text(textwrap.dedent(ECHO.format(path="/api/things/{thingId}")))
    (api / "things" / "special.py").write_text(textwrap.dedent(ECHO.format(path="/api/things/special")))
    (api / "boom.py").write_text(BOOM)
    (api / "_helpers.py").write_text("raise SystemExit('private files are not functions')\n")
    public = root / "public"
    public.mkdir()
    (public / "hello.html").write_text("<h1>hello</h1>")
    return Client(DevServer(api_dir=api, public_dir=public))


def test_routes_follow_vercel_file_rules(probe_client: Client, tokens: dict[str, str]) -> None:
    r = probe_client.get("/api/things/abc-123", token=tokens["viewer"])
    assert r.status == 200 and r.json()["params"] == {"thingId": "abc-123"}
    # a static file beats the dynamic segment beside it
    r = probe_client.get("/api/things/special", token=tokens["viewer"])
    assert r.json()["params"] == {}
    # index.py serves the folder
    assert probe_client.get("/api/things", token=tokens["viewer"]).status == 200
    # files starting with _ are not functions
    assert probe_client.get("/api/_helpers").status == 404
    assert probe_client.get("/api/nowhere").json()["status"] == 404
    assert probe_client.get("/hello.html").text == "<h1>hello</h1>"
    assert probe_client.get("/../etc/passwd").status == 404


def test_vercel_style_query_parameter_is_honoured(probe_client: Client, tokens: dict[str, str]) -> None:
    # On Vercel the [thingId] segment arrives as ?thingId= on the function's own path.
    from lib.web import routes

    route = next(r for r in probe_client.app.routes if r.params)
    endpoint = routes.load(route).app
    r = Client(endpoint).get("/api/things/whatever?thingId=x1", token=tokens["viewer"])
    assert r.json()["params"] == {"thingId": "x1"}


def test_wrong_method_is_405_with_allow(probe_client: Client, tokens: dict[str, str]) -> None:
    r = probe_client.request("DELETE", "/api/things", token=tokens["admin"])
    assert r.status == 405
    assert r.header("allow") == "GET, POST"
    assert r.header("content-type") == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ('{"name": "x",', 400, ["body"]),
        ('{"name": 5}', 422, ["body", "name"]),
        ('{"name": "x", "count": "many"}', 422, ["body", "count"]),
        ('{"name": "x", "colour": "red"}', 422, ["body", "colour"]),
        ("{}", 422, ["body", "name"]),
        ("[1, 2]", 422, ["body"]),
    ],
)
def test_bad_bodies_are_problem_documents_naming_the_field(
    probe_client: Client, tokens: dict[str, str], body: str, status: int, loc: list[str]
) -> None:
    r = probe_client.post(
        "/api/things", data=body, token=tokens["planner"], headers={"content-type": "application/json"}
    )
    assert r.status == status
    doc = r.json()
    assert r.header("content-type") == "application/problem+json"
    assert set(doc) >= {"type", "title", "status", "detail"}
    assert doc["errors"][0]["loc"] == loc
    assert ".".join(map(str, loc)) in doc["detail"]


def test_oversize_and_non_json_bodies(probe_client: Client, tokens: dict[str, str]) -> None:
    big = '{"name": "' + "x" * 5000 + '"}'
    r = probe_client.post(
        "/api/things", data=big, token=tokens["planner"], headers={"content-type": "application/json"}
    )
    assert r.status == 413
    r = probe_client.post(
        "/api/things",
        data="name=x",
        token=tokens["planner"],
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 415


def test_a_crash_is_a_500_without_internals(probe_client: Client, caplog: pytest.LogCaptureFixture) -> None:
    r = probe_client.get("/api/boom", headers={"x-request-id": "req-42"})
    assert r.status == 500
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.json()["request_id"] == "req-42"
    assert any("req-42" in rec.getMessage() and "hunter2" in rec.getMessage() for rec in caplog.records)


def test_idempotency_replay_and_conflict(probe_client: Client, tokens: dict[str, str], conn) -> None:
    headers = {"idempotency-key": "probe-key-1"}
    first = probe_client.post("/api/things", json={"name": "alpha"}, token=tokens["planner"], headers=headers)
    assert first.status == 201 and first.header("idempotent-replayed") is None
    again = probe_client.post("/api/things", json={"name": "alpha"}, token=tokens["planner"], headers=headers)
    assert again.status == 201
    assert again.header("idempotent-replayed") == "true"
    assert again.json() == first.json()
    # the replay did not act twice
    n = conn.execute("SELECT count(*) AS n FROM events WHERE data->>'probe' = 'alpha'").fetchone()["n"]
    assert n == 1
    other = probe_client.post("/api/things", json={"name": "beta"}, token=tokens["planner"], headers=headers)
    assert other.status == 409 and other.json()["type"].endswith("idempotency-key-reused")
    # keys are per caller: an admin's request under the same key is its own
    admin = probe_client.post("/api/things", json={"name": "alpha"}, token=tokens["admin"], headers=headers)
    assert admin.status == 201 and admin.header("idempotent-replayed") is None


def test_failed_requests_are_not_stored_under_their_key(probe_client: Client, tokens: dict[str, str]) -> None:
    headers = {"idempotency-key": "probe-key-fix"}
    bad = probe_client.post("/api/things", json={"name": ""}, token=tokens["planner"], headers=headers)
    assert bad.status == 422
    fixed = probe_client.post("/api/things", json={"name": "fixed"}, token=tokens["planner"], headers=headers)
    assert fixed.status == 201


def test_concurrent_requests_with_one_key_execute_once(probe_client: Client, tokens: dict[str, str], conn) -> None:
    headers = {"idempotency-key": "probe-key-race"}
    barrier = threading.Barrier(8)
    results = []

    def call() -> None:
        barrier.wait()
        results.append(
            probe_client.post("/api/things", json={"name": "race"}, token=tokens["planner"], headers=headers)
        )

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status for r in results] == [201] * 8
    assert sum(1 for r in results if r.header("idempotent-replayed") is None) == 1
    assert len({r.json()["event_id"] for r in results}) == 1
    n = conn.execute("SELECT count(*) AS n FROM events WHERE data->>'probe' = 'race'").fetchone()["n"]
    assert n == 1


def test_idempotency_key_is_validated(probe_client: Client, tokens: dict[str, str]) -> None:
    r = probe_client.post(
        "/api/things", json={"name": "x"}, token=tokens["planner"], headers={"idempotency-key": "k" * 300}
    )
    assert r.status == 422 and r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_private_helpers_never_import(tmp_path: Path) -> None:
    # discovering routes must not import anything (a broken helper stays inert)
    from lib.web import routes

    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "_x.py").write_text("raise SystemExit(1)\n")
    (tmp_path / "api" / "ok.py").write_text("app = None\n")
    assert [r.template for r in routes.discover(tmp_path / "api")] == ["/api/ok"]
