"""JWT verification through a real endpoint: HS256 with the project secret,
RS256 and ES256 through a JWKS served on loopback, roles and their ranks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lib import settings
from lib.web import auth
from tests.support.wsgi_client import Client

FLAGS = "/api/config/flags"


def claims(role: str | None = "viewer", **extra) -> dict:
    now = int(time.time())
    body = {
        "sub": "0b8f6c1e-6c43-4a59-9d1b-1a2b3c4d5e6f",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        "email": "ada@example.com",
    }
    if role:
        body["app_metadata"] = {"nofx_role": role}
    body.update(extra)
    return body


def hs256(payload: dict, secret: str | None = None) -> str:
    return jwt.encode(payload, secret or settings.secret("SUPABASE_JWT_SECRET"), algorithm="HS256")


def test_valid_token_reads(client: Client) -> None:
    assert client.get(FLAGS, token=hs256(claims())).status == 200


@pytest.mark.parametrize(
    ("token_factory", "detail"),
    [
        (lambda: hs256(claims(exp=int(time.time()) - 3600)), "expired"),
        (lambda: hs256(claims(), secret="not-the-project-secret-at-all-0123456789"), "invalid token"),
        (lambda: hs256(claims(aud="someone-else")), "audience"),
        (lambda: "not.a.jwt", "malformed"),
        (lambda: jwt.encode(claims(), key=None, algorithm="none"), "unsupported"),
    ],
)
def test_bad_tokens_are_401(client: Client, token_factory, detail: str) -> None:
    r = client.get(FLAGS, token=token_factory())
    assert r.status == 401
    assert detail in r.json()["detail"]
    assert (
        r.header(
            "www-authenticate",
        )
        is not None
    )


def test_missing_header_is_401(client: Client) -> None:
    assert client.get(FLAGS).status == 401
    assert client.get(FLAGS, headers={"authorization": "Basic abc"}).status == 401


def test_missing_role_is_403(client: Client) -> None:
    r = client.get(FLAGS, token=hs256(claims(role=None)))
    assert r.status == 403 and "nofx_role" in r.json()["detail"]
    assert client.get(FLAGS, token=hs256(claims(role="superuser"))).status == 403


def test_role_ranks(client: Client, tokens: dict[str, str]) -> None:
    body = {"flags": {"FEATURE_AUTO_PLANNER": True}, "reason": "role check"}
    for role in ("viewer", "planner", "approver"):
        r = client.put(FLAGS, json=body, token=tokens[role])
        assert r.status == 403, role
        assert "admin" in r.json()["detail"]
    assert client.put(FLAGS, json=body, token=tokens["admin"]).status == 200


def test_service_role_acts_as_admin(client: Client) -> None:
    token = auth.mint_token("service_role")
    body = {"flags": {"FEATURE_AUTO_PLANNER": True}, "reason": "role check"}
    assert client.put(FLAGS, json=body, token=token).status == 200


class _Jwks(BaseHTTPRequestHandler):
    document = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def jwks(monkeypatch: pytest.MonkeyPatch):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, key, alg in (("rsa-1", rsa_key, "RS256"), ("ec-1", ec_key, "ES256")):
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
        jwk.update(kid=kid, alg=alg, use="sig")
        keys.append(jwk)
    _Jwks.document = json.dumps({"keys": keys}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SUPABASE_JWKS_URL", f"http://127.0.0.1:{server.server_port}/auth/v1/.well-known/jwks.json")
    yield {"RS256": ("rsa-1", rsa_key), "ES256": ("ec-1", ec_key)}
    server.shutdown()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_asymmetric_tokens_through_jwks(client: Client, jwks, alg: str) -> None:
    kid, key = jwks[alg]
    token = jwt.encode(claims("admin"), key, algorithm=alg, headers={"kid": kid})
    assert client.get(FLAGS, token=token).status == 200
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    forged = jwt.encode(claims("admin"), other, algorithm=alg, headers={"kid": kid})
    assert client.get(FLAGS, token=forged).status == 401
    unknown_kid = jwt.encode(claims("admin"), key, algorithm=alg, headers={"kid": "nope"})
    assert client.get(FLAGS, token=unknown_kid).status == 401


def test_cli_mints_a_working_token(client: Client) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "lib.cli", "token", "--role", "approver"],
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.ROOT,
    )
    principal = auth.principal_from_claims(auth.verify_token(out.stdout.strip()))
    assert principal.role == "approver"
    assert client.get(FLAGS, token=out.stdout.strip()).status == 200
