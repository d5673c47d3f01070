"""Snapshots for forensic replay: the plan, its steps, its latest evaluation,
its approvals and overrides at a key moment, stored content-addressed in
storage (Supabase Storage in production, the local folder here), with the
digest written into the audit entry that refers to it.

The document is built by PostgreSQL in one query (as the writing transaction
sees it) and stored byte for byte: the digest is over exactly what is kept.
Steps are compact rows ([id, key, stage, status, token, attempts]) so a
100,000-step plan's snapshot stays a few megabytes.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from lib import storage

STEP_COLUMNS = ["id", "item_key", "stage", "status", "idempotency_token", "attempts"]

CAPTURE = """
SELECT json_build_object(
  'plan', (SELECT row_to_json(p) FROM (
      SELECT id, version, title, status, status_reason, verdict, score, source, input_fingerprint, options, totals,
             pack_ids, policy_version, evaluation_generation, created_by, executed_by, created_at, updated_at
        FROM public.plans WHERE id = %(plan)s) p),
  'steps_columns', %(columns)s::jsonb,
  'steps', (SELECT coalesce(json_agg(json_build_array(id, item_key, stage, status, idempotency_token, attempts)
                                     ORDER BY stage, position), '[]'::json)
              FROM public.plan_steps WHERE plan_id = %(plan)s),
  'evaluation', (SELECT coalesce(json_agg(json_build_object('gate', gate, 'verdict', verdict, 'score', score)
                                          ORDER BY gate), '[]'::json)
                   FROM public.plan_evaluations e
                  WHERE e.plan_id = %(plan)s AND e.scope = 'plan'
                    AND e.generation = (SELECT evaluation_generation FROM public.plans WHERE id = %(plan)s)),
  'approvals', (SELECT coalesce(json_agg(a ORDER BY a.requested_at), '[]'::json) FROM (
      SELECT id, kind, step_id, status, digest, required_approvals, requested_at, decided_at, decision_reason
        FROM public.approvals WHERE plan_id = %(plan)s) a),
  'overrides', (SELECT coalesce(json_agg(o ORDER BY o.created_at), '[]'::json) FROM (
      SELECT id, scope, gate, step_id, action, reason, actor, created_at, expires_at
        FROM public.overrides WHERE plan_id = %(plan)s) o)
)::text AS document
"""


def capture_bytes(conn: Any, plan_id: UUID | str) -> bytes:
    row = conn.execute(CAPTURE, {"plan": plan_id, "columns": json.dumps(STEP_COLUMNS)}).fetchone()
    return str(row["document"]).encode()


def take(conn: Any, plan_id: UUID | str) -> tuple[str, str]:
    """Capture and store; returns (storage key, sha256 digest) for the audit entry."""
    return storage.put_bytes(f"snapshots/{plan_id}", capture_bytes(conn, plan_id))
