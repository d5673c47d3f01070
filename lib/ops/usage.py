"""What a plan really costs this project in Supabase, measured from its own
records, for the resource gate's footprint (lib/gates/resource.py).

The tick refreshes it at most hourly and stores it in config
`gates.resource.measured_usage`, where the gates read their settings:

- database bytes per step: over the most recent finished plans (up to 100),
  the rows they left in each table, times that table's bytes per row
  (`pg_total_relation_size` over its row count: indexes and TOAST included);
- snapshot and artifact bytes per step: the sizes Supabase Storage keeps in
  `storage.objects` metadata for those plans' objects, or the local store's
  files (absent when neither can be read);
- function invocations per step: the requests the audit trail recorded from
  the API and webhooks, plus the tool attempts `tool_metrics` recorded (each
  run inside some invocation: an upper bound).

A project with no finished plan has nothing to measure: the figures stay
absent and the gate says the footprint is unknown, never $0.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.data import storage

CONFIG_KEY = "gates.resource.measured_usage"
REFRESH_EVERY = timedelta(hours=1)
SAMPLE_PLANS = 100

# the tables a plan's rows live in, and how a row names its plan
PLAN_TABLES = {
    "plans": "id",
    "plan_steps": "plan_id",
    "events": "plan_id",
    "audit_log": "plan_id",
    "approvals": "plan_id",
    "plan_evaluations": "plan_id",
    "model_comparisons": "plan_id",
    "overrides": "plan_id",
    "tool_metrics": "plan_id",
    "notifications": "plan_id",
}

RECENT = """
SELECT array_agg(id) AS ids, coalesce(sum(n), 0) AS steps
  FROM (SELECT p.id, (SELECT count(*) FROM public.plan_steps s WHERE s.plan_id = p.id) AS n
          FROM public.plans p
         WHERE p.status IN ('completed', 'failed', 'rolled_back', 'cancelled')
         ORDER BY p.updated_at DESC
         LIMIT %s) recent
"""


def _table_rows_and_bytes(conn: Any, ids: list[Any]) -> tuple[dict[str, int], dict[str, float]]:
    """Rows the sampled plans left per table, and each table's bytes per row."""
    counts = " UNION ALL ".join(
        f"SELECT '{table}' AS t, count(*) AS n FROM public.{table} WHERE {column} = ANY(%(ids)s)"  # noqa: S608
        for table, column in PLAN_TABLES.items()
    )
    rows = {r["t"]: int(r["n"]) for r in conn.execute(counts, {"ids": ids}).fetchall()}
    # approval history rows belong to the sampled plans through their approvals
    rows["approval_events"] = int(
        conn.execute(
            "SELECT count(*) AS n FROM public.approval_events e JOIN public.approvals a ON a.id = e.approval_id "
            "WHERE a.plan_id = ANY(%(ids)s)",
            {"ids": ids},
        ).fetchone()["n"]
    )
    sizes = conn.execute(
        """SELECT c.relname AS t, pg_total_relation_size(c.oid) AS bytes,
                  CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint END AS estimate
             FROM pg_class c WHERE c.oid = ANY(%s::regclass[])""",
        ([f"public.{t}" for t in rows],),
    ).fetchall()
    per_row: dict[str, float] = {}
    for size in sizes:
        total = size["estimate"]
        if total is None:  # never analysed: count it
            total = conn.execute(f"SELECT count(*) AS n FROM public.{size['t']}").fetchone()["n"]  # noqa: S608
        if total:
            per_row[size["t"]] = size["bytes"] / total
    return rows, per_row


def _stored_bytes(conn: Any, ids: list[Any], approval_ids: list[Any]) -> tuple[int | None, str | None]:
    """Bytes of the sampled plans' snapshots and artifacts, and where that came from."""
    backend, bucket, _ = storage.configuration()
    prefixes = [f"snapshots/{i}/" for i in ids] + [f"approvals/{i}/" for i in approval_ids]
    if backend == "supabase":
        if conn.execute("SELECT to_regclass('storage.objects') AS t").fetchone()["t"] is None:
            return None, None
        row = conn.execute(
            """SELECT coalesce(sum((metadata->>'size')::bigint), 0) AS bytes FROM storage.objects
                WHERE bucket_id = %s AND left(name, strpos(name, '/') + 36 + 1) = ANY(%s)""",
            (bucket, prefixes),
        ).fetchone()
        return int(row["bytes"]), "storage.objects metadata"
    if backend == "local":
        root = storage.LocalStorage().root
        total = sum(f.stat().st_size for p in prefixes if (root / p).is_dir() for f in (root / p).iterdir())
        return total, "the local store's files"
    return None, None


def measure(conn: Any, now: datetime | None = None) -> dict[str, Any] | None:
    """The figures, or None when no finished plan exists to measure."""
    sample = conn.execute(RECENT, (SAMPLE_PLANS,)).fetchone()
    ids, steps = sample["ids"] or [], int(sample["steps"])
    if not ids or not steps:
        return None
    rows, per_row = _table_rows_and_bytes(conn, ids)
    database_bytes = sum(n * per_row.get(t, 0.0) for t, n in rows.items())
    approval_ids = [r["id"] for r in conn.execute("SELECT id FROM public.approvals WHERE plan_id = ANY(%s)", (ids,))]
    stored, stored_source = _stored_bytes(conn, ids, approval_ids)
    requests = conn.execute(
        "SELECT count(*) AS n FROM public.audit_log WHERE plan_id = ANY(%s) "
        "AND content::jsonb->>'actor_source' IN ('api', 'webhook')",
        (ids,),
    ).fetchone()["n"]
    measured_at = now or datetime.now(UTC)
    return {
        "measured_at": measured_at.isoformat(),
        "plans_sampled": len(ids),
        "steps_sampled": steps,
        "rows_per_step": round(sum(rows.values()) / steps, 3),
        "database_bytes_per_step": round(database_bytes / steps, 1),
        "storage_bytes_per_step": None if stored is None else round(stored / steps, 1),
        "storage_source": stored_source,
        "invocations_per_step": round((requests + rows.get("tool_metrics", 0)) / steps, 3),
    }


def refresh_if_due(conn: Any, now: datetime | None = None) -> bool:
    """Measure again when the stored figures are older than REFRESH_EVERY
    (or absent); returns whether it did."""
    now = now or datetime.now(UTC)
    row = conn.execute("SELECT value FROM public.config WHERE key = %s", (CONFIG_KEY,)).fetchone()
    last = (row["value"] or {}).get("measured_at") if row else None
    if last and now - datetime.fromisoformat(last) < REFRESH_EVERY:
        return False
    figures = measure(conn, now)
    if figures is None:
        return False
    conn.execute(
        "INSERT INTO public.config (key, value, description) VALUES (%s, %s::jsonb, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        (CONFIG_KEY, json.dumps(figures), "the Supabase footprint per step, measured by the tick (lib/ops/usage.py)"),
    )
    return True
