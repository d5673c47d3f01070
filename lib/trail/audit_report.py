"""A plan's audit trail as GET /api/audit/:planId and the CLI show it: every
entry, the chain verified end to end, and each snapshot fetched from storage
(once per distinct key) and checked against the digest its entry carries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from lib.data import storage
from lib.trail import audit
from lib.web.problems import not_found


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


def check_snapshots(rows: Iterable[Mapping[str, Any]]) -> dict[int, bool]:
    """{entry id: its snapshot is there and matches its digest} for the rows
    that point to one. Each distinct key is fetched and hashed once."""
    backend = storage.backend()
    found: dict[str, str | None] = {}  # key -> sha256 of what storage holds (None: missing or unreadable)
    checked: dict[int, bool] = {}
    for row in rows:
        key = row["snapshot_key"]
        if not key:
            continue
        if key not in found:
            try:
                found[key] = hashlib.sha256(backend.get(key)).hexdigest()
            except Exception:  # noqa: BLE001 - a missing or unreadable snapshot is a failed check
                found[key] = None
        checked[row["id"]] = found[key] is not None and found[key] == row["snapshot_digest"]
    return checked


def trail(conn: Any, plan_id: UUID, limit: int = 500, offset: int = 0) -> AuditTrail:
    if conn.execute("SELECT 1 FROM public.plans WHERE id = %s", (plan_id,)).fetchone() is None:
        raise not_found("plan", plan_id)
    check, rows = audit.verify_chain(conn, audit.chain_for(plan_id))
    first_break = check.first_break
    verified = check_snapshots(rows)
    snapshots_ok = all(verified.values())
    if first_break is None and not snapshots_ok:
        row = next(r for r in rows if verified.get(r["id"]) is False)
        first_break = {
            "id": row["id"],
            "seq": row["seq"],
            "reason": f"snapshot {row['snapshot_key']} is missing or does not match its digest",
        }
    page = rows[offset : offset + limit]
    urls = storage.backend().signed_urls([r["snapshot_key"] for r in page if r["snapshot_key"]])
    entries = []
    for row in page:
        content = json.loads(row["content"])
        link = None
        if row["snapshot_key"]:
            link = SnapshotLink(
                key=row["snapshot_key"],
                sha256=row["snapshot_digest"],
                url=urls[row["snapshot_key"]],
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
