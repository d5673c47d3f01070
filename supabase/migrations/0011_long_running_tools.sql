-- 0011 Long-running tools, and every run a tool really made on record.
--
-- A webhook tool may answer 202 Accepted: the step stays `running` with a
-- lease from the tool's config (up to hours) and its external run, and the
-- tool reports later to POST /api/steps/:stepId/result, signed with its own
-- secret. Each delivery is used once. An attempt is recorded when it starts,
-- so a run whose worker died before recording it still counts.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

-- The external run of a step whose tool answered 202 (run id, status URL,
-- when it was accepted), and of its undo, while they report back.
ALTER TABLE public.plan_steps ADD COLUMN external_run jsonb
  CHECK (external_run IS NULL OR jsonb_typeof(external_run) = 'object');
ALTER TABLE public.plan_steps ADD COLUMN undo_run jsonb
  CHECK (undo_run IS NULL OR jsonb_typeof(undo_run) = 'object');

-- Every delivery to a step's callback, once: a replay of the same delivery
-- id is answered from here, never applied twice.
CREATE TABLE public.step_callbacks (
  delivery_id text        PRIMARY KEY CHECK (length(delivery_id) BETWEEN 1 AND 255),
  step_id     uuid        NOT NULL REFERENCES public.plan_steps (id),
  phase       text        NOT NULL CHECK (phase IN ('run', 'undo')),
  status      text        NOT NULL CHECK (status IN ('succeeded', 'failed', 'running')),
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX step_callbacks_step ON public.step_callbacks (step_id, received_at);

ALTER TABLE public.step_callbacks ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.step_callbacks TO authenticated;
GRANT ALL ON public.step_callbacks TO service_role;
CREATE POLICY step_callbacks_read ON public.step_callbacks FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));

-- tool_metrics: one row per attempt, written when it starts ('started') and
-- completed with its outcome. A row still 'started' after its lease is a run
-- whose outcome nobody recorded: it happened, and it is counted.
ALTER TABLE public.tool_metrics ADD COLUMN attempt integer CHECK (attempt IS NULL OR attempt >= 1);
ALTER TABLE public.tool_metrics ADD COLUMN started_at timestamptz;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX tool_metrics_step_attempt ON public.tool_metrics (step_id, attempt);

-- The estimates learn only from finished runs.
CREATE OR REPLACE VIEW public.tool_metric_stats WITH (security_invoker = true) AS
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
 WHERE status <> 'started'
 GROUP BY tool_id;

-- The due-work queries (the tick, a worker's look ahead) read steps by plan and status.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX plan_steps_plan_status ON public.plan_steps (plan_id, status);
