-- 0001 foundation: role helpers, feature flags and settings (config),
-- idempotency keys, the event outbox, and the hash-chained audit log.
-- Forward-only. RLS policies sit beside the table they guard.

-- Fail fast instead of queueing behind a long lock on a live database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

CREATE SCHEMA IF NOT EXISTS nofx;
GRANT USAGE ON SCHEMA nofx TO anon, authenticated, service_role;

-- ---------------------------------------------------------------- roles ----
-- The NOFX role rides in the Supabase JWT as app_metadata.nofx_role; the
-- service_role key acts as admin. Policies call these, never parse claims.

CREATE FUNCTION nofx.role_rank(role_name text) RETURNS integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT array_position(ARRAY['viewer', 'planner', 'approver', 'admin'], role_name) $$;

CREATE FUNCTION nofx.jwt_role() RETURNS text
  LANGUAGE sql STABLE
  AS $$
    SELECT CASE
      WHEN auth.jwt() ->> 'role' = 'service_role' THEN 'admin'
      ELSE auth.jwt() -> 'app_metadata' ->> 'nofx_role'
    END
  $$;

CREATE FUNCTION nofx.has_role(minimum text) RETURNS boolean
  LANGUAGE sql STABLE
  AS $$ SELECT coalesce(nofx.role_rank(nofx.jwt_role()) >= nofx.role_rank(minimum), false) $$;

GRANT EXECUTE ON FUNCTION nofx.role_rank(text), nofx.jwt_role(), nofx.has_role(text)
  TO anon, authenticated, service_role;

-- Append-only tables refuse UPDATE, DELETE and TRUNCATE from every role,
-- service_role and the owner included (RLS alone would not stop those).
CREATE FUNCTION nofx.refuse_change() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END
  $$;

-- --------------------------------------------------------------- config ----

CREATE TABLE public.config (
  key         text        PRIMARY KEY CHECK (key ~ '^[A-Za-z][A-Za-z0-9_.]*$'),
  value       jsonb       NOT NULL,
  description text        NOT NULL DEFAULT '',
  updated_by  text        NOT NULL DEFAULT 'migration',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  -- a feature flag is a boolean; anything else would silently read as off
  CONSTRAINT config_flags_are_boolean CHECK (key NOT LIKE 'FEATURE\_%' OR jsonb_typeof(value) = 'boolean')
);

ALTER TABLE public.config ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.config TO authenticated, service_role;
CREATE POLICY config_read ON public.config FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
CREATE POLICY config_admin_insert ON public.config FOR INSERT TO authenticated
  WITH CHECK (nofx.has_role('admin'));
CREATE POLICY config_admin_update ON public.config FOR UPDATE TO authenticated
  USING (nofx.has_role('admin')) WITH CHECK (nofx.has_role('admin'));
CREATE POLICY config_admin_delete ON public.config FOR DELETE TO authenticated
  USING (nofx.has_role('admin'));

-- Both features ship dark: each is switched on by an admin, on its own.
INSERT INTO public.config (key, value, description) VALUES
  ('FEATURE_AUTO_PLANNER', 'false', 'POST /api/auto-planner/plan builds plans from the backlog'),
  ('FEATURE_PLANNER_EXECUTE', 'false', 'POST /api/auto-planner/execute runs planned steps');

-- ------------------------------------------------------ idempotency keys ----
-- Stripe-style: the first request with a key stores its fingerprint and its
-- response; a repeat replays it; another body under the same key is a 409.

