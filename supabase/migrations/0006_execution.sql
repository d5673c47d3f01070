-- 0006 execution: overrides (a named person's recorded act, with a reason and
-- a scope it never reaches beyond) and what the executor needs.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

CREATE TABLE public.overrides (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  plan_id            uuid        NOT NULL REFERENCES public.plans (id),
  scope              text        NOT NULL CHECK (scope IN ('plan', 'gate', 'step')),
  gate               text        CHECK (gate IS NULL OR gate IN ('structural', 'risk', 'compliance', 'resource')),
  step_id            uuid        REFERENCES public.plan_steps (id),
  action             text        NOT NULL CHECK (action IN ('allow', 'skip', 'retry', 'cancel', 'rollback')),
  reason             text        NOT NULL CHECK (length(btrim(reason)) >= 3),
  actor              text        NOT NULL,
  actor_sub          text        NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz,
  overridden_verdict jsonb       NOT NULL DEFAULT '{}'::jsonb,
  snapshot_key       text,
  snapshot_digest    text,
  CONSTRAINT override_scope_names_its_target CHECK (
    (scope = 'gate') = (gate IS NOT NULL) AND (scope = 'step') = (step_id IS NOT NULL)),
  CONSTRAINT override_action_fits_scope CHECK (
    (action = 'allow' AND scope IN ('plan', 'gate'))
    OR (action IN ('skip', 'retry') AND scope = 'step')
    OR (action IN ('cancel', 'rollback') AND scope = 'plan')),
  CONSTRAINT override_expires_after_it_starts CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX overrides_plan ON public.overrides (plan_id, created_at);

-- An override is a record of what a person did: it is never edited or removed.
CREATE TRIGGER overrides_append_only BEFORE UPDATE OR DELETE ON public.overrides
  FOR EACH ROW EXECUTE FUNCTION nofx.refuse_change();

ALTER TABLE public.overrides ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.overrides TO authenticated;
GRANT SELECT, INSERT ON public.overrides TO service_role;
CREATE POLICY overrides_read ON public.overrides FOR SELECT TO authenticated USING (nofx.has_role('viewer'));

-- An admin's retry of a denied step moves its approval round, which is part of
-- what the approval's digest covers: the step is asked for anew.
ALTER TABLE public.plan_steps ADD COLUMN approval_round integer NOT NULL DEFAULT 0;

-- (The executor's queries find steps through plan_steps_plan (plan_id, ...)
-- and plans through plans_status (status, ...), both from 0002.)
