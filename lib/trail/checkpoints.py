"""How far each audit chain has been verified, so a read checks only what is
new. The tick verifies each chain's entries added since its checkpoint and
moves the checkpoint to the last of them; a read verifies from the checkpoint
on, starting with the checkpointed entry itself (it must still carry the hash
it was verified with). Altering an older entry without recomputing every later
hash shows there; one who recomputes them all must also rewrite the chain head
and the checkpoint, which only the table owner can. `?verify=full` on the
trail and `make audit-verify` check a chain from its first entry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lib.trail import audit

log = logging.getLogger("nofx.audit")

SELECT_SINCE = f"SELECT {audit.COLUMNS} FROM public.audit_log WHERE chain = %s AND seq >= %s ORDER BY seq"  # noqa: S608

BEHIND = """
SELECT h.chain FROM public.audit_chain_heads h
  LEFT JOIN public.audit_checkpoints c USING (chain)
 WHERE c.seq IS NULL OR c.seq < h.seq
 ORDER BY h.updated_at
 LIMIT %s
"""

MOVE = """
INSERT INTO public.audit_checkpoints AS c (chain, seq, hash) VALUES (%s, %s, %s)
ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, verified_at = now()
 WHERE c.seq < EXCLUDED.seq
"""


@dataclass
class Verified:
    check: audit.ChainCheck
    from_seq: int  # the first entry checked (1: the whole chain)
    checkpoint_at: datetime | None  # when the entries before from_seq were verified
    last: tuple[int, str] | None  # the last entry verified, (seq, hash)


def verify_since_checkpoint(conn: Any, chain: str) -> Verified:
    """The chain from its checkpoint (inclusive) to its head; the whole chain
    when it has none."""
    point = conn.execute(
        "SELECT seq, hash, verified_at FROM public.audit_checkpoints WHERE chain = %s", (chain,)
    ).fetchone()
    if point is None:
        check, rows = audit.verify_chain(conn, chain)
        return Verified(check, 1, None, (rows[-1]["seq"], rows[-1]["hash"]) if rows else None)
    rows = conn.execute(SELECT_SINCE, (chain, point["seq"])).fetchall()
    head = conn.execute(audit.SELECT_HEAD, (chain,)).fetchone()
    anchor = rows[0] if rows and rows[0]["seq"] == point["seq"] else None
    if anchor is None or anchor["hash"] != point["hash"]:
        reason = (
            f"entry {point['seq']} no longer carries the hash it was verified with on "
            f"{point['verified_at']:%Y-%m-%d %H:%M:%S} UTC (the entry was altered or removed)"
        )
        broken = audit.ChainCheck(
            chain, point["seq"], False, {"id": anchor and anchor["id"], "seq": point["seq"], "reason": reason}
        )
        return Verified(broken, point["seq"], point["verified_at"], None)
    check = audit.verify_rows(chain, rows, head, after=(point["seq"] - 1, anchor["prev_hash"]))
    return Verified(check, point["seq"], point["verified_at"], (rows[-1]["seq"], rows[-1]["hash"]))


@dataclass
class Advanced:
    chains: int
    entries: int
    broken: list[str]


def advance(connect: Any, limit: int = 500, budget_seconds: float = 10.0) -> Advanced:
    """Verify the new entries of up to `limit` chains (stopping after the
    budget) and move their checkpoints. A broken chain keeps its checkpoint
    and is logged for the operator; its reads keep reporting the break."""
    started = time.monotonic()
    done = Advanced(0, 0, [])
    with connect() as conn:  # autocommit: each chain's check and its move stand alone
        for (chain,) in [tuple(r.values()) for r in conn.execute(BEHIND, (limit,)).fetchall()]:
            if time.monotonic() - started > budget_seconds:
                break
            verified = verify_since_checkpoint(conn, chain)
            if not verified.check.ok:
                log.error("audit chain %s is broken: %s", chain, verified.check.first_break)
                done.broken.append(chain)
                continue
            if verified.last is not None:
                conn.execute(MOVE, (chain, *verified.last))
                already = 0 if verified.checkpoint_at is None else verified.from_seq
                done.entries += verified.last[0] - already
            done.chains += 1
    return done
