-- Compatibility prelude: the few Supabase objects the migrations use, for a
-- plain PostgreSQL (the service PostgreSQL, the embedded one). The migrate
-- command applies it only when the database lacks them, and every object here
-- is created only if absent, so it never redefines Supabase's own.
--
-- What it provides, shaped like Supabase's:
--   roles anon, authenticated, service_role (service_role bypasses RLS)
--   auth.jwt(), auth.uid(), auth.role() reading request.jwt.claims
--   realtime.messages, realtime.topic(), realtime.send(payload, event, topic, private)

-- Roles are cluster-wide, and advisory locks are per database: two databases
-- of one cluster migrated at once (the test workers) may both find a role
-- missing, so each CREATE ROLE tolerates the other having won.
DO $prelude$
DECLARE
  wanted text[][] := ARRAY[['anon', 'NOLOGIN NOINHERIT'], ['authenticated', 'NOLOGIN NOINHERIT'],
                           ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS']];
  i int;
BEGIN
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = wanted[i][1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', wanted[i][1], wanted[i][2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a migrator of another database
      END;
    END IF;
  END LOOP;
END
$prelude$;

-- Roles are cluster-wide; the rest is per database.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

DO $prelude$
BEGIN
  IF to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb
      LANGUAGE sql STABLE
      AS $fn$
        SELECT coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $fn$;
  END IF;
  IF to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid
      LANGUAGE sql STABLE
      AS $fn$
        SELECT coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $fn$;
  END IF;
  IF to_regprocedure('auth.role()') IS NULL THEN
    CREATE FUNCTION auth.role() RETURNS text
      LANGUAGE sql STABLE
      AS $fn$
        SELECT coalesce(
          nullif(current_setting('request.jwt.claim.role', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
        )::text
      $fn$;
  END IF;
END
$prelude$;

GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role() TO anon, authenticated, service_role;

CREATE SCHEMA IF NOT EXISTS realtime;
GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role;

-- On Supabase this table is partitioned by day and drained by the Realtime
-- service; here it simply keeps what was sent, which the tests read.
CREATE TABLE IF NOT EXISTS realtime.messages (
  id          uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  topic       text        NOT NULL,
  extension   text        NOT NULL,
  payload     jsonb,
  event       text,
  private     boolean     DEFAULT false,
  updated_at  timestamp   NOT NULL DEFAULT now(),
  inserted_at timestamp   NOT NULL DEFAULT now()
);
ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT ON realtime.messages TO authenticated, service_role;

DO $prelude$
BEGIN
  IF to_regprocedure('realtime.topic()') IS NULL THEN
    CREATE FUNCTION realtime.topic() RETURNS text
      LANGUAGE sql STABLE
      AS $fn$ SELECT nullif(current_setting('realtime.topic', true), '')::text $fn$;
  END IF;
  IF to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NULL THEN
    -- Same contract as Supabase's: never raises, logs a warning instead.
    CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
      RETURNS void
      LANGUAGE plpgsql
      AS $fn$
      BEGIN
        BEGIN
          EXECUTE format('SET LOCAL realtime.topic TO %L', topic);
          INSERT INTO realtime.messages (payload, event, topic, private, extension)
          VALUES (payload, event, topic, private, 'broadcast');
        EXCEPTION WHEN OTHERS THEN
          RAISE WARNING 'ErrorSendingBroadcastMessage: %', SQLERRM;
        END;
      END
      $fn$;
  END IF;
END
$prelude$;

GRANT EXECUTE ON FUNCTION realtime.topic() TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION realtime.send(jsonb, text, text, boolean) TO authenticated, service_role;
