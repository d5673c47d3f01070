"""The tamper-evident audit trail: one row per state change, hash-chained.

The application writes `content`, the canonical JSON of the entry; the database
trigger links it to its chain (one per plan, plus 'global') under a row lock
and stores hash = sha256(prev_hash || content). Verification needs nothing but
the rows: recompute each hash, follow each link, and compare the columns that
index the row (plan, items, packs, actor) with the content they came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from lib.data.sqltext import array_literal

GENESIS = "0" * 64

INSERT = """
INSERT INTO public.audit_log
  (chain, occurred_at, actor, actor_role, action, plan_id, step_id,
   backlog_item_ids, pack_ids, content, snapshot_key, snapshot_digest, prev_hash, hash)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text[], %s::text[], %s, %s, %s, '', '')
RETURNING id, seq, hash
"""


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def ids_digest(sorted_ids: list[str]) -> dict[str, Any]:
    return {"count": len(sorted_ids), "sha256": hashlib.sha256("\n".join(sorted_ids).encode()).hexdigest()}


def chain_for(plan_id: UUID | str | None) -> str:
    return f"plan:{plan_id}" if plan_id else "global"


def name_of(actor: Any) -> str:
    """A Principal's name, or the name given ("executor", "system")."""
    return getattr(actor, "name", None) or str(actor)


def record(
    conn: Any,
    *,
    actor: Any,
    action: str,
    plan_id: UUID | str | None = None,
    step_id: UUID | str | None = None,
    backlog_item_ids: Iterable[Any] = (),
    pack_ids: Iterable[Any] = (),
    details: Mapping[str, Any] | None = None,
    snapshot_key: str | None = None,
    snapshot_digest: str | None = None,
    snapshot: bool = False,
) -> dict[str, Any]:
    """Append one entry in the caller's transaction. `actor` is a Principal or a name.
    With `snapshot`, the plan's state as this transaction sees it is stored
    first and the entry carries its key and digest."""
    if snapshot and plan_id is not None:
        from lib.trail import snapshots

        snapshot_key, snapshot_digest = snapshots.take(conn, plan_id)
    actor_name = name_of(actor)
    actor_role = getattr(actor, "role", None)
    occurred_at = datetime.now(UTC).isoformat()
    items = sorted({str(i) for i in backlog_item_ids})
    packs = sorted({str(p) for p in pack_ids})
    content = canonical(
        {
            "action": action,
            "actor": actor_name,
            "actor_role": actor_role,
            "actor_source": getattr(actor, "source", "system"),
            "plan_id": str(plan_id) if plan_id else None,
            "step_id": str(step_id) if step_id else None,
            # a plan may link 100,000 items: the entry hashes their digest, and
            # verification recomputes it from the backlog_item_ids column
            "backlog_items": ids_digest(items),
            "pack_ids": packs,
            "details": dict(details or {}),
            "occurred_at": occurred_at,
            "snapshot_key": snapshot_key,
            "snapshot_digest": snapshot_digest,
        }
    )
    cursor = conn.execute(
        INSERT,
        (
            chain_for(plan_id),
            occurred_at,
            actor_name,
            actor_role,
            action,
            plan_id,
            step_id,
            # a literal built in one join: psycopg's list dumper looks at
            # each of a large plan's 100,000 item ids in Python
            array_literal(items),
            array_literal(packs),
            content,
            snapshot_key,
            snapshot_digest,
        ),
    )
    from lib.data import db

    if db.in_pipeline(conn):  # queued with the transaction's last writes; its row is not needed
        return {}
    return dict(cursor.fetchone())


@dataclass
class ChainCheck:
    chain: str
    entries: int
    ok: bool
    first_break: dict[str, Any] | None = None


def entry_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def verify_rows(
    chain: str,
    rows: list[Mapping[str, Any]],
    head: Mapping[str, Any] | None = None,
    after: tuple[int, str] = (0, GENESIS),
) -> ChainCheck:
    """Check one chain's rows (ordered by seq): hashes, links, sequence,
    columns. `after` is the (seq, hash) the rows follow: the genesis for a
    whole chain, or the entry before the first row when checking from a
    checkpoint."""
    start, prev = after
    for index, row in enumerate(rows, start=start + 1):
        problem = None
        if row["seq"] != index:
            problem = f"sequence jumps to {row['seq']} where {index} was expected (a row is missing)"
        elif row["prev_hash"] != prev:
            problem = "prev_hash does not match the previous entry's hash"
        elif entry_hash(row["prev_hash"], row["content"]) != row["hash"]:
            problem = "hash does not match the content: the entry was altered"
        else:
            problem = _columns_disagree(row)
        if problem:
            return ChainCheck(chain, start + len(rows), False, {"id": row["id"], "seq": row["seq"], "reason": problem})
        prev = row["hash"]
    present = start + len(rows)
    if head is not None and (head["seq"] != present or head["hash"] != prev):
        return ChainCheck(
            chain,
            present,
            False,
            {
                "id": None,
                "seq": head["seq"],
                "reason": f"chain head says {head['seq']} entries ending in {head['hash'][:12]}…; "
                f"{present} entries are present (entries were removed)",
            },
        )
    return ChainCheck(chain, present, True)


def _columns_disagree(row: Mapping[str, Any]) -> str | None:
    content = json.loads(row["content"])
    expected = {
        "action": row["action"],
        "actor": row["actor"],
        "plan_id": str(row["plan_id"]) if row["plan_id"] else None,
        "step_id": str(row["step_id"]) if row["step_id"] else None,
        "backlog_items": ids_digest(sorted(row["backlog_item_ids"] or [])),
        "pack_ids": sorted(row["pack_ids"] or []),
        "snapshot_digest": row["snapshot_digest"],
    }
    for key, value in expected.items():
        if content.get(key) != value:
            return f"column {key} differs from the hashed content"
    return None


COLUMNS = """id, chain, seq, occurred_at, actor, actor_role, action, plan_id, step_id,
       backlog_item_ids, pack_ids, content, snapshot_key, snapshot_digest, prev_hash, hash"""
SELECT_CHAIN = f"SELECT {COLUMNS} FROM public.audit_log WHERE chain = %s ORDER BY seq"  # noqa: S608
SELECT_HEAD = "SELECT seq, hash FROM public.audit_chain_heads WHERE chain = %s"


def verify_chain(conn: Any, chain: str) -> tuple[ChainCheck, list[dict[str, Any]]]:
    """The whole chain, from its first entry."""
    rows = conn.execute(SELECT_CHAIN, (chain,)).fetchall()
    head = conn.execute(SELECT_HEAD, (chain,)).fetchone()
    return verify_rows(chain, rows, head), rows


def chains(conn: Any) -> list[str]:
    return [r["chain"] for r in conn.execute("SELECT chain FROM public.audit_chain_heads ORDER BY chain")]


def verify_all(conn: Any) -> list[ChainCheck]:
    return [verify_chain(conn, chain)[0] for chain in chains(conn)]
