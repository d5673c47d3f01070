-- Demo data for `make dev`: a tool registry, four packs and a 34-item backlog
-- with dependencies (chains, a diamond, fan-in, an isolated item, a finished
-- dependency), plus Phase 2 tool metrics so the estimates mean something.
-- Safe to load again: nothing is duplicated and nothing a person changed is
-- overwritten.

INSERT INTO public.tools (id, name, description, kind, config, category, mutating, sensitive,
                          approval_policy, rollback_template, cost_model, default_duration_ms) VALUES
  ('builtin.noop', 'No-op', 'Does nothing; for demos and tests', 'builtin', '{"action": "noop"}', 'general',
   false, false, NULL, NULL, '{"usd_per_call": 0}', 5),
  ('builtin.echo', 'Echo', 'Returns its inputs as its output', 'builtin', '{"action": "echo"}', 'general',
   false, false, NULL, NULL, '{"usd_per_call": 0}', 5),
  ('builtin.sleep', 'Sleep', 'Waits inputs.seconds, then succeeds', 'builtin', '{"action": "sleep"}', 'general',
   false, false, NULL, NULL, '{"usd_per_call": 0}', 1000),
  ('builtin.fail', 'Fail on demand', 'Fails when inputs.fail is true (or always without it)', 'builtin',
   '{"action": "fail"}', 'general', false, false, NULL, NULL, '{"usd_per_call": 0}', 5),
  ('ci.test', 'Run test suite', 'Runs the service''s CI suite', 'builtin', '{"action": "echo"}', 'test',
   false, false, NULL, NULL, '{"usd_per_minute": 0.008}', 240000),
  ('build.image', 'Build container image', 'Builds and pushes an image', 'builtin', '{"action": "echo"}', 'build',
   false, false, NULL, NULL, '{"usd_per_minute": 0.012}', 300000),
  ('db.migrate', 'Database migration', 'Applies a schema migration', 'builtin', '{"action": "echo"}', 'data',
   true, true, '{"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"}',
   '{"tool_id": "db.migrate", "inputs": {"direction": "down", "to": "{{inputs.previous}}"}}',
   '{"usd_per_call": 0.02}', 120000),
  ('deploy.staging', 'Deploy to staging', 'Rolls a version out to staging', 'builtin', '{"action": "echo"}', 'deploy',
   true, false, NULL,
   '{"tool_id": "deploy.staging", "inputs": {"service": "{{inputs.service}}", "version": "{{inputs.previous_version}}"}}',
   '{"usd_per_call": 0.05}', 180000),
  ('deploy.production', 'Deploy to production', 'Rolls a version out to production', 'builtin', '{"action": "echo"}',
   'deploy', true, true, '{"required_approvals": 2, "timeout_seconds": 14400, "approver_role": "approver"}',
   '{"tool_id": "deploy.production", "inputs": {"service": "{{inputs.service}}", "version": "{{inputs.previous_version}}"}}',
   '{"usd_per_call": 0.10}', 420000),
  ('data.export', 'Export data set', 'Exports a data set to a partner bucket', 'builtin', '{"action": "echo"}',
   'export', true, true, '{"required_approvals": 1, "timeout_seconds": 3600, "approver_role": "approver"}',
   '{"tool_id": "data.export", "inputs": {"revoke": "{{inputs.destination}}"}}', NULL, 600000),
  ('notify.slack', 'Post to Slack', 'Posts a release note', 'builtin', '{"action": "echo"}', 'notify',
   false, false, NULL, NULL, '{"usd_per_call": 0}', 2000),
  ('docs.publish', 'Publish docs', 'Publishes the docs site', 'builtin', '{"action": "echo"}', 'docs',
   true, false, NULL, NULL, '{"usd_per_call": 0.01}', 60000),
  ('llm.summarize', 'Summarize with an LLM', 'Writes a changelog summary', 'builtin', '{"action": "echo"}', 'llm',
   false, false, NULL, NULL, NULL, 20000)
ON CONFLICT (id) DO NOTHING;

INSERT INTO public.packs (id, name, description, owner) VALUES
  ('payments', 'Payments', 'Charge API, ledger and payouts', 'team-payments'),
  ('onboarding', 'Onboarding', 'Sign-up, KYC and first-run experience', 'team-growth'),
  ('analytics', 'Analytics', 'Warehouse, exports and dashboards', 'team-data'),
  ('platform', 'Platform', 'Shared infrastructure', 'team-platform')
ON CONFLICT (id) DO NOTHING;

