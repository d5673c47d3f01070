-- 0005 approvals: human decisions on sensitive steps (and on plans whose
-- verdict is warn), with an append-only history of every decision.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '120s';

ALTER TABLE public.plans ADD COLUMN executed_by text;
ALTER TABLE public.plans ADD COLUMN executed_by_sub text;

-- ------------------------------------------------------------ approvals ----
-- An approval binds to a digest of exactly what it approves: plan id and
-- version, step, tool, the step's inputs and the policy version. A decision
-- never authorizes a step whose current digest differs; a change cancels the
-- pending approval (with the reason) and a new one is asked for.

CREATE TABLE public.approvals (
  id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  kind               text        NOT NULL CHECK (kind IN ('step', 'plan')),
  plan_id            uuid        NOT NULL REFERENCES public.plans (id),
  step_id            uuid        REFERENCES public.plan_steps (id),
  tool_id            text,
  plan_version       integer     NOT NULL,
  policy_version     text,
  digest             text        NOT NULL,
  idempotency_token  text        NOT NULL,
  status             text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
  required_approvals integer     NOT NULL DEFAULT 1 CHECK (required_approvals BETWEEN 1 AND 5),
  approver_role      text        NOT NULL DEFAULT 'approver' CHECK (approver_role IN ('approver', 'admin')),
  requested_by       text        NOT NULL,
  requested_by_subs  text[]      NOT NULL DEFAULT '{}',
  requested_at       timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  decided_at         timestamptz,
  decision_reason    text,
  inputs_summary     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  findings           jsonb       NOT NULL DEFAULT '[]'::jsonb,
  artifacts          jsonb       NOT NULL DEFAULT '[]'::jsonb,
  CONSTRAINT step_approvals_name_a_step CHECK ((kind = 'step') = (step_id IS NOT NULL)),
  CONSTRAINT decided_approvals_have_a_time CHECK ((status = 'pending') = (decided_at IS NULL)),
  CONSTRAINT a_denial_has_a_reason CHECK (status NOT IN ('denied', 'cancelled') OR decision_reason IS NOT NULL)
);
-- One request per thing to approve and digest (asking twice returns the first)...
CREATE UNIQUE INDEX approvals_once_per_digest ON public.approvals (idempotency_token, digest);
-- ...and at most one open request per step or plan.
CREATE UNIQUE INDEX approvals_one_pending ON public.approvals (idempotency_token) WHERE status = 'pending';
CREATE INDEX approvals_queue ON public.approvals (status, requested_at);
CREATE INDEX approvals_plan ON public.approvals (plan_id);

-- ------------------------------------------------------ approval_events ----
-- The history: every request, decision, expiry and cancellation. Append-only
-- for every role, the owner and service_role included.

CREATE TABLE public.approval_events (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  approval_id uuid        NOT NULL REFERENCES public.approvals (id),
  event       text        NOT NULL CHECK (event IN ('requested', 'approve', 'deny', 'expired', 'cancelled')),
  actor       text        NOT NULL,
  actor_sub   text,
  actor_role  text,
  source      text        NOT NULL CHECK (source IN ('api', 'webhook', 'console', 'system', 'cron')),
  reason      text,
  digest      text        NOT NULL,
  webhook_id  text,
  occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_events_approval ON public.approval_events (approval_id, id);
-- A person approves once per request.
CREATE UNIQUE INDEX approval_events_one_vote ON public.approval_events (approval_id, actor)
  WHERE event IN ('approve', 'deny');

CREATE TRIGGER approval_events_append_only BEFORE UPDATE OR DELETE ON public.approval_events
  FOR EACH ROW EXECUTE FUNCTION nofx.refuse_change();
CREATE TRIGGER approval_events_no_truncate BEFORE TRUNCATE ON public.approval_events
  FOR EACH STATEMENT EXECUTE FUNCTION nofx.refuse_change();

-- ------------------------------------------------------------------ RLS ----
ALTER TABLE public.approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.approval_events ENABLE ROW LEVEL SECURITY;

GRANT SELECT ON public.approvals, public.approval_events TO authenticated;
GRANT SELECT, INSERT, UPDATE ON public.approvals TO service_role;
GRANT SELECT, INSERT ON public.approval_events TO service_role;

-- Everyone signed in sees the queue and its history; decisions go through
-- POST /api/approvals/:id (row lock, digest check, two-person rule), never
-- through a direct write.
CREATE POLICY approvals_read ON public.approvals FOR SELECT TO authenticated USING (nofx.has_role('viewer'));
CREATE POLICY approval_events_read ON public.approval_events FOR SELECT TO authenticated
  USING (nofx.has_role('viewer'));
