-- 0018 Override requests: a planner facing a blocked plan asks for an override
-- instead of hitting an admin-only remedy; an admin grants (the override is
-- then applied, as POST /api/automation/override would, by that admin) or
-- declines, with a reason. Never deleted: the request, its decision and the
-- override it led to stay side by side for the audit.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE TABLE public.override_requests (
  id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  plan_id         uuid        NOT NULL REFERENCES public.plans (id),
  action          text        NOT NULL DEFAULT 'allow'
                              CHECK (action IN ('allow', 'skip', 'retry', 'cancel', 'rollback')),
  step_id         uuid        REFERENCES public.plan_steps (id),
  gate            text        CHECK (gate IS NULL OR gate IN ('structural', 'risk', 'compliance', 'resource')),
  reason          text        NOT NULL CHECK (length(btrim(reason)) >= 3),
  status          text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'granted', 'declined')),
  requested_by    text        NOT NULL,
  requested_by_sub text       NOT NULL,
  requested_at    timestamptz NOT NULL DEFAULT now(),
  decided_by      text,
  decided_by_sub  text,
  decided_at      timestamptz,
  decision_reason text,
  override_id     uuid        REFERENCES public.overrides (id),
  CONSTRAINT decided_requests_say_who_and_why CHECK (
    (status = 'open') = (decided_at IS NULL)
    AND (status = 'open' OR (decided_by IS NOT NULL AND decision_reason IS NOT NULL))),
  CONSTRAINT granted_requests_name_their_override CHECK ((status = 'granted') = (override_id IS NOT NULL))
);
CREATE INDEX override_requests_plan ON public.override_requests (plan_id, requested_at);
-- One open request per plan, action and step: asking again answers the open one.
CREATE UNIQUE INDEX override_requests_one_open ON public.override_requests
  (plan_id, action, coalesce(step_id, '00000000-0000-0000-0000-000000000000'::uuid), coalesce(gate, ''))
  WHERE status = 'open';

ALTER TABLE public.override_requests ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.override_requests TO authenticated;
GRANT SELECT, INSERT, UPDATE ON public.override_requests TO service_role;
CREATE POLICY override_requests_read ON public.override_requests FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
