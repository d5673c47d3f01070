-- 0016 People are told where they work.
-- Only blocked plans reached Slack. Approval requests now do, with their
-- outcome posted into the same thread, and Zig Todo is sent each request
-- (a signed outbound webhook) so the todo appears where its user works.
--
-- notifications gains: the approval a row is about, the event it tells, the
-- row whose Slack thread it replies in (thread_of; delivered after it), the
-- id the channel gave the posted message (Slack's ts), and a key that makes
-- a message once per approval and event (Zig Todo's webhook-id).

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

ALTER TABLE public.notifications ADD COLUMN approval_id uuid;
ALTER TABLE public.notifications ADD COLUMN event text;
-- no foreign key: an outbox row never goes away while a reply to it waits
ALTER TABLE public.notifications ADD COLUMN thread_of bigint;
ALTER TABLE public.notifications ADD COLUMN external_id text;
ALTER TABLE public.notifications ADD COLUMN dedupe_key text;

-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX notifications_dedupe ON public.notifications (dedupe_key) WHERE dedupe_key IS NOT NULL;
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX notifications_approval ON public.notifications (approval_id, event) WHERE approval_id IS NOT NULL;

-- the channel list widens: every row the old check allowed, the new one allows
-- (checked under the lock: a few rows per plan, moments even for a busy
-- project)
-- squawk-ignore ban-drop-constraint
ALTER TABLE public.notifications DROP CONSTRAINT notifications_channel_check;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE public.notifications ADD CONSTRAINT notifications_channel_check
  CHECK (channel IN ('slack', 'zig_todo'));
