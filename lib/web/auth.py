"""Who is calling: Supabase JWTs in, a Principal with a NOFX role out.

HS256 tokens are checked against SUPABASE_JWT_SECRET; RS256/ES256 tokens
against the project's JWKS (Supabase's asymmetric signing keys). The role lives
in ``app_metadata.nofx_role``; a token whose ``role`` claim is ``service_role``
acts as admin, because that is the key Supabase hands to trusted servers.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from lib import settings
from lib.web.problems import Problem

ROLES = ("viewer", "planner", "approver", "admin")
RANK = {name: i for i, name in enumerate(ROLES)}
ASYMMETRIC = ("RS256", "ES256")
LEEWAY_SECONDS = 30

_jwks_clients: dict[str, jwt.PyJWKClient] = {}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str | None
    email: str | None = None
    source: str = "api"  # api, webhook, console, cron, cli
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        """What the audit trail calls this actor."""
        return self.email or self.subject

    def has(self, minimum: str) -> bool:
        return self.role is not None and RANK[self.role] >= RANK[minimum]


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        detail,
        type="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="nofx"'},
    )


def _signing_key(token: str, header: dict[str, Any]) -> Any:
    alg = header.get("alg")
    if alg == "HS256":
        secret = settings.secret("SUPABASE_JWT_SECRET")
        if not secret:
            raise _unauthorized("HS256 tokens are not accepted: SUPABASE_JWT_SECRET is not configured")
        return secret
    if alg in ASYMMETRIC:
        url = settings.jwks_url()
        if not url:
            raise _unauthorized(f"{alg} tokens need SUPABASE_JWKS_URL or SUPABASE_URL")
        client = _jwks_clients.get(url)
        if client is None:
            client = _jwks_clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)
        try:
            return client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise _unauthorized(f"signing key not found in JWKS: {exc}") from exc
    raise _unauthorized(f"unsupported token algorithm {alg!r}")


def verify_token(token: str) -> dict[str, Any]:
    """The token's claims, or a 401 saying what was wrong with it."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _unauthorized(f"malformed token: {exc}") from exc
    key = _signing_key(token, header)
    try:
        # A user's session names its person (sub); Supabase's service_role
        # key names nobody (no sub, no aud) and acts as admin
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            options={"require": ["exp"], "verify_aud": False},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc
    # Supabase's service_role key carries no audience; user sessions must.
    if claims.get("role") != "service_role":
        if not isinstance(claims.get("sub"), str) or not claims["sub"].strip():
            raise _unauthorized("invalid token: a user session must name its subject (sub)")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if settings.jwt_audience() not in audiences:
            raise _unauthorized(f"token audience {aud!r} is not {settings.jwt_audience()!r}")
    return claims


def principal_from_claims(claims: dict[str, Any], source: str = "api") -> Principal:
    if claims.get("role") == "service_role":
        role: str | None = "admin"
    else:
        meta = claims.get("app_metadata") or {}
        role = meta.get("nofx_role") if isinstance(meta, dict) else None
        if role not in RANK:
            role = None
    return Principal(
        # the service_role key names no person: it is recorded as service_role
        subject="service_role" if claims.get("role") == "service_role" else str(claims["sub"]),
        role=role,
        email=claims.get("email"),
        source=source,
        claims=claims,
    )


def authenticate(authorization: str | None) -> Principal:
    if not authorization:
        raise _unauthorized("missing Authorization header (expected: Bearer <JWT>)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization header must be: Bearer <JWT>")
    principal = principal_from_claims(verify_token(token.strip()))
    return principal


def server_principal(authorization: str | None, secret_name: str) -> Principal:
    """A call from our own servers (the tick, dispatched workers): a bearer
    secret from the environment, never a user's token."""
    import hmac

    secret = settings.secret(secret_name)
    expected = f"Bearer {secret}" if secret else None
    if not expected or not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise _unauthorized(f"this endpoint needs Authorization: Bearer ${secret_name}")
    return Principal(subject=f"server:{secret_name}", role=None, source="server")


def require_role(principal: Principal, minimum: str) -> None:
    if principal.role is None:
        raise Problem(403, "token carries no app_metadata.nofx_role", type="forbidden")
    if not principal.has(minimum):
        raise Problem(
            403,
            f"role {principal.role!r} may not do this; it needs {minimum!r} or above",
            type="forbidden",
        )


def mint_token(
    role: str,
    *,
    subject: str | None = None,
    email: str | None = None,
    ttl_seconds: int = 12 * 3600,
    secret: str | None = None,
    audience: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An HS256 token shaped like a Supabase session, for local development."""
    if role not in RANK and role != "service_role":
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)} or service_role")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iat": now,
        "exp": now + ttl_seconds,
        "iss": "nofx-dev",
    }
    if role == "service_role":
        claims.update(role="service_role", sub="service_role")
    else:
        # Supabase subjects are UUIDs (auth.uid() casts them): keep dev ones alike.
        claims.update(
            sub=subject or str(uuid.uuid5(uuid.NAMESPACE_URL, f"nofx-dev:{role}")),
            aud=audience or settings.jwt_audience(),
            role="authenticated",
            email=email or f"{role}@nofx.local",
            app_metadata={"nofx_role": role},
        )
    if extra:
        claims.update(extra)
    key = secret or settings.secret("SUPABASE_JWT_SECRET")
    if not key:
        raise RuntimeError("SUPABASE_JWT_SECRET is not set")
    return jwt.encode(claims, key, algorithm="HS256")
