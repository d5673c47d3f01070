-- 0007 service_role is the server's key: it reads and writes every table of
-- ours, as Supabase's default privileges give it on a hosted project. Written
-- out here so a plain PostgreSQL (and the RLS matrix test) behaves the same.
-- The append-only triggers still refuse UPDATE, DELETE and TRUNCATE on
-- events, audit_log, approval_events and overrides, to this role as well.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO service_role;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO service_role;

-- The audit chain heads are written only by the audit log's own trigger:
-- a head edited by hand could hide removed entries, so every other write is
-- refused, service_role and the owner included. (The chain trigger writes
-- them from inside a trigger, at depth 2.)
CREATE FUNCTION nofx.only_from_the_audit_chain() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
  BEGIN
    IF pg_trigger_depth() < 2 THEN
      RAISE EXCEPTION 'audit_chain_heads is written only by the audit log: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END
  $$;
CREATE TRIGGER audit_chain_heads_guard BEFORE INSERT OR UPDATE OR DELETE ON public.audit_chain_heads
  FOR EACH ROW EXECUTE FUNCTION nofx.only_from_the_audit_chain();
