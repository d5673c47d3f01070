-- 0002 planner: the backlog (packs, backlog_items), the tool registry and its
-- Phase 2 metrics, and plans with their steps.

-- Fail fast instead of queueing behind a long lock on a live database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

-- ----------------------------------------------------------------- packs ----

CREATE TABLE public.packs (
  id          text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$'),
  name        text        NOT NULL,
  description text        NOT NULL DEFAULT '',
  owner       text,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- ----------------------------------------------------------------- tools ----
-- approval_policy: {"required_approvals": 1|2, "timeout_seconds": n, "approver_role": "approver"|"admin"}
--   (null: the tool runs without a person).
-- rollback_template: {"tool_id": ..., "inputs": {... "{{inputs.x}}" ...}} rendered per step.
-- cost_model: {"usd_per_call": n, "usd_per_minute": n} (null: price unknown, never $0).

CREATE TABLE public.tools (
  id                  text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]*$'),
  name                text        NOT NULL,
  description         text        NOT NULL DEFAULT '',
  kind                text        NOT NULL CHECK (kind IN ('builtin', 'webhook')),
  config              jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
  category            text        NOT NULL DEFAULT 'general',
  mutating            boolean     NOT NULL DEFAULT false,
  sensitive           boolean     NOT NULL DEFAULT false,
  approval_policy     jsonb       CHECK (approval_policy IS NULL OR jsonb_typeof(approval_policy) = 'object'),
  rollback_template   jsonb       CHECK (rollback_template IS NULL OR jsonb_typeof(rollback_template) = 'object'),
  cost_model          jsonb       CHECK (cost_model IS NULL OR jsonb_typeof(cost_model) = 'object'),
  default_duration_ms integer     CHECK (default_duration_ms IS NULL OR default_duration_ms >= 0),
  created_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhook_tools_have_a_url CHECK (kind <> 'webhook' OR config ? 'url')
);

-- ---------------------------------------------------------- tool_metrics ----
-- The Phase 2 loop: the executor records every step's duration, tokens and
-- cost; the planner and the resource gate estimate from these rows.

CREATE TABLE public.tool_metrics (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tool_id       text        NOT NULL,
  plan_id       uuid,
  step_id       uuid,
  status        text        NOT NULL,
  duration_ms   integer     NOT NULL CHECK (duration_ms >= 0),
  input_tokens  integer     CHECK (input_tokens IS NULL OR input_tokens >= 0),
  output_tokens integer     CHECK (output_tokens IS NULL OR output_tokens >= 0),
  cost_usd      numeric(14, 6) CHECK (cost_usd IS NULL OR cost_usd >= 0),
  cost_note     text,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  -- an unknown cost must say why; it is never silently zero
  CONSTRAINT unknown_cost_has_a_reason CHECK (cost_usd IS NOT NULL OR cost_note IS NOT NULL)
);
CREATE INDEX tool_metrics_tool ON public.tool_metrics (tool_id, recorded_at);

CREATE VIEW public.tool_metric_stats WITH (security_invoker = true) AS
SELECT tool_id,
       count(*)                                                        AS samples,
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY duration_ms)       AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)       AS p95_ms,
       avg(input_tokens)                                               AS avg_input_tokens,
       avg(output_tokens)                                              AS avg_output_tokens,
       avg(cost_usd)                                                   AS avg_cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL)                        AS unknown_cost_samples,
       max(recorded_at)                                                AS last_recorded_at
  FROM public.tool_metrics
 GROUP BY tool_id;

-- --------------------------------------------------------- backlog_items ----

