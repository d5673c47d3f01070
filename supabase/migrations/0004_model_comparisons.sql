-- 0004 model comparisons: one row per compared model per plan (options.compare_models):
-- what it was sent (prompt digest), how long it took, what it used and cost, how its
-- proposal scored against the deterministic plan, and whether the plan adopted it.

-- Fail fast instead of queueing behind a long lock on a live database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

-- price_source names the price table and its version (e.g. "genai-prices 0.2.3
-- (bundled table)"); price_date is the day whose prices were applied, so
-- genai-prices at that version gives cost_usd again from the token counts.
-- cost_usd is NULL when the price is unknown (a model the table lacks, a call
-- that ended before reporting usage): cost_note must then say why. It is never
-- a silent 0; a 0 is a call that was not sent or that the provider refused.
CREATE TABLE public.model_comparisons (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  plan_id       uuid        NOT NULL REFERENCES public.plans (id),
  provider      text        NOT NULL CHECK (provider IN ('openai', 'anthropic')),
  model         text        NOT NULL CHECK (model <> ''),
  served_model  text,
  latency_ms    integer     CHECK (latency_ms IS NULL OR latency_ms >= 0),
  attempts      integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  input_tokens  integer     CHECK (input_tokens IS NULL OR input_tokens >= 0),
  output_tokens integer     CHECK (output_tokens IS NULL OR output_tokens >= 0),
  cost_usd      numeric     CHECK (cost_usd IS NULL OR cost_usd >= 0),
  cost_note     text,
  price_source  text,
  price_date    date,
  score         integer     NOT NULL CHECK (score BETWEEN 0 AND 100),
  valid         boolean     NOT NULL,
  reasons       jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(reasons) = 'array'),
  error         text,
  prompt_digest text        NOT NULL CHECK (prompt_digest ~ '^[0-9a-f]{64}$'),
  proposal      jsonb       CHECK (proposal IS NULL OR jsonb_typeof(proposal) = 'object'),
  best          boolean     NOT NULL DEFAULT false,
  adopted       boolean     NOT NULL DEFAULT false,
  comparison_ms integer     NOT NULL CHECK (comparison_ms >= 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (plan_id, provider, model),
  CONSTRAINT unknown_model_cost_has_a_reason CHECK (cost_usd IS NOT NULL OR cost_note IS NOT NULL),
  -- an invalid proposal can never be the best one, nor be adopted
  CONSTRAINT only_valid_proposals_win CHECK (valid OR NOT (best OR adopted)),
  CONSTRAINT adopted_is_the_best CHECK (NOT adopted OR best)
);
-- At most one best and one adopted proposal per plan.
CREATE UNIQUE INDEX model_comparisons_one_best ON public.model_comparisons (plan_id) WHERE best;

-- ------------------------------------------------------------------ RLS ----
-- Written by the server (the table owner) in the plan's transaction; viewers
-- and above read through the Data API; nobody else writes.
ALTER TABLE public.model_comparisons ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON public.model_comparisons TO authenticated;
GRANT ALL ON public.model_comparisons TO service_role;

CREATE POLICY model_comparisons_read ON public.model_comparisons FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
