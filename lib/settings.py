"""Every environment variable the control plane reads, in one place.

On Vercel (``VERCEL`` is set) secrets must come from the environment. Locally a
missing secret is generated once into ``$NOFX_DATA_DIR/dev-secrets.json`` so
that ``make dev``, the token CLI and the tests agree without any setup.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_lock = threading.Lock()
_dev_secrets: dict[str, str] | None = None


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def on_vercel() -> bool:
    return env("VERCEL") is not None


def data_dir() -> Path:
    return Path(env("NOFX_DATA_DIR") or ROOT / ".data")


def _generate(name: str) -> str:
    if name == "ZIG_TODO_WEBHOOK_SECRET":
        # Standard Webhooks secrets are base64 behind a whsec_ prefix.
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return secrets.token_urlsafe(32)


def _read_dev_secrets(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


def secret(name: str) -> str | None:
    """A secret from the environment, or locally a generated one that persists."""
    global _dev_secrets
    value = env(name)
    if value is not None or on_vercel():
        return value
    path = data_dir() / "dev-secrets.json"
    with _lock:
        if _dev_secrets is None or name not in _dev_secrets:
            _dev_secrets = _read_dev_secrets(path)
        if name not in _dev_secrets:
            import fcntl

            # Several processes (test workers, the CLI, the dev server) may ask
            # at once: generate under an exclusive lock, re-reading inside it.
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                stored = _read_dev_secrets(path)
                if name not in stored:
                    stored[name] = _generate(name)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_text(json.dumps(stored, indent=2))
                    tmp.chmod(0o600)
                    tmp.replace(path)
                _dev_secrets = stored
        return _dev_secrets[name]


def database_url() -> str | None:
    return env("DATABASE_URL")


def jwt_audience() -> str:
    return env("NOFX_JWT_AUDIENCE", "authenticated") or "authenticated"


def jwks_url() -> str | None:
    explicit = env("SUPABASE_JWKS_URL")
    if explicit:
        return explicit
    base = env("SUPABASE_URL")
    return f"{base.rstrip('/')}/auth/v1/.well-known/jwks.json" if base else None


def public_url() -> str:
    """Where people reach this deployment, for links in messages: NOFX_PUBLIC_URL;
    on Vercel, else its production domain, else this deployment's own URL
    (never 127.0.0.1 there); locally the dev server."""
    explicit = env("NOFX_PUBLIC_URL")
    if explicit:
        return explicit.rstrip("/")
    for host in (env("VERCEL_PROJECT_PRODUCTION_URL"), env("VERCEL_URL")):
        if host:
            return f"https://{host.removeprefix('https://').rstrip('/')}"
    return "http://127.0.0.1:3000"


def worker_url() -> str:
    """Where dispatches reach the worker function: NOFX_WORKER_URL, else on
    Vercel this deployment's own URL (the same code version), else the public URL."""
    explicit = env("NOFX_WORKER_URL")
    if explicit:
        return explicit.rstrip("/")
    deployment = env("VERCEL_URL")
    if deployment:
        return f"https://{deployment}"
    return public_url()


def flag_cache_seconds() -> float:
    return float(env("NOFX_FLAG_CACHE_SECONDS", "2") or 2)


def max_body_bytes() -> int:
    return int(env("NOFX_MAX_BODY_BYTES", str(1 << 20)) or 1 << 20)