CREATE TABLE public.backlog_items (
  id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  key              text        NOT NULL UNIQUE CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'),
  title            text        NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
  description      text        NOT NULL DEFAULT '',
  pack_id          text        NOT NULL REFERENCES public.packs (id),
  tool_id          text        NOT NULL REFERENCES public.tools (id),
  inputs           jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(inputs) = 'object'),
  priority         smallint    NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  estimate_minutes numeric(10, 2) CHECK (estimate_minutes IS NULL OR estimate_minutes >= 0),
  status           text        NOT NULL DEFAULT 'open'
                               CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
  -- other items this one waits for; kept as ids (not foreign keys) so that a
  -- dependency on a removed item is reported by the planner, not hidden
  depends_on       uuid[]      NOT NULL DEFAULT '{}',
  tags             text[]      NOT NULL DEFAULT '{}',
  environment      text        CHECK (environment IS NULL OR environment IN ('development', 'staging', 'production')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backlog_items_open ON public.backlog_items (status, priority);
CREATE INDEX backlog_items_pack ON public.backlog_items (pack_id);

-- ----------------------------------------------------------------- plans ----

CREATE TABLE public.plans (
  id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  version           integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
  title             text        NOT NULL DEFAULT '',
  status            text        NOT NULL DEFAULT 'draft' CHECK (status IN (
                      'draft', 'ready', 'blocked', 'approved', 'executing', 'paused',
                      'completed', 'failed', 'cancelled', 'rolled_back')),
  status_reason     text,
  verdict           text        CHECK (verdict IS NULL OR verdict IN ('allow', 'warn', 'block')),
  score             integer     CHECK (score IS NULL OR score BETWEEN 0 AND 100),
  source            text        NOT NULL DEFAULT 'deterministic',
  idempotency_key   text,
  input_fingerprint text        NOT NULL,
  options           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  totals            jsonb       NOT NULL DEFAULT '{}'::jsonb,
  graph             jsonb       NOT NULL DEFAULT '{}'::jsonb,
  backlog_item_ids  uuid[]      NOT NULL DEFAULT '{}',
  pack_ids          text[]      NOT NULL DEFAULT '{}',
  created_by        text        NOT NULL,
  created_by_sub    text        NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- While a plan for an input fingerprint is open, asking again returns it: the
-- database, not a race between two requests, decides which plan exists.
CREATE UNIQUE INDEX plans_one_open_per_fingerprint ON public.plans (input_fingerprint)
  WHERE status IN ('draft', 'ready', 'blocked', 'approved', 'executing', 'paused');
CREATE INDEX plans_status ON public.plans (status, created_at);

-- ------------------------------------------------------------ plan_steps ----

CREATE TABLE public.plan_steps (
  id                uuid        PRIMARY KEY,
  plan_id           uuid        NOT NULL REFERENCES public.plans (id),
  backlog_item_id   uuid,
  item_key          text        NOT NULL,
  title             text        NOT NULL,
  pack_id           text        NOT NULL,
  tool_id           text        NOT NULL,
  stage             integer     NOT NULL CHECK (stage >= 0),
  position          integer     NOT NULL CHECK (position >= 0),
  depends_on        uuid[]      NOT NULL DEFAULT '{}',
  idempotency_token text        NOT NULL,
  rollback          jsonb,
  inputs            jsonb       NOT NULL DEFAULT '{}'::jsonb,
  requires_approval boolean     NOT NULL DEFAULT false,
  status            text        NOT NULL DEFAULT 'pending' CHECK (status IN (
                      'pending', 'awaiting_approval', 'approved', 'running', 'succeeded',
                      'failed', 'skipped', 'denied', 'rolled_back')),
  est_duration_ms   integer,
  est_cost_usd      numeric(14, 6),
  cost_note         text,
  attempts          integer     NOT NULL DEFAULT 0,
  lease_until       timestamptz,
  leased_by         text,
  started_at        timestamptz,
  finished_at       timestamptz,
  output            jsonb,
  error             text,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (plan_id, idempotency_token)
);
CREATE INDEX plan_steps_plan ON public.plan_steps (plan_id, stage, position);

-- ------------------------------------------------------------------- RLS ----
-- The API writes as the table owner (server side). Through Supabase's Data API
-- and Realtime, a signed-in user reads by role; only the backlog is writable
-- by planners directly, and the tool registry by admins.

ALTER TABLE public.packs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.tool_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.backlog_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.plan_steps ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON public.packs, public.tools, public.tool_metrics, public.tool_metric_stats,
                public.backlog_items, public.plans, public.plan_steps TO authenticated;
GRANT INSERT, UPDATE, DELETE ON public.packs, public.backlog_items, public.tools TO authenticated;
GRANT ALL ON public.packs, public.tools, public.tool_metrics, public.backlog_items,
             public.plans, public.plan_steps TO service_role;
GRANT SELECT ON public.tool_metric_stats TO service_role;

CREATE POLICY packs_read ON public.packs FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY packs_plan_insert ON public.packs FOR INSERT TO authenticated WITH CHECK (nofx.has_role('planner'));
CREATE POLICY packs_plan_update ON public.packs FOR UPDATE TO authenticated
  USING (nofx.has_role('planner')) WITH CHECK (nofx.has_role('planner'));
CREATE POLICY packs_admin_delete ON public.packs FOR DELETE TO authenticated USING (nofx.has_role('admin'));

CREATE POLICY backlog_read ON public.backlog_items FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY backlog_plan_insert ON public.backlog_items FOR INSERT TO authenticated
  WITH CHECK (nofx.has_role('planner'));
CREATE POLICY backlog_plan_update ON public.backlog_items FOR UPDATE TO authenticated
  USING (nofx.has_role('planner')) WITH CHECK (nofx.has_role('planner'));
CREATE POLICY backlog_admin_delete ON public.backlog_items FOR DELETE TO authenticated
  USING (nofx.has_role('admin'));

CREATE POLICY tools_read ON public.tools FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY tools_admin_insert ON public.tools FOR INSERT TO authenticated WITH CHECK (nofx.has_role('admin'));
CREATE POLICY tools_admin_update ON public.tools FOR UPDATE TO authenticated
  USING (nofx.has_role('admin')) WITH CHECK (nofx.has_role('admin'));
CREATE POLICY tools_admin_delete ON public.tools FOR DELETE TO authenticated USING (nofx.has_role('admin'));

CREATE POLICY tool_metrics_read ON public.tool_metrics FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY plans_read ON public.plans FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY plan_steps_read ON public.plan_steps FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
