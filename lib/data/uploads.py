"""Uploads outside the transaction: a snapshot or artifact is staged in
`storage_outbox` by the transaction that refers to it, and uploaded to
storage once that transaction has committed (then its row is deleted).

Storage is another service: an outage there, or storage settings missing on
a deployment, must not fail a step or an approval request. A staged row
waits; the upload after commit is tried once, and the tick retries what is
due with growing backoff. Keys are content-addressed (`<prefix>/<sha256>.json`),
so an upload repeated is harmless and a staged row is the object itself: a
read before the upload finds it here (read()).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from lib.data import db, storage

log = logging.getLogger("nofx.uploads")

# waits after the 1st, 2nd, ... failed upload (seconds); then the last, repeated
BACKOFF = (30, 60, 300, 900, 3600)

STAGE = """
INSERT INTO public.storage_outbox (key, data, content_type) VALUES (%s, %s, %s)
ON CONFLICT (key) DO NOTHING
"""

CLAIM_DUE = """
UPDATE public.storage_outbox o
   SET next_attempt_at = now() + make_interval(secs => %(lease)s)
  FROM (SELECT key FROM public.storage_outbox
         WHERE next_attempt_at <= now()
         ORDER BY next_attempt_at
         LIMIT %(limit)s
         FOR UPDATE SKIP LOCKED) due
 WHERE o.key = due.key
RETURNING o.key, o.data, o.content_type, o.attempts
"""


def stage(conn: Any, key_prefix: str, data: bytes, content_type: str = "application/json") -> tuple[str, str]:
    """Keep `data` for upload under its digest, in the caller's transaction;
    the upload follows its commit. Returns (key, sha256 digest)."""
    digest = hashlib.sha256(data).hexdigest()
    key = f"{key_prefix.rstrip('/')}/{digest}.json"
    conn.execute(STAGE, (key, data, content_type))
    row = {"key": key, "data": data, "content_type": content_type, "attempts": 0}
    # from memory: the upload after the commit reads nothing back
    db.after_commit(conn, lambda c: _upload_rows(c, [row]))
    return key, digest


def _upload_rows(conn: Any, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Upload each row (no transaction open meanwhile), then note its outcome
    in a short one: delete it, or count the failure and set the next try."""
    done = {"uploaded": 0, "failed": 0}
    for row in rows:
        try:
            storage.backend().put(row["key"], bytes(row["data"]), row["content_type"])
        except Exception as exc:  # noqa: BLE001 - any failure leaves the row for a later try
            wait = BACKOFF[min(row["attempts"], len(BACKOFF) - 1)]
            _write(
                conn,
                "UPDATE public.storage_outbox SET attempts = attempts + 1, last_error = %s, "
                "next_attempt_at = now() + make_interval(secs => %s) WHERE key = %s",
                (f"{type(exc).__name__}: {exc}"[:500], wait, row["key"]),
            )
            log.warning("upload of %s failed (attempt %d): %s", row["key"], row["attempts"] + 1, exc)
            done["failed"] += 1
        else:
            _write(conn, "DELETE FROM public.storage_outbox WHERE key = %s", (row["key"],))
            done["uploaded"] += 1
    return done


def _write(conn: Any, sql: str, params: tuple[Any, ...]) -> None:
    """One statement, committed: as it stands on an autocommit connection (one
    round trip), else in a transaction of its own."""
    if conn.autocommit:
        conn.execute(sql, params)
        return
    with conn.transaction():
        conn.execute(sql, params)


def upload(conn: Any, keys: Sequence[str]) -> dict[str, int]:
    """Upload these staged objects now (after the commit that staged them).
    `conn` is idle, outside any transaction."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT key, data, content_type, attempts FROM public.storage_outbox WHERE key = ANY(%s)", (list(keys),)
        ).fetchall()
    return _upload_rows(conn, rows)


def upload_due(limit: int = 100) -> dict[str, int]:
    """The tick's retry: claim what is due (moving it out of the way of a
    concurrent tick for a minute), upload it, and note each outcome."""
    with db.transaction() as conn:
        rows = conn.execute(CLAIM_DUE, {"lease": 60, "limit": limit}).fetchall()
    if not rows:
        return {"uploaded": 0, "failed": 0}
    with db.reading() as conn:
        return _upload_rows(conn, rows)


def read(conn: Any, key: str) -> bytes:
    """The object, from storage, or from the outbox while its upload waits."""
    row = conn.execute("SELECT data FROM public.storage_outbox WHERE key = %s", (key,)).fetchone()
    if row is not None:
        return bytes(row["data"])
    return storage.backend().get(key)


def pending(conn: Any, keys: Sequence[str]) -> set[str]:
    """Which of these keys still wait for their upload."""
    if not keys:
        return set()
    rows = conn.execute("SELECT key FROM public.storage_outbox WHERE key = ANY(%s)", (list(keys),)).fetchall()
    return {r["key"] for r in rows}
