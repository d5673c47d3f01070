"""Snapshots for forensic replay: the plan, its steps, its latest evaluation,
its approvals and overrides at a key moment, stored content-addressed in
storage (Supabase Storage in production, the local folder here), with the
digest written into the audit entry that refers to it. The upload follows
the commit of the transaction that took it, never inside it.

The document is built by PostgreSQL in one call of nofx.plan_snapshot
(migration 0008; as the writing transaction sees it) and stored byte for byte:
the digest is over exactly what is kept. Steps are compact rows
([id, key, stage, status, token, attempts], STEP_COLUMNS) so a 100,000-step
plan's snapshot stays a few megabytes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lib.data import uploads

# what each compact step row holds, in order: nofx.plan_snapshot (migration
# 0008) builds the document and names them in it; a test holds the two equal
STEP_COLUMNS = ["id", "item_key", "stage", "status", "idempotency_token", "attempts"]


def capture_bytes(conn: Any, plan_id: UUID | str) -> bytes:
    row = conn.execute("SELECT nofx.plan_snapshot(%s) AS document", (plan_id,)).fetchone()
    return str(row["document"]).encode()


def take(conn: Any, plan_id: UUID | str) -> tuple[str, str]:
    """Capture and stage for upload after the commit (lib/data/uploads.py);
    returns (storage key, sha256 digest) for the audit entry."""
    return uploads.stage(conn, f"snapshots/{plan_id}", capture_bytes(conn, plan_id))
