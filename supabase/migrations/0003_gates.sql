-- 0003 gates: evaluation results per plan, step and model; policy overrides;
-- the notification outbox (Slack); gate settings in config; the step facts
-- the gates read (environment, tags, priority) kept on plan_steps.

-- Fail fast instead of queueing behind a long lock on a live database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

-- ------------------------------------------------------- step facts ----
ALTER TABLE public.plan_steps ADD COLUMN environment text;
ALTER TABLE public.plan_steps ADD COLUMN tags text[] NOT NULL DEFAULT '{}';
ALTER TABLE public.plan_steps ADD COLUMN priority smallint NOT NULL DEFAULT 3;
ALTER TABLE public.plan_steps ADD COLUMN duration_source text;

-- ------------------------------------------------- plan_evaluations ----
-- One generation per evaluation run (the plan's creation is generation 1; a
-- re-evaluation after policies or metrics change adds the next). Per
-- generation: a row per gate and an 'overall' row for the plan, a row per
-- gate for each step that has findings (the other steps are allow), and a
-- row per gate for each compared model.
--
-- `details` follows the JSON Schema of lib.gates.models.EvaluationDetails
-- (served in GET /api/openapi); the CHECK constraints below reject rows that
-- break its basic shape whoever writes them.

CREATE TABLE public.plan_evaluations (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  plan_id        uuid        NOT NULL REFERENCES public.plans (id),
  generation     integer     NOT NULL CHECK (generation >= 1),
  scope          text        NOT NULL CHECK (scope IN ('plan', 'step', 'model')),
  step_id        uuid,
  model          text,
  gate           text        NOT NULL CHECK (gate IN ('structural', 'risk', 'compliance', 'resource', 'overall')),
  verdict        text        NOT NULL CHECK (verdict IN ('allow', 'warn', 'block')),
  score          integer     NOT NULL CHECK (score BETWEEN 0 AND 100),
  details        jsonb       NOT NULL,
  policy_version text        NOT NULL,
  evaluated_by   text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT evaluation_scope_matches_target CHECK (
    (scope = 'step') = (step_id IS NOT NULL) AND (scope = 'model') = (model IS NOT NULL)),
  CONSTRAINT evaluation_details_shape CHECK (
    -- coalesce: a missing key gives NULL, which a CHECK would let through
    coalesce(jsonb_typeof(details) = 'object' AND jsonb_typeof(details -> 'findings') = 'array', false)
    AND NOT jsonb_path_exists(details,
      '$.findings[*] ? (!exists(@.code) || !exists(@.message) || !exists(@.remediation) || !exists(@.severity))')
    AND NOT jsonb_path_exists(details,
      '$.findings[*].severity ? (@ != "info" && @ != "warn" && @ != "block")'))
);
CREATE INDEX plan_evaluations_plan ON public.plan_evaluations (plan_id, generation, scope);

ALTER TABLE public.plans ADD COLUMN evaluation_generation integer NOT NULL DEFAULT 0;
ALTER TABLE public.plans ADD COLUMN policy_version text;

-- ---------------------------------------------------------- policies ----
-- Rego policies ship as files in lib/gates/policies/; a row here with the same
-- name replaces that file, a new name adds a policy, enabled = false drops one.

CREATE TABLE public.policies (
  name       text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  source     text        NOT NULL,
  enabled    boolean     NOT NULL DEFAULT true,
  updated_by text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- ----------------------------------------------------- notifications ----
-- The outbox of outgoing notifications (Slack): written in the transaction
-- that decided to notify, delivered after commit and retried with backoff
-- by the cron tick. A receiver that is down never fails the plan.

CREATE TABLE public.notifications (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  channel         text        NOT NULL CHECK (channel IN ('slack')),
  plan_id         uuid,
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz
);
CREATE INDEX notifications_due ON public.notifications (next_attempt_at) WHERE status = 'pending';

-- ----------------------------------------------------- gate settings ----
INSERT INTO public.config (key, value, description) VALUES
  ('gates.resource.hard_limit_usd', '250', 'resource gate blocks plans estimated above this many USD'),
  ('gates.risk.blast_radius_warn', '10', 'risk gate warns when this many steps depend on a risky step'),
  ('gates.risk.blast_radius_block', '100', 'risk gate blocks when this many steps depend on a risky step'),
  ('gates.structural.max_depth', '200', 'structural gate warns above this many stages'),
  ('gates.structural.max_width', '500', 'structural gate warns when a stage holds more steps'),
  ('gates.compliance.freeze_windows', '[]',
   'no execution of changing steps inside these windows: [{"start": ISO, "end": ISO, "reason": text}]'),
  ('gates.resource.supabase_prices',
   '{"usd_per_gb_month_database": 0.125, "usd_per_gb_month_storage": 0.021, "usd_per_million_invocations": 2.0, "bytes_per_row": 400, "source": "supabase.com/pricing, Pro plan overage rates", "as_of": "2026-11-01"}',
   'prices for the resource gate''s estimate of a plan''s Supabase footprint');

-- ------------------------------------------------------------------ RLS ----
ALTER TABLE public.plan_evaluations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON public.plan_evaluations, public.policies TO authenticated;
GRANT INSERT, UPDATE, DELETE ON public.policies TO authenticated;
GRANT ALL ON public.plan_evaluations, public.policies, public.notifications TO service_role;

CREATE POLICY plan_evaluations_read ON public.plan_evaluations FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
CREATE POLICY policies_read ON public.policies FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY policies_admin_insert ON public.policies FOR INSERT TO authenticated WITH CHECK (nofx.has_role('admin'));
CREATE POLICY policies_admin_update ON public.policies FOR UPDATE TO authenticated
  USING (nofx.has_role('admin')) WITH CHECK (nofx.has_role('admin'));
CREATE POLICY policies_admin_delete ON public.policies FOR DELETE TO authenticated USING (nofx.has_role('admin'));
-- notifications: server only (no policy).
