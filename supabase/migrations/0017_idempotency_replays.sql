-- 0017 Idempotency replays counted, for GET /api/metrics: how often a client
-- (or Zig Todo redelivering) sent a request again and got the stored answer.
-- Keys are kept 24 hours, so the sum is a count over that window.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

ALTER TABLE public.idempotency_keys ADD COLUMN replays integer NOT NULL DEFAULT 0;