INSERT INTO public.backlog_items (key, title, description, pack_id, tool_id, inputs, priority,
                                  estimate_minutes, status, tags, environment) VALUES
  ('PLT-1', 'Upgrade base image to Debian 13', 'Security patch baseline', 'platform', 'build.image',
   '{"service": "base"}', 1, 20, 'done', '{}', NULL),
  ('PLT-2', 'Rotate database credentials', '', 'platform', 'db.migrate',
   '{"service": "core-db", "previous": "creds-2026-10"}', 2, 15, 'open', '{security}', 'production'),
  ('PLT-3', 'Run platform regression suite', '', 'platform', 'ci.test', '{"service": "platform"}', 2, 12, 'open', '{}', 'staging'),
  ('PLT-4', 'Deploy platform to staging', '', 'platform', 'deploy.staging',
   '{"service": "platform", "version": "4.2.0", "previous_version": "4.1.3"}', 2, 6, 'open', '{}', 'staging'),
  ('PLT-5', 'Deploy platform to production', '', 'platform', 'deploy.production',
   '{"service": "platform", "version": "4.2.0", "previous_version": "4.1.3"}', 1, 10, 'open', '{}', 'production'),
  ('PLT-6', 'Announce platform release', '', 'platform', 'notify.slack', '{"channel": "#releases"}', 4, 1, 'open', '{}', NULL),

  ('PAY-1', 'Add idempotency keys to charge API', '', 'payments', 'ci.test', '{"service": "charges"}', 1, 30, 'open', '{}', 'staging'),
  ('PAY-2', 'Migrate ledger schema to v7', '', 'payments', 'db.migrate',
   '{"service": "ledger", "migration": "0007_ledger_v7", "previous": "0006"}', 1, 25, 'open', '{}', 'production'),
  ('PAY-3', 'Backfill ledger balances', '', 'payments', 'builtin.echo', '{"service": "ledger", "batch": 5000}', 2, 40, 'open', '{}', 'staging'),
  ('PAY-4', 'Rebuild payouts worker', '', 'payments', 'build.image', '{"service": "payouts"}', 2, 15, 'open', '{}', NULL),
  ('PAY-5', 'Run payments integration suite', '', 'payments', 'ci.test', '{"service": "payments"}', 2, 20, 'open', '{}', 'staging'),
  ('PAY-6', 'Deploy payments to staging', '', 'payments', 'deploy.staging',
   '{"service": "payments", "version": "7.0.0", "previous_version": "6.9.2"}', 2, 8, 'open', '{}', 'staging'),
  ('PAY-7', 'Deploy payments to production', '', 'payments', 'deploy.production',
   '{"service": "payments", "version": "7.0.0", "previous_version": "6.9.2"}', 1, 12, 'open', '{}', 'production'),
  ('PAY-8', 'Export settlement report for auditors', '', 'payments', 'data.export',
   '{"dataset": "settlements_2026q3", "destination": "s3://auditor-drop"}', 3, 30, 'open', '{compliance:sox}', 'production'),
  ('PAY-9', 'Publish payments API docs', '', 'payments', 'docs.publish', '{"site": "docs/payments"}', 4, 10, 'open', '{}', NULL),
  ('PAY-10', 'Announce payments v7', '', 'payments', 'notify.slack', '{"channel": "#payments"}', 5, 1, 'open', '{}', NULL),

  ('ONB-1', 'Design new KYC flow', '', 'onboarding', 'builtin.noop', '{}', 2, 60, 'open', '{}', NULL),
  ('ONB-2', 'Add KYC provider client', '', 'onboarding', 'ci.test', '{"service": "kyc"}', 2, 30, 'open', '{}', 'staging'),
  ('ONB-3', 'Create KYC tables', '', 'onboarding', 'db.migrate',
   '{"service": "kyc", "migration": "0003_kyc", "previous": "0002"}', 2, 10, 'open', '{}', 'production'),
  ('ONB-4', 'Build onboarding service', '', 'onboarding', 'build.image', '{"service": "onboarding"}', 3, 15, 'open', '{}', NULL),
  ('ONB-5', 'Run onboarding suite', '', 'onboarding', 'ci.test', '{"service": "onboarding"}', 3, 15, 'open', '{}', 'staging'),
  ('ONB-6', 'Deploy onboarding to staging', '', 'onboarding', 'deploy.staging',
   '{"service": "onboarding", "version": "2.3.0", "previous_version": "2.2.4"}', 3, 6, 'open', '{}', 'staging'),
  ('ONB-7', 'Deploy onboarding to production', '', 'onboarding', 'deploy.production',
   '{"service": "onboarding", "version": "2.3.0", "previous_version": "2.2.4"}', 2, 10, 'open', '{}', 'production'),
  ('ONB-8', 'Write first-run checklist copy', '', 'onboarding', 'builtin.noop', '{}', 4, 45, 'open', '{}', NULL),
  ('ONB-9', 'Publish onboarding help pages', '', 'onboarding', 'docs.publish', '{"site": "help/onboarding"}', 4, 10, 'open', '{}', NULL),
  ('ONB-10', 'Announce new onboarding', '', 'onboarding', 'notify.slack', '{"channel": "#growth"}', 5, 1, 'open', '{}', NULL),

  ('ANA-1', 'Add events table partitions', '', 'analytics', 'db.migrate',
   '{"service": "warehouse", "migration": "0011_partitions", "previous": "0010"}', 3, 20, 'open', '{}', 'production'),
  ('ANA-2', 'Rebuild ETL workers', '', 'analytics', 'build.image', '{"service": "etl"}', 3, 15, 'open', '{}', NULL),
  ('ANA-3', 'Run ETL regression suite', '', 'analytics', 'ci.test', '{"service": "etl"}', 3, 25, 'open', '{}', 'staging'),
  ('ANA-4', 'Deploy ETL to staging', '', 'analytics', 'deploy.staging',
   '{"service": "etl", "version": "1.8.0", "previous_version": "1.7.5"}', 3, 6, 'open', '{}', 'staging'),
  ('ANA-5', 'Export churn cohort to partner', '', 'analytics', 'data.export',
   '{"dataset": "churn_cohort", "destination": "s3://partner-growth"}', 4, 20, 'open', '{}', 'production'),
  ('ANA-6', 'Summarize Q3 metrics for the board', '', 'analytics', 'llm.summarize', '{"quarter": "2026Q3"}', 4, 5, 'open', '{}', NULL),
  ('ANA-7', 'Refresh revenue dashboard', '', 'analytics', 'builtin.echo', '{"dashboard": "revenue"}', 4, 10, 'open', '{}', NULL),
  ('ANA-8', 'Archive 2023 raw events', '', 'analytics', 'builtin.sleep', '{"seconds": 0.2}', 5, 30, 'open', '{}', NULL)
