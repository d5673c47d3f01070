"""A plan as the API shows it: the plan request, the plan and step views, the
created answer, and the reads that fill them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from lib.gates.models import GateResult
from lib.llm.summary import ComparisonSummary
from lib.planner import PlanDraft, PlanOptions
from lib.plans import status as plan_status
from lib.web.problems import Problem, not_found

OPEN_PLAN_STATUSES = plan_status.OPEN


MAX_STEPS_IN_RESPONSE = 2000


class PlanRequest(BaseModel):
    """Plan the given items (or every open item when none are given)."""

    model_config = ConfigDict(extra="forbid")
    backlog_item_ids: list[UUID] | None = Field(default=None, max_length=100_000)
    pack_ids: list[str] | None = Field(default=None, max_length=100)
    options: PlanOptions = Field(default_factory=PlanOptions)


class PlanView(BaseModel):
    id: UUID
    version: int
    title: str
    status: str
    status_reason: str | None
    verdict: str | None
    score: int | None
    source: str
    input_fingerprint: str
    options: dict[str, Any]
    totals: dict[str, Any]
    graph: dict[str, Any]
    backlog_item_count: int = Field(description="items in the plan; each step names its backlog_item_id")
    pack_ids: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


# Step ids travel as text (a plan can hold 100,000 of them; UUID objects cost
# more than the plan), and are documented as UUIDs.
UuidText = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]


class StepView(BaseModel):
    id: UuidText
    backlog_item_id: UuidText | None
    item_key: str
    title: str
    pack_id: str
    tool_id: str
    stage: int
    position: int
    depends_on: list[UuidText]
    idempotency_token: str
    rollback: dict[str, Any] | None
    inputs: dict[str, Any]
    requires_approval: bool
    status: str
    est_duration_ms: int | None
    est_cost_usd: float | None
    cost_note: str | None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    output: Any = None
    error: str | None = None


class PlanCreated(BaseModel):
    plan: PlanView
    steps: list[StepView]
    steps_total: int
    steps_truncated: bool
    evaluations: list[GateResult]
    verdict: str
    reused: bool = Field(description="true when an open plan for the same input was returned instead")
    dry_run: bool = False
    comparison: ComparisonSummary | None = Field(
        default=None, description="the model comparison (options.compare_models): each model's score, cost, latency"
    )


PLAN_COLUMNS = """
  id, version, title, status, status_reason, verdict, score, source, input_fingerprint, options, totals,
  graph, cardinality(backlog_item_ids) AS backlog_item_count, pack_ids, created_by, created_at, updated_at
"""


STEP_VIEW_COLUMNS = """
  id::text AS id, backlog_item_id::text AS backlog_item_id, depends_on::text[] AS depends_on, item_key, title,
  pack_id, tool_id, stage, position, idempotency_token,
  rollback, inputs, requires_approval, status, est_duration_ms, est_cost_usd::float8 AS est_cost_usd,
  cost_note, attempts, started_at, finished_at, output, error
"""


def fetch_plan(conn: Any, plan_id: UUID | str) -> PlanView | None:
    row = conn.execute(f"SELECT {PLAN_COLUMNS} FROM public.plans WHERE id = %s", (plan_id,)).fetchone()  # noqa: S608
    return PlanView.model_validate(row) if row else None


def fetch_steps(conn: Any, plan_id: UUID | str, limit: int = MAX_STEPS_IN_RESPONSE, offset: int = 0) -> list[StepView]:
    rows = conn.execute(
        f"SELECT {STEP_VIEW_COLUMNS} FROM public.plan_steps WHERE plan_id = %s "  # noqa: S608
        "ORDER BY stage, position LIMIT %s OFFSET %s",
        (plan_id, limit, offset),
    ).fetchall()
    return [StepView.model_validate(r) for r in rows]


_STEP_VIEWS = TypeAdapter(list[StepView])


def draft_steps_view(draft: PlanDraft, limit: int) -> list[StepView]:
    """The first steps as the API shows them, from the planner's own steps:
    plain dicts validated in one pydantic call (model_construct, one step at a
    time in Python, cost twice as much)."""
    return _STEP_VIEWS.validate_python(
        [
            {
                "id": s.id,
                "backlog_item_id": s.item_id,
                "item_key": s.item_key,
                "title": s.title,
                "pack_id": s.pack_id,
                "tool_id": s.tool_id,
                "stage": s.stage,
                "position": s.position,
                "depends_on": s.depends_on,
                "idempotency_token": s.idempotency_token,
                "rollback": s.rollback,
                "inputs": s.inputs,
                "requires_approval": s.requires_approval,
                "status": "pending",
                "est_duration_ms": s.est_duration_ms,
                "est_cost_usd": s.est_cost_usd,
                "cost_note": s.cost_note,
            }
            for s in draft.steps[:limit]
        ]
    )


def open_plan_id(conn: Any, fingerprint: str) -> UUID | None:
    """The open plan for this input fingerprint, if there is one."""
    row = conn.execute(
        "SELECT id FROM public.plans WHERE input_fingerprint = %s AND status = ANY(%s)",
        (fingerprint, list(OPEN_PLAN_STATUSES)),
    ).fetchone()
    return None if row is None else row["id"]


def existing_open_plan(conn: Any, fingerprint: str) -> PlanCreated:
    plan_id = open_plan_id(conn, fingerprint)
    if plan_id is None:  # it closed between our insert and this read; let the client retry
        raise Problem(409, "an identical plan just changed state; retry", type="conflict")
    return plan_detail(conn, plan_id, reused=True)


def plan_detail(
    conn: Any, plan_id: UUID | str, *, reused: bool = False, limit: int = MAX_STEPS_IN_RESPONSE, offset: int = 0
) -> PlanCreated:
    from lib.llm import store

    plan = fetch_plan(conn, plan_id)
    if plan is None:
        raise not_found("plan", plan_id)
    total = int(plan.totals["steps"])  # steps are written once, with the plan (copy_steps)
    steps = fetch_steps(conn, plan_id, limit, offset)
    return PlanCreated(
        plan=plan,
        steps=steps,
        steps_total=total,
        steps_truncated=offset + len(steps) < total,
        evaluations=[],
        verdict=plan.verdict or "allow",
        reused=reused,
        comparison=store.load_summary(conn, plan_id),
    )
