"""Lists for the console and clients: plans (newest first) and packs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel


class PlanSummary(BaseModel):
    id: UUID
    title: str
    status: str
    status_reason: str | None
    verdict: str | None
    score: int | None
    source: str
    steps: int
    pack_ids: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class PlanList(BaseModel):
    plans: list[PlanSummary]


def list_plans(conn: Any, status: str | None, limit: int) -> PlanList:
    rows = conn.execute(
        "SELECT id, title, status, status_reason, verdict, score, source, (totals->>'steps')::int AS steps, pack_ids, "
        "created_by, created_at, updated_at FROM public.plans WHERE (%(status)s::text IS NULL OR status = %(status)s) "
        "ORDER BY created_at DESC LIMIT %(limit)s",
        {"status": status, "limit": limit},
    ).fetchall()
    return PlanList(plans=[PlanSummary.model_validate({**r, "steps": r["steps"] or 0}) for r in rows])


class PackSummary(BaseModel):
    id: str
    name: str
    description: str
    owner: str | None
    open_items: int


class PackList(BaseModel):
    packs: list[PackSummary]


def list_packs(conn: Any) -> PackList:
    rows = conn.execute(
        "SELECT p.id, p.name, p.description, p.owner, count(b.id) FILTER (WHERE b.status = 'open') AS open_items "
        "FROM public.packs p LEFT JOIN public.backlog_items b ON b.pack_id = p.id "
        "GROUP BY p.id ORDER BY p.id"
    ).fetchall()
    return PackList(packs=[PackSummary.model_validate(r) for r in rows])
