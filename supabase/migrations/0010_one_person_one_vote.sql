-- 0010 One person, one vote, and a gate that holds.
--
-- A vote belongs to a person, identified by a stable id (the JWT `sub`), not
-- by a display string: one person with two emails, or an API vote and a
-- webhook vote naming the same person, count once. A signed webhook names
-- its approver by email, resolved to that id through Supabase's auth.users
-- where it exists, else through public.people (who signed in, or whom an
-- admin registered). Each webhook delivery id is used once across every
-- approval. The database refuses tool rows the code would refuse.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

-- --------------------------------------------------------------- people ----
-- The project's own record of people, where Supabase's auth.users is absent
-- (plain PostgreSQL, the embedded one). Keyed by the stable id; the email is
-- as last seen (an email change moves it, a stale holder of an email loses it).

CREATE TABLE public.people (
  id            text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  email         text        CHECK (email IS NULL OR length(email) BETWEEN 3 AND 320),
  display_name  text        CHECK (display_name IS NULL OR length(display_name) <= 200),
  source        text        NOT NULL CHECK (source IN ('signed_in', 'registered')),
  registered_by text,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX people_email ON public.people (lower(email)) WHERE email IS NOT NULL;

ALTER TABLE public.people ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.people TO authenticated;
GRANT ALL ON public.people TO service_role;
-- A person sees their own record; admins see everyone (emails are personal).
CREATE POLICY people_read ON public.people FOR SELECT TO authenticated
  USING (nofx.has_role('admin') OR id = (auth.jwt() ->> 'sub'));

-- The ids of the people an email names (case-insensitive): Supabase's own
-- users where the auth schema has them, else the project's record.
CREATE FUNCTION nofx.people_by_email(address text) RETURNS SETOF text
  LANGUAGE plpgsql STABLE
  SET search_path = ''
AS $fn$
BEGIN
  IF to_regclass('auth.users') IS NOT NULL THEN
    RETURN QUERY EXECUTE
      'SELECT id::text FROM auth.users WHERE lower(email) = lower($1) AND deleted_at IS NULL ORDER BY id'
      USING address;
  ELSE
    RETURN QUERY SELECT p.id FROM public.people p WHERE lower(p.email) = lower(address) ORDER BY p.id;
  END IF;
END
$fn$;
GRANT EXECUTE ON FUNCTION nofx.people_by_email(text) TO service_role;

-- ------------------------------------------------- backlog item authors ----
-- Who wrote an item may not approve its step. Writes through the API set the
-- author; writes through Supabase's Data API are stamped from the JWT (a
-- client cannot name someone else).

ALTER TABLE public.backlog_items ADD COLUMN created_by text;
ALTER TABLE public.backlog_items ADD COLUMN created_by_sub text;
ALTER TABLE public.backlog_items ADD COLUMN updated_by_sub text;

CREATE FUNCTION nofx.stamp_backlog_author() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = ''
AS $fn$
DECLARE
  claims jsonb := auth.jwt();
  sub    text := nullif(claims ->> 'sub', '');
BEGIN
  IF sub IS NOT NULL AND coalesce(claims ->> 'role', '') <> 'service_role' THEN
    IF TG_OP = 'INSERT' THEN
      NEW.created_by_sub := sub;
      NEW.created_by := coalesce(nullif(claims ->> 'email', ''), sub);
    ELSE
      NEW.created_by_sub := OLD.created_by_sub;
      NEW.created_by := OLD.created_by;
    END IF;
    NEW.updated_by_sub := sub;
  ELSIF TG_OP = 'INSERT' THEN
    NEW.updated_by_sub := coalesce(NEW.updated_by_sub, NEW.created_by_sub);
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER backlog_items_author BEFORE INSERT OR UPDATE ON public.backlog_items
  FOR EACH ROW EXECUTE FUNCTION nofx.stamp_backlog_author();

