"""A plan's audit trail as GET /api/audit/:planId and the CLI show it: a page
of entries, the chain verified from its checkpoint (lib/trail/checkpoints.py)
or, on request, end to end, and the page's snapshots (all of them on request)
fetched from storage once per distinct key and checked against the digest
each entry carries. An entry's item ids are cut to the first 200 with their
count: a plan of 100,000 items must not make a 4.5 MB reply."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from lib.data import storage
from lib.trail import audit, checkpoints
from lib.web.problems import not_found

FETCHERS = 8  # snapshots read from storage at once


class SnapshotLink(BaseModel):
    key: str
    sha256: str
    url: str | None  # None while its upload waits (it is verified from the outbox meanwhile)
    verified: bool


class Entry(BaseModel):
    seq: int
    occurred_at: datetime
    actor: str
    actor_role: str | None
    action: str
    step_id: UUID | None
    backlog_item_ids: list[str]  # the first ITEM_IDS_SHOWN, sorted
    backlog_items_total: int
    pack_ids: list[str]
    details: dict[str, Any]
    hash: str
    prev_hash: str
    snapshot: SnapshotLink | None


class ChainResult(BaseModel):
    ok: bool
    entries: int
    first_break: dict[str, Any] | None
    # what this answer checked: "full" from the first entry, or "checkpoint":
    # from verified_from_seq on, the entries before verified at checkpoint_verified_at
    scope: str
    verified_from_seq: int
    checkpoint_verified_at: datetime | None


class AuditTrail(BaseModel):
    plan_id: UUID
    chain: ChainResult
    snapshots_ok: bool
    snapshots_checked: str  # "page" or "all"
    entries: list[Entry]
    entries_total: int


def _digest_or_none(backend: storage.Storage, key: str) -> str | None:
    try:
        return hashlib.sha256(backend.get(key)).hexdigest()
    except Exception:  # noqa: BLE001 - a missing or unreadable snapshot is a failed check
        return None


def check_snapshots(conn: Any, rows: Iterable[Mapping[str, Any]]) -> dict[int, bool]:
    """{entry id: its snapshot is there and matches its digest} for the rows
    that point to one. Each distinct key is read and hashed once: from the
    upload outbox while its upload waits, else from storage, several at a
    time (storage is a network hop away)."""
    linked = [row for row in rows if row["snapshot_key"]]
    keys = list(dict.fromkeys(row["snapshot_key"] for row in linked))
    found: dict[str, str | None] = {}  # key -> sha256 of what is kept (None: missing or unreadable)
    if keys:
        staged = conn.execute("SELECT key, data FROM public.storage_outbox WHERE key = ANY(%s)", (keys,)).fetchall()
        found.update({r["key"]: hashlib.sha256(bytes(r["data"])).hexdigest() for r in staged})
        stored = [key for key in keys if key not in found]
        if stored:
            backend = storage.backend()
            with ThreadPoolExecutor(max_workers=min(FETCHERS, len(stored))) as pool:
                found.update(zip(stored, pool.map(lambda key: _digest_or_none(backend, key), stored), strict=True))
    return {
        row["id"]: found[row["snapshot_key"]] is not None and found[row["snapshot_key"]] == row["snapshot_digest"]
        for row in linked
    }


ITEM_IDS_SHOWN = 200
SELECT_PAGE = """
SELECT id, seq, occurred_at, actor, actor_role, action, step_id,
       backlog_item_ids[1:%(shown)s] AS backlog_item_ids,
       coalesce(cardinality(backlog_item_ids), 0) AS backlog_items_total, pack_ids, content,
       snapshot_key, snapshot_digest, prev_hash, hash
  FROM public.audit_log WHERE chain = %(chain)s ORDER BY seq LIMIT %(limit)s OFFSET %(offset)s
"""


def trail(conn: Any, plan_id: UUID, limit: int = 500, offset: int = 0, full: bool = False) -> AuditTrail:
    if conn.execute("SELECT 1 FROM public.plans WHERE id = %s", (plan_id,)).fetchone() is None:
        raise not_found("plan", plan_id)
    chain = audit.chain_for(plan_id)
    if full:
        check, rows = audit.verify_chain(conn, chain)
        verified = checkpoints.Verified(check, 1, None, None)
        checked_rows: list[dict[str, Any]] = rows
    else:
        verified = checkpoints.verify_since_checkpoint(conn, chain)
        check = verified.check
    page = conn.execute(
        SELECT_PAGE, {"shown": ITEM_IDS_SHOWN, "chain": chain, "limit": limit, "offset": offset}
    ).fetchall()
    if not full:
        checked_rows = page
    snapshot_checks = check_snapshots(conn, checked_rows)
    snapshots_ok = all(snapshot_checks.values())
    first_break = check.first_break
    if first_break is None and not snapshots_ok:
        row = next(r for r in checked_rows if snapshot_checks.get(r["id"]) is False)
        first_break = {
            "id": row["id"],
            "seq": row["seq"],
            "reason": f"snapshot {row['snapshot_key']} is missing or does not match its digest",
        }
    urls = storage.links([r["snapshot_key"] for r in page if r["snapshot_key"]])
    entries = []
    for row in page:
        content = json.loads(row["content"])
        link = None
        if row["snapshot_key"]:
            link = SnapshotLink(
                key=row["snapshot_key"],
                sha256=row["snapshot_digest"],
                url=urls.get(row["snapshot_key"]),
                verified=snapshot_checks[row["id"]],
            )
        entries.append(
            Entry(
                seq=row["seq"],
                occurred_at=row["occurred_at"],
                actor=row["actor"],
                actor_role=row["actor_role"],
                action=row["action"],
                step_id=row["step_id"],
                backlog_item_ids=row["backlog_item_ids"] or [],
                backlog_items_total=row["backlog_items_total"],
                pack_ids=row["pack_ids"],
                details=content.get("details", {}),
                hash=row["hash"],
                prev_hash=row["prev_hash"],
                snapshot=link,
            )
        )
    head = conn.execute(audit.SELECT_HEAD, (chain,)).fetchone()
    return AuditTrail(
        plan_id=plan_id,
        chain=ChainResult(
            ok=check.ok and snapshots_ok,
            entries=check.entries,
            first_break=first_break,
            scope="full" if full or verified.checkpoint_at is None else "checkpoint",
            verified_from_seq=verified.from_seq,
            checkpoint_verified_at=verified.checkpoint_at,
        ),
        snapshots_ok=snapshots_ok,
        snapshots_checked="all" if full else "page",
        entries=entries,
        entries_total=head["seq"] if head else 0,
    )