CREATE TABLE public.idempotency_keys (
  scope            text        NOT NULL,
  key              text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  fingerprint      text        NOT NULL,
  status           text        NOT NULL CHECK (status IN ('processing', 'completed')),
  response_status  integer,
  response_headers jsonb,
  response_body    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON public.idempotency_keys (created_at);
-- Server-side only: no policy, so no API role sees or writes a key.
ALTER TABLE public.idempotency_keys ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------- events ----
-- The outbox and the record of truth for events. Each row is published in
-- the inserting transaction through realtime.send (Broadcast from Database)
-- and pg_notify; GET /api/events replays it with a cursor. `tx` lets readers
-- hold back rows of transactions that may still commit below a cursor.

CREATE TABLE public.events (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tx          xid8        NOT NULL DEFAULT pg_current_xact_id(),
  type        text        NOT NULL CHECK (type ~ '^[a-z_]+\.[a-z_]+$'),
  plan_id     uuid,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  data        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object')
);
CREATE INDEX events_tx_id ON public.events (tx, id);
CREATE INDEX events_plan_id ON public.events (plan_id, id);

ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.events TO authenticated, service_role;
CREATE POLICY events_read ON public.events FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON public.events
  FOR EACH ROW EXECUTE FUNCTION nofx.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON public.events
  FOR EACH STATEMENT EXECUTE FUNCTION nofx.refuse_change();

CREATE FUNCTION nofx.publish_event() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
  AS $$
  DECLARE
    payload jsonb := jsonb_build_object(
      'id', NEW.id, 'type', NEW.type, 'plan_id', NEW.plan_id,
      'occurred_at', NEW.occurred_at, 'data', NEW.data);
  BEGIN
    PERFORM realtime.send(payload, NEW.type, 'nofx:events', true);
    IF NEW.plan_id IS NOT NULL THEN
      PERFORM realtime.send(payload, NEW.type, 'nofx:plan:' || NEW.plan_id, true);
    END IF;
    -- NOTIFY payloads are capped at 8000 bytes: send the pointer, not the data.
    PERFORM pg_notify('nofx_events',
      json_build_object('id', NEW.id, 'type', NEW.type, 'plan_id', NEW.plan_id)::text);
    RETURN NULL;
  END
  $$;
CREATE TRIGGER events_publish AFTER INSERT ON public.events
  FOR EACH ROW EXECUTE FUNCTION nofx.publish_event();

-- Private Realtime channels: a signed-in viewer may join the nofx: topics.
CREATE POLICY nofx_viewers_receive ON realtime.messages FOR SELECT TO authenticated
  USING (realtime.topic() LIKE 'nofx:%' AND nofx.has_role('viewer'));

-- ------------------------------------------------------------- audit log ----
-- One row per state change, written in the transaction of the change. Each
-- chain (one per plan, plus 'global') is a hash chain: hash = sha256(prev_hash
-- || content), where content is the canonical JSON the application wrote.
-- The trigger takes the chain head under a row lock, so concurrent writers
-- line up instead of forking the chain.

CREATE TABLE public.audit_log (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  chain            text        NOT NULL,
  seq              bigint      NOT NULL,
  occurred_at      timestamptz NOT NULL,
  actor            text        NOT NULL,
  actor_role       text,
  action           text        NOT NULL,
  plan_id          uuid,
  step_id          uuid,
  backlog_item_ids text[]      NOT NULL DEFAULT '{}',
  pack_ids         text[]      NOT NULL DEFAULT '{}',
  content          text        NOT NULL,
  snapshot_key     text,
  snapshot_digest  text,
  prev_hash        text        NOT NULL,
  hash             text        NOT NULL,
  UNIQUE (chain, seq)
);
CREATE INDEX audit_log_plan ON public.audit_log (plan_id, id);

CREATE TABLE public.audit_chain_heads (
  chain      text        PRIMARY KEY,
  seq        bigint      NOT NULL,
  hash       text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION nofx.chain_audit_row() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
  AS $$
  DECLARE
    head public.audit_chain_heads%ROWTYPE;
  BEGIN
    INSERT INTO public.audit_chain_heads (chain, seq, hash)
    VALUES (NEW.chain, 0, repeat('0', 64))
    ON CONFLICT (chain) DO NOTHING;
    SELECT * INTO head FROM public.audit_chain_heads WHERE chain = NEW.chain FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.prev_hash := head.hash;
    NEW.hash := encode(sha256(convert_to(head.hash || NEW.content, 'UTF8')), 'hex');
    UPDATE public.audit_chain_heads
       SET seq = NEW.seq, hash = NEW.hash, updated_at = now()
     WHERE chain = NEW.chain;
    RETURN NEW;
  END
  $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON public.audit_log
  FOR EACH ROW EXECUTE FUNCTION nofx.chain_audit_row();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON public.audit_log
  FOR EACH ROW EXECUTE FUNCTION nofx.refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION nofx.refuse_change();

ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.audit_log TO authenticated, service_role;
CREATE POLICY audit_log_read ON public.audit_log FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));

ALTER TABLE public.audit_chain_heads ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.audit_chain_heads TO authenticated, service_role;
CREATE POLICY audit_chain_heads_read ON public.audit_chain_heads FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
