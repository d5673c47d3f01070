"""Snapshots for forensic replay: the plan, its steps, its latest evaluation,
its approvals and overrides at a key moment, stored content-addressed in
storage (Supabase Storage in production, the local folder here), with the
digest written into the audit entry that refers to it.

Steps are kept compactly ([id, key, stage, status, token, attempts]) so a
100,000-step plan's snapshot stays a few megabytes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lib import storage


def capture(conn: Any, plan_id: UUID | str) -> dict[str, Any]:
    plan = conn.execute(
        "SELECT id, version, title, status, status_reason, verdict, score, source, input_fingerprint, options, totals, "
        "pack_ids, policy_version, evaluation_generation, created_by, executed_by, created_at, updated_at "
        "FROM public.plans WHERE id = %s",
        (plan_id,),
    ).fetchone()
    steps = conn.execute(
        "SELECT json_build_array(id, item_key, stage, status, idempotency_token, attempts)::text AS row "
        "FROM public.plan_steps WHERE plan_id = %s ORDER BY stage, position",
        (plan_id,),
    ).fetchall()
    evaluation = conn.execute(
        "SELECT gate, verdict, score FROM public.plan_evaluations WHERE plan_id = %s AND scope = 'plan' "
        "AND generation = (SELECT evaluation_generation FROM public.plans WHERE id = %s) ORDER BY gate",
        (plan_id, plan_id),
    ).fetchall()
    approvals = conn.execute(
        "SELECT id, kind, step_id, status, digest, required_approvals, requested_at, decided_at, decision_reason "
        "FROM public.approvals WHERE plan_id = %s ORDER BY requested_at",
        (plan_id,),
    ).fetchall()
    overrides = conn.execute(
        "SELECT id, scope, gate, step_id, action, reason, actor, created_at, expires_at FROM public.overrides "
        "WHERE plan_id = %s ORDER BY created_at",
        (plan_id,),
    ).fetchall()
    return {
        "plan": plan,
        "steps_columns": ["id", "item_key", "stage", "status", "idempotency_token", "attempts"],
        "steps": [_raw(r["row"]) for r in steps],
        "evaluation": evaluation,
        "approvals": approvals,
        "overrides": overrides,
    }


def _raw(text: str) -> Any:
    import json

    return json.loads(text)


def take(conn: Any, plan_id: UUID | str) -> tuple[str, str]:
    """Capture and store; returns (storage key, sha256 digest) for the audit entry."""
    return storage.put_json(f"snapshots/{plan_id}", capture(conn, plan_id))
