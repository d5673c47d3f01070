"""FEATURE_PLANNER_EXECUTE is the kill switch: while it is off, no path runs
a tool. Not the execute endpoint (its flag), not an approval's resume, not
the tick, not a worker, not a rollback's undo calls. Work is not lost: steps
wait where they are, the plan says why (`HELD`), and the next advance after
the switch is back on carries on.

Every path checks right before it would call a tool, so a switch made while
an invocation is under way stops it at its next step (flags reach every
instance within NOFX_FLAG_CACHE_SECONDS).
"""

from __future__ import annotations

from typing import Any

from lib.data import db

FLAG = "FEATURE_PLANNER_EXECUTE"
HELD = f"held: {FLAG} is off; steps wait until it is switched back on"


def execution_on() -> bool:
    from lib.ops import flags

    return flags.enabled(FLAG)


def hold(plan_id: Any) -> None:
    """Say on the plan why it does not move (a plan rolling back keeps its
    reason: the tick finds a stalled rollback by it)."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE public.plans SET status_reason = %s, updated_at = now() "
            "WHERE id = %s AND status IN ('approved', 'executing', 'paused') "
            "AND status_reason IS DISTINCT FROM %s",
            (HELD, plan_id, HELD),
        )