-- ------------------------------------------------------------ the votes ----
-- person_id: the stable id of who voted. Votes recorded before this
-- migration have none and no longer count (a pending request asks them
-- again): safer than guessing who a display string was.
ALTER TABLE public.approval_events ADD COLUMN person_id text;
-- What the client said it was (X-Nofx-Client): a claim, kept apart from the
-- verified source (api, webhook, cron, system).
ALTER TABLE public.approval_events ADD COLUMN client_claim text
  CHECK (client_claim IS NULL OR length(client_claim) <= 40);
ALTER TABLE public.approval_events ADD CONSTRAINT votes_name_a_person
  CHECK (event NOT IN ('approve', 'deny') OR person_id IS NOT NULL) NOT VALID;

-- The migrator runs each file in one transaction, where CONCURRENTLY cannot
-- run; the history is small and the lock is bounded by lock_timeout above.
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX public.approval_events_one_vote;
-- One vote per person and request...
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX approval_events_one_vote_per_person ON public.approval_events (approval_id, person_id)
  WHERE event IN ('approve', 'deny') AND person_id IS NOT NULL;
-- ...and a signed delivery decides one request, once.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX approval_events_delivery_once ON public.approval_events (webhook_id)
  WHERE webhook_id IS NOT NULL;

-- An undo that runs a tool needing approval is approved on its own when the
-- step's approval did not cover it.
-- Each CHECK is replaced by a wider one in the same transaction: no guarantee lapses.
-- squawk-ignore ban-drop-constraint
ALTER TABLE public.approvals DROP CONSTRAINT approvals_kind_check;
ALTER TABLE public.approvals ADD CONSTRAINT approvals_kind_check
  CHECK (kind IN ('step', 'plan', 'rollback')) NOT VALID;
-- squawk-ignore ban-drop-constraint
ALTER TABLE public.approvals DROP CONSTRAINT step_approvals_name_a_step;
ALTER TABLE public.approvals ADD CONSTRAINT step_approvals_name_a_step
  CHECK ((kind IN ('step', 'rollback')) = (step_id IS NOT NULL)) NOT VALID;

-- -------------------------------------------------------------- tools ----
-- The rows the code refuses are refused here too (lib/planner/models.py:
-- ApprovalPolicy, CostModel). NOT VALID: a row written before is reported on
-- the plans that use it rather than failing this migration.

CREATE FUNCTION nofx.json_number_between(value jsonb, low numeric, high numeric, whole boolean)
  RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE
  SET search_path = ''
AS $fn$
DECLARE
  n numeric;
BEGIN
  IF value IS NULL THEN
    RETURN true;  -- absent: the model's default applies
  END IF;
  IF jsonb_typeof(value) <> 'number' THEN
    RETURN false;
  END IF;
  n := value::text::numeric;
  RETURN n BETWEEN low AND high AND (NOT whole OR n = trunc(n));
END
$fn$;

CREATE FUNCTION nofx.approval_policy_ok(policy jsonb) RETURNS boolean
  LANGUAGE sql IMMUTABLE
  SET search_path = ''
AS $fn$
  SELECT policy IS NULL OR jsonb_typeof(policy) = 'null' OR (
    jsonb_typeof(policy) = 'object'
    AND nofx.json_number_between(policy -> 'required_approvals', 1, 5, true)
    AND nofx.json_number_between(policy -> 'timeout_seconds', 60, 1209600, true)
    AND coalesce(policy ->> 'approver_role', 'approver') IN ('approver', 'admin')
  )
$fn$;

CREATE FUNCTION nofx.cost_model_ok(model jsonb) RETURNS boolean
  LANGUAGE sql IMMUTABLE
  SET search_path = ''
AS $fn$
  SELECT model IS NULL OR jsonb_typeof(model) = 'null' OR (
    jsonb_typeof(model) = 'object'
    AND nofx.json_number_between(model -> 'usd_per_call', 0, 1e9, false)
    AND nofx.json_number_between(model -> 'usd_per_minute', 0, 1e9, false)
  )
$fn$;

ALTER TABLE public.tools ADD CONSTRAINT tools_approval_policy_valid
  CHECK (nofx.approval_policy_ok(approval_policy)) NOT VALID;
ALTER TABLE public.tools ADD CONSTRAINT tools_cost_model_valid
  CHECK (nofx.cost_model_ok(cost_model)) NOT VALID;
