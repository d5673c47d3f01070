-- 0009 A step's estimated duration as bigint.
-- A backlog item may be estimated at up to 99,999,999.99 minutes
-- (numeric(10, 2)), and the planner turns minutes into milliseconds: past
-- 35,791 minutes (24.8 days) the step no longer fit plan_steps'
-- integer column, and planning such an item failed with a server error. A
-- long estimate is a fact about the work, not bad input, so the column widens.
-- The table is rewritten once, under its lock, within lock_timeout.

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '300s';

-- squawk-ignore changing-column-type
ALTER TABLE public.plan_steps ALTER COLUMN est_duration_ms TYPE bigint;
