-- 0014 Storage that works on first deploy, and uploads outside transactions.
--
-- The bucket: snapshots and approval artifacts go to the private Supabase
-- Storage bucket `nofx` (NOFX_STORAGE_BUCKET names another; create that one
-- yourself). Storage's upload needs the bucket to exist, so it is made here
-- where Supabase's `storage` schema exists, and skipped elsewhere (plain
-- PostgreSQL, the embedded one), where the local store needs none.
--
-- The upload outbox: a snapshot or artifact is written here in the
-- transaction that refers to it (its audit row keeps the digest), and
-- uploaded to storage after that transaction commits, then deleted. A
-- storage outage or missing storage settings no longer fail a step or an
-- approval request: the row waits and the tick retries it with backoff.
-- Objects are content-addressed, so an upload repeated is harmless.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DO $bucket$
BEGIN
  IF to_regclass('storage.buckets') IS NOT NULL THEN
    EXECUTE $sql$
      INSERT INTO storage.buckets (id, name, public) VALUES ('nofx', 'nofx', false)
      ON CONFLICT (id) DO NOTHING
    $sql$;
  END IF;
END
$bucket$;

CREATE TABLE public.storage_outbox (
  key             text        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 1024),
  data            bytea       NOT NULL,
  content_type    text        NOT NULL DEFAULT 'application/json',
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX storage_outbox_due ON public.storage_outbox (next_attempt_at);

ALTER TABLE public.storage_outbox ENABLE ROW LEVEL SECURITY;
GRANT ALL ON public.storage_outbox TO service_role;
