-- 0015 The Supabase footprint measured, not guessed.
-- The resource gate priced hard-coded guesses (400 B a row, 700 B of
-- snapshot per step, 4 snapshots) at monthly per-GB prices as one-off costs.
-- The tick now measures bytes and invocations per step on this project
-- (config `gates.resource.measured_usage`, lib/ops/usage.py), and stored bytes
-- are priced per GB-month over the retention period set here.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

INSERT INTO public.config (key, value, description) VALUES
  ('gates.resource.retention_months', '12',
   'months a plan''s rows, snapshots and artifacts are kept: stored bytes are priced per GB-month over this period')
ON CONFLICT (key) DO NOTHING;

-- the guesses the measured figures replace
UPDATE public.config
   SET value = value - 'bytes_per_row'
 WHERE key = 'gates.resource.supabase_prices' AND value ? 'bytes_per_row';
