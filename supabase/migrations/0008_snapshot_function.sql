-- 0008 The forensic snapshot of a plan, built by one PL/pgSQL function.
-- Every audited decision takes one (lib/snapshots.py). As a plain statement
-- its seven subqueries were parsed and planned on every call (the pool runs
-- without prepared statements, for Supabase's transaction pooler), which was
-- the costliest statement of an approval decision. PL/pgSQL keeps the plan
-- for the life of the connection, pooled or not; the document is unchanged.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

CREATE FUNCTION nofx.plan_snapshot(target uuid) RETURNS text
  LANGUAGE plpgsql STABLE
  SET search_path = pg_catalog, public
  AS $$
  BEGIN
    RETURN json_build_object(
      'plan', (SELECT row_to_json(p) FROM (
          SELECT id, version, title, status, status_reason, verdict, score, source, input_fingerprint, options,
                 totals, pack_ids, policy_version, evaluation_generation, created_by, executed_by, created_at,
                 updated_at
            FROM public.plans WHERE id = target) p),
      -- steps are compact rows, so a 100,000-step snapshot stays a few megabytes
      'steps_columns', '["id", "item_key", "stage", "status", "idempotency_token", "attempts"]'::jsonb,
      'steps', (SELECT coalesce(json_agg(json_build_array(id, item_key, stage, status, idempotency_token, attempts)
                                         ORDER BY stage, position), '[]'::json)
                  FROM public.plan_steps WHERE plan_id = target),
      'evaluation', (SELECT coalesce(json_agg(json_build_object('gate', gate, 'verdict', verdict, 'score', score)
                                              ORDER BY gate), '[]'::json)
                       FROM public.plan_evaluations e
                      WHERE e.plan_id = target AND e.scope = 'plan'
                        AND e.generation = (SELECT evaluation_generation FROM public.plans WHERE id = target)),
      'approvals', (SELECT coalesce(json_agg(a ORDER BY a.requested_at), '[]'::json) FROM (
          SELECT id, kind, step_id, status, digest, required_approvals, requested_at, decided_at, decision_reason
            FROM public.approvals WHERE plan_id = target) a),
      'overrides', (SELECT coalesce(json_agg(o ORDER BY o.created_at), '[]'::json) FROM (
          SELECT id, scope, gate, step_id, action, reason, actor, created_at, expires_at
            FROM public.overrides WHERE plan_id = target) o)
    )::text;
  END
  $$;