ON CONFLICT (key) DO NOTHING;

-- Dependencies by key (only where none were recorded yet).
WITH deps (key, needs) AS (VALUES
  ('PLT-2', ARRAY['PLT-1']),
  ('PLT-3', ARRAY['PLT-1']),
  ('PLT-4', ARRAY['PLT-2', 'PLT-3']),
  ('PLT-5', ARRAY['PLT-4']),
  ('PLT-6', ARRAY['PLT-5']),
  ('PAY-2', ARRAY['PAY-1', 'PLT-2']),
  ('PAY-3', ARRAY['PAY-2']),
  ('PAY-4', ARRAY['PAY-2']),
  ('PAY-5', ARRAY['PAY-3', 'PAY-4']),
  ('PAY-6', ARRAY['PAY-5']),
  ('PAY-7', ARRAY['PAY-6']),
  ('PAY-8', ARRAY['PAY-3']),
  ('PAY-9', ARRAY['PAY-7']),
  ('PAY-10', ARRAY['PAY-7', 'PAY-9']),
  ('ONB-2', ARRAY['ONB-1']),
  ('ONB-3', ARRAY['ONB-1']),
  ('ONB-4', ARRAY['ONB-2', 'ONB-3']),
  ('ONB-5', ARRAY['ONB-4']),
  ('ONB-6', ARRAY['ONB-5', 'PLT-4']),
  ('ONB-7', ARRAY['ONB-6']),
  ('ONB-9', ARRAY['ONB-7', 'ONB-8']),
  ('ONB-10', ARRAY['ONB-9']),
  ('ANA-2', ARRAY['ANA-1']),
  ('ANA-3', ARRAY['ANA-2']),
  ('ANA-4', ARRAY['ANA-3']),
  ('ANA-5', ARRAY['ANA-1']),
  ('ANA-6', ARRAY['ANA-4', 'PAY-7'])
)
UPDATE public.backlog_items AS b
   SET depends_on = (SELECT array_agg(d.id ORDER BY d.key) FROM public.backlog_items AS d WHERE d.key = ANY (deps.needs))
  FROM deps
 WHERE b.key = deps.key AND b.depends_on = '{}';

-- Phase 2 metrics: a few past runs per tool (durations in ms, cost in USD).
INSERT INTO public.tool_metrics (tool_id, status, duration_ms, input_tokens, output_tokens, cost_usd, cost_note, recorded_at)
SELECT t.tool_id, 'succeeded', (t.base_ms * (0.8 + 0.05 * g))::int, t.tokens_in, t.tokens_out, t.cost, t.note,
       now() - make_interval(days => g)
  FROM (VALUES
    ('ci.test', 230000, NULL::int, NULL::int, 0.031::numeric, NULL::text),
    ('build.image', 280000, NULL, NULL, 0.056, NULL),
    ('db.migrate', 95000, NULL, NULL, 0.02, NULL),
    ('deploy.staging', 170000, NULL, NULL, 0.05, NULL),
    ('deploy.production', 400000, NULL, NULL, 0.10, NULL),
    ('llm.summarize', 18000, 5200, 900, NULL, 'model price not configured'),
    ('notify.slack', 1500, NULL, NULL, 0, NULL)
  ) AS t (tool_id, base_ms, tokens_in, tokens_out, cost, note)
  CROSS JOIN generate_series(1, 8) AS g
 WHERE NOT EXISTS (SELECT 1 FROM public.tool_metrics m WHERE m.tool_id = t.tool_id);

-- The demo runs with both features on, unless an admin has switched one since.
UPDATE public.config SET value = 'true', updated_by = 'seed', updated_at = now()
 WHERE key IN ('FEATURE_AUTO_PLANNER', 'FEATURE_PLANNER_EXECUTE') AND updated_by = 'migration';
