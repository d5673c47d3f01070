"""How far a stored plan has come and why it holds what it holds: progress
counts with the estimated time left along the remaining critical path, and
the items the planner pulled in (each with the selected items that need it).
Pure functions over step rows, and the one read of pulled-in items both the
plan page and a plan approval show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

DONE = frozenset({"succeeded"})
WAITING = frozenset({"pending", "awaiting_approval", "approved"})
FAILED = frozenset({"failed", "denied"})
# Steps that will not run again: nothing of theirs is left to wait for.
SETTLED = frozenset({"succeeded", "skipped", "failed", "denied", "rolled_back"})


class Progress(BaseModel):
    total: int
    done: int
    running: int
    waiting: int
    failed: int
    skipped: int
    by_status: dict[str, int]
    est_remaining_ms: int | None = Field(
        description="the longest chain of unfinished steps by their estimates; null when none is left to run"
    )


class PulledIn(BaseModel):
    item_key: str
    title: str
    pack_id: str
    environment: str | None
    needed_by: list[str] = Field(description="keys of the plan's items that depend on it")


def progress(steps: Iterable[Mapping[str, Any]], now: datetime) -> Progress:
    """Counts by status and the time left: for each unsettled step, its
    estimate (less what a running step has already spent) plus the longest
    such chain before it. Steps arrive in stage order, so every dependency
    is seen before the steps that wait for it."""
    by_status: dict[str, int] = {}
    finish: dict[str, int] = {}
    longest = 0
    for s in steps:
        status = s["status"]
        by_status[status] = by_status.get(status, 0) + 1
        if status in SETTLED:
            continue
        own = int(s.get("est_duration_ms") or 0)
        started = s.get("started_at")
        if status == "running" and isinstance(started, datetime):
            own = max(0, own - int((now - started).total_seconds() * 1000))
        before = max((finish.get(str(d), 0) for d in s.get("depends_on") or ()), default=0)
        finish[str(s["id"])] = before + own
        longest = max(longest, before + own)
    total = sum(by_status.values())
    return Progress(
        total=total,
        done=sum(n for k, n in by_status.items() if k in DONE),
        running=by_status.get("running", 0),
        waiting=sum(n for k, n in by_status.items() if k in WAITING),
        failed=sum(n for k, n in by_status.items() if k in FAILED),
        skipped=by_status.get("skipped", 0),
        by_status=by_status,
        est_remaining_ms=longest if finish else None,
    )


def pulled_in_sql(plan_id_expr: str) -> str:
    """The pulled-in items of the plan `plan_id_expr` names (a parameter or a
    column of the outer query) as one JSON array: each with the plan's items
    that depend on it directly."""
    return f"""
  (SELECT coalesce(json_agg(x ORDER BY x.item_key), '[]'::json) FROM (
     SELECT s.item_key, s.title, s.pack_id, b.environment,
            (SELECT coalesce(json_agg(d.item_key ORDER BY d.stage, d.position), '[]'::json)
               FROM public.plan_steps d WHERE d.plan_id = s.plan_id AND s.id = ANY (d.depends_on)) AS needed_by
       FROM public.plans pl
       JOIN public.plan_steps s ON s.plan_id = pl.id
                               AND s.item_key IN (SELECT jsonb_array_elements_text(pl.graph -> 'pulled_in'))
       LEFT JOIN public.backlog_items b ON b.id = s.backlog_item_id
      WHERE pl.id = {plan_id_expr}) x)"""  # noqa: S608 - a placeholder or a column name, never input


PROGRESS_STEPS = (
    "SELECT id::text AS id, depends_on::text[] AS depends_on, status, est_duration_ms, started_at "
    "FROM public.plan_steps WHERE plan_id = %s ORDER BY stage, position"
)
PULLED_IN = f"SELECT {pulled_in_sql('%s')} AS pulled_in"


def pulled_in_of(rows: Any) -> list[PulledIn]:
    return [PulledIn.model_validate(r) for r in rows or []]
