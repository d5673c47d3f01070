"""A plan's audit trail as GET /api/audit/:planId and the CLI show it: every
entry, the chain verified end to end, and each snapshot fetched from storage
and checked against the digest its entry carries."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from lib import audit, storage
from lib.problems import not_found


class SnapshotLink(BaseModel):
    key: str
    sha256: str
    url: str
    verified: bool


class Entry(BaseModel):
    seq: int
    occurred_at: datetime
    actor: str
    actor_role: str | None
    action: str
    step_id: UUID | None
    backlog_item_ids: list[str]
    pack_ids: list[str]
    details: dict[str, Any]
    hash: str
    prev_hash: str
    snapshot: SnapshotLink | None


class ChainResult(BaseModel):
    ok: bool
    entries: int
    first_break: dict[str, Any] | None


class AuditTrail(BaseModel):
    plan_id: UUID
    chain: ChainResult
    snapshots_ok: bool
    entries: list[Entry]
    entries_total: int


def snapshot_ok(key: str, digest: str) -> bool:
    try:
        data = storage.backend().get(key)
    except Exception:  # noqa: BLE001 - a missing or unreadable snapshot is a failed check
        return False
    return hashlib.sha256(data).hexdigest() == digest


def trail(conn: Any, plan_id: UUID, limit: int = 500, offset: int = 0) -> AuditTrail:
    if conn.execute("SELECT 1 FROM public.plans WHERE id = %s", (plan_id,)).fetchone() is None:
        raise not_found("plan", plan_id)
    check, rows = audit.verify_chain(conn, audit.chain_for(plan_id))
    first_break = check.first_break
    snapshots_ok = True
    verified: dict[int, bool] = {}
    for row in rows:
        if row["snapshot_key"]:
            good = snapshot_ok(row["snapshot_key"], row["snapshot_digest"])
            verified[row["id"]] = good
            if not good and snapshots_ok:
                snapshots_ok = False
                if first_break is None:
                    first_break = {
                        "id": row["id"],
                        "seq": row["seq"],
                        "reason": f"snapshot {row['snapshot_key']} is missing or does not match its digest",
                    }
    backend = storage.backend()
    entries = []
    for row in rows[offset : offset + limit]:
        content = json.loads(row["content"])
        link = None
        if row["snapshot_key"]:
            link = SnapshotLink(
                key=row["snapshot_key"],
                sha256=row["snapshot_digest"],
                url=backend.signed_url(row["snapshot_key"]),
                verified=verified[row["id"]],
            )
        entries.append(
            Entry(
                seq=row["seq"],
                occurred_at=row["occurred_at"],
                actor=row["actor"],
                actor_role=row["actor_role"],
                action=row["action"],
                step_id=row["step_id"],
                backlog_item_ids=row["backlog_item_ids"],
                pack_ids=row["pack_ids"],
                details=content.get("details", {}),
                hash=row["hash"],
                prev_hash=row["prev_hash"],
                snapshot=link,
            )
        )
    return AuditTrail(
        plan_id=plan_id,
        chain=ChainResult(ok=check.ok and snapshots_ok, entries=check.entries, first_break=first_break),
        snapshots_ok=snapshots_ok,
        entries=entries,
        entries_total=len(rows),
    )
