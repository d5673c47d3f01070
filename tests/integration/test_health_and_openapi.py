"""GET /api/health and GET /api/openapi, served through the dev server's router."""

from __future__ import annotations

from lib.data import migrate
from lib.web import routes
from tests.support.wsgi_client import Client


def test_health_reports_database_and_migrations(client: Client) -> None:
    r = client.get("/api/health")
    assert r.status == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert [m["version"] for m in body["migrations"]] == [m.version for m in migrate.discover()]
    assert body["pending_migrations"] == []


def test_openapi_covers_every_function(client: Client) -> None:
    doc = client.get("/api/openapi").json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {r.template for r in routes.discover()}
    flags = doc["paths"]["/api/config/flags"]
    assert set(flags) == {"get", "put"}
    body_ref = flags["put"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.split("/")[-1] in doc["components"]["schemas"]
    assert flags["put"]["security"] == [{"bearerAuth": []}]
    assert "422" in flags["put"]["responses"]


def test_each_endpoint_declares_the_route_its_file_serves() -> None:
    for route in routes.discover():
        app = routes.load(route).app
        assert app.path == route.template, route.file
