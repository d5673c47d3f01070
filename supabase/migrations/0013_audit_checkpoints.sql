-- 0013 Audit checkpoints: how far each chain has been verified.
-- Reading a plan's trail verified the whole chain every time (0.5 s at
-- 20,000 entries, whatever page was asked for). The tick now verifies each
-- chain's new entries once and records the last verified entry here; a read
-- verifies from that checkpoint (and that the checkpointed entry still carries
-- the hash it was verified with), and `?verify=full` or `make audit-verify`
-- checks the whole chain from its first entry.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
CREATE TABLE public.audit_checkpoints (
  chain       text        PRIMARY KEY,
  seq         bigint      NOT NULL CHECK (seq >= 1),
  hash        text        NOT NULL,
  verified_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE public.audit_checkpoints ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.audit_checkpoints TO authenticated;
GRANT ALL ON public.audit_checkpoints TO service_role;
CREATE POLICY audit_checkpoints_read ON public.audit_checkpoints FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
