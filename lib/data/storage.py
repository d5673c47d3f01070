"""Snapshots and artifacts: Supabase Storage in production, a local folder here.

Both hand out signed, expiring URLs. The local backend signs with HMAC-SHA256
over the object key and the expiry (NOFX_STORAGE_SIGNING_KEY) and is served by
the dev server under /_storage/. Objects are content-addressed by their
callers (snapshots are named by their digest), so writing one that a rolled
back transaction never referenced leaves a harmless orphan, never a lie.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import mimetypes
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

from lib import settings
from lib.web.problems import CONTENT_TYPE, TITLES, Problem

log = logging.getLogger("nofx.storage")

LOCAL_PREFIX = "/_storage/"
DEFAULT_TTL = 15 * 60


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...
    def get(self, key: str) -> bytes: ...
    def signed_url(self, key: str, expires_in: int = DEFAULT_TTL) -> str: ...
    def signed_urls(self, keys: Sequence[str], expires_in: int = DEFAULT_TTL) -> dict[str, str | None]: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or settings.data_dir() / "storage"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{time.monotonic_ns()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def signed_url(self, key: str, expires_in: int = DEFAULT_TTL) -> str:
        url = self.signed_urls([key], expires_in)[key]
        assert url is not None  # a local link is an HMAC: it can always be made
        return url

    def signed_urls(self, keys: Sequence[str], expires_in: int = DEFAULT_TTL) -> dict[str, str | None]:
        """{key: signed URL} for each distinct key (an HMAC each). Relative to
        the server that answered, unless NOFX_PUBLIC_URL says where it is (a
        link sent elsewhere must be absolute)."""
        expires = int(time.time()) + expires_in
        base = (settings.env("NOFX_PUBLIC_URL", "") or "").rstrip("/")
        return {
            key: f"{base}{LOCAL_PREFIX}{quote(_check_key(key))}?expires={expires}&sig={sign(key, expires)}"
            for key in dict.fromkeys(keys)
        }


class SupabaseStorage:
    """Supabase Storage through the official client (storage3)."""

    def __init__(self, url: str, service_key: str, bucket: str) -> None:
        from supabase import create_client

        self.client = create_client(url, service_key)
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        self.client.storage.from_(self.bucket).upload(
            _check_key(key), data, {"content-type": content_type, "upsert": "true"}
        )

    def get(self, key: str) -> bytes:
        return bytes(self.client.storage.from_(self.bucket).download(_check_key(key)))

    def signed_url(self, key: str, expires_in: int = DEFAULT_TTL) -> str:
        url = self.signed_urls([key], expires_in)[key]
        if url is None:
            raise FileNotFoundError(f"could not sign {key}: no such object")
        return url

    def signed_urls(self, keys: Sequence[str], expires_in: int = DEFAULT_TTL) -> dict[str, str | None]:
        """{key: signed URL} for each distinct key, in one request; None for
        a key Storage has no object for (yet: its upload may still wait in
        the outbox, lib/data/uploads.py)."""
        distinct = [_check_key(key) for key in dict.fromkeys(keys)]
        if not distinct:
            return {}
        answers = self.client.storage.from_(self.bucket).create_signed_urls(distinct, expires_in)
        urls = {a["path"]: a.get("signedURL") or a.get("signedUrl") for a in answers}
        return {key: (str(urls[key]) if urls.get(key) else None) for key in distinct}


_backend: Storage | None = None


def configuration() -> tuple[str, str | None, str | None]:
    """(backend, bucket, problem) from the environment, without connecting:
    "supabase" with SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, else "local"
    off Vercel, else "missing" with what to set (Vercel's disk does not persist)."""
    url, key = settings.env("SUPABASE_URL"), settings.env("SUPABASE_SERVICE_ROLE_KEY")
    bucket = settings.env("NOFX_STORAGE_BUCKET", "nofx") or "nofx"
    if url and key:
        return "supabase", bucket, None
    if settings.on_vercel():
        missing = [name for name, v in (("SUPABASE_URL", url), ("SUPABASE_SERVICE_ROLE_KEY", key)) if not v]
        return "missing", None, f"set {' and '.join(missing)}: snapshots and artifacts wait in the upload outbox"
    return "local", None, None


@cache
def report_at_start() -> None:
    """Say once per process, at start, when storage settings are missing,
    rather than on the first step that takes a snapshot."""
    kind, bucket, problem = configuration()
    if problem:
        log.error("storage is not configured: %s", problem)
    else:
        log.info("storage: %s%s", kind, f" (bucket {bucket})" if bucket else "")


def backend() -> Storage:
    global _backend
    if _backend is None:
        kind, bucket, problem = configuration()
        if kind == "supabase":
            _backend = SupabaseStorage(
                settings.env("SUPABASE_URL") or "", settings.env("SUPABASE_SERVICE_ROLE_KEY") or "", bucket or "nofx"
            )
        elif problem:
            raise RuntimeError(problem)
        else:
            _backend = LocalStorage()
    return _backend


def links(keys: Sequence[str], expires_in: int = DEFAULT_TTL) -> dict[str, str | None]:
    """Signed links for a page of objects, or None for each when storage
    cannot sign them now (an outage, settings missing): a link is extra, the
    page it sits on must still answer."""
    try:
        return backend().signed_urls(keys, expires_in)
    except Exception as exc:  # noqa: BLE001 - any storage failure only costs the links
        log.warning("could not sign %d storage links: %s", len(keys), exc)
        return dict.fromkeys(keys)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def put_bytes(key_prefix: str, data: bytes) -> tuple[str, str]:
    """Store a JSON document's bytes as they are, under their digest, now;
    returns (key, sha256 digest). In a transaction, stage them instead
    (lib/data/uploads.py): the upload then waits for the commit."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"{key_prefix.rstrip('/')}/{digest}.json"
    backend().put(key, data)
    return key, digest


def put_json(key_prefix: str, value: Any) -> tuple[str, str]:
    """Store a JSON document (canonical form) under its digest; returns (key, sha256 digest)."""
    return put_bytes(key_prefix, canonical_json(value))


# ------------------------------------------------------- local signing ----


def _signing_key() -> bytes:
    secret = settings.secret("NOFX_STORAGE_SIGNING_KEY")
    if not secret:
        raise RuntimeError("NOFX_STORAGE_SIGNING_KEY is not set")
    return secret.encode()


def sign(key: str, expires: int) -> str:
    return hmac.new(_signing_key(), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def check_signature(key: str, expires: str | None, sig: str | None, now: float | None = None) -> str | None:
    """None when the URL is good, else why it is not."""
    # ASCII only: str.isdigit() admits "²" (which int() refuses) and
    # compare_digest() refuses non-ASCII text; either was a 500
    if not expires or not sig or not (expires.isascii() and expires.isdigit() and sig.isascii()):
        return "missing or malformed signature"
    if not hmac.compare_digest(sign(key, int(expires)), sig):
        return "signature does not match"
    if int(expires) < (time.time() if now is None else now):
        return "expired"
    return None


def local_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Serves signed URLs of the local backend (mounted by the dev server)."""
    from urllib.parse import unquote

    key = unquote(environ.get("PATH_INFO", "")[len(LOCAL_PREFIX) :])
    query = parse_qs(environ.get("QUERY_STRING", ""))
    why = check_signature(key, (query.get("expires") or [None])[0], (query.get("sig") or [None])[0])
    storage = LocalStorage()
    if why is None:
        try:
            body = storage.get(key)
        except (FileNotFoundError, ValueError):
            why = "no such object"
    if why is not None:
        status = {"expired": 410, "no such object": 404}.get(why, 403)
        doc = json.dumps(Problem(status, f"signed URL rejected: {why}").document()).encode()
        start_response(
            f"{status} {TITLES[status]}", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(doc)))]
        )
        return [doc]
    ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
    start_response(
        "200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "private, no-store")]
    )
    return [body]
