-- 0012 Supabase Cron: the tick every minute on any Supabase plan (optional).
--
-- Vercel's Hobby plan runs cron jobs once a day. Supabase Cron (pg_cron) with
-- pg_net, both on every Supabase plan, can call GET /api/cron/tick every
-- minute instead. Where the extensions are absent (plain PostgreSQL, the
-- embedded one) nothing is scheduled and nothing fails.
--
-- The job reads where to call and with what at each run, so neither lives
-- in this file: the URL from config `tick.url` (set it to
-- https://<your deployment>/api/cron/tick) and the bearer secret from
-- Supabase Vault (`select vault.create_secret('<CRON_SECRET>', 'nofx_cron_secret')`).
-- Until both are set, each run does nothing.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

INSERT INTO public.config (key, value, description) VALUES
  ('tick.url', 'null', 'where Supabase Cron calls the tick (https://<deployment>/api/cron/tick); null: it does not')
ON CONFLICT (key) DO NOTHING;

-- One call of the tick through pg_net (asynchronous: pg_net sends it after
-- this transaction). Returns the request id, or null when not configured.
CREATE FUNCTION nofx.call_tick() RETURNS bigint
  LANGUAGE plpgsql
  SET search_path = ''
AS $fn$
DECLARE
  url    text;
  secret text;
  id     bigint;
BEGIN
  SELECT value #>> '{}' INTO url FROM public.config WHERE key = 'tick.url';
  IF url IS NULL OR to_regclass('vault.decrypted_secrets') IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE 'SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = $1 LIMIT 1'
    INTO secret USING 'nofx_cron_secret';
  IF secret IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE 'SELECT net.http_get(url => $1, headers => $2, timeout_milliseconds => 10000)'
    INTO id USING url, jsonb_build_object('Authorization', 'Bearer ' || secret);
  RETURN id;
END
$fn$;

DO $cron$
BEGIN
  -- Supabase offers both; creating them elsewhere may be refused (pg_cron
  -- needs shared_preload_libraries), which only means: no schedule here.
  BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_net') THEN
      CREATE EXTENSION IF NOT EXISTS pg_net;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron') THEN
      CREATE EXTENSION IF NOT EXISTS pg_cron;
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'Supabase Cron not enabled here (%): the tick is not scheduled', SQLERRM;
  END;
  IF to_regprocedure('cron.schedule(text,text,text)') IS NULL
     OR to_regprocedure('net.http_get(text,jsonb,jsonb,integer)') IS NULL THEN
    RAISE NOTICE 'pg_cron or pg_net absent: use Vercel Cron (Pro) or another scheduler for the tick';
    RETURN;
  END IF;
  PERFORM cron.schedule('nofx-tick', '* * * * *', 'SELECT nofx.call_tick()');
END
$cron$;
