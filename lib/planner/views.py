"""A plan as the API shows it: the plan request, the plan and step views, the
created answer, and the reads that fill them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from lib.gates.models import GateResult
from lib.llm.summary import ComparisonSummary
from lib.planner import PlanDraft, PlanOptions
from lib.planner import progress as plan_progress
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
    steps_next_offset: int | None = Field(default=None, description="pass as ?offset= for the next page of steps")
    evaluations: list[GateResult]
    verdict: str
    reused: bool = Field(description="true when an open plan for the same input was returned instead")
    dry_run: bool = False
    comparison: ComparisonSummary | None = Field(
        default=None, description="the model comparison (options.compare_models): each model's score, cost, latency"
    )
    progress: plan_progress.Progress | None = Field(
        default=None, description="steps done, running, waiting and failed, and the estimated time left"
    )
    pulled_in: list[plan_progress.PulledIn] = Field(
        default_factory=list, description="items added because a selected item depends on them, and which"
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


PLAN_ROW = f"SELECT {PLAN_COLUMNS} FROM public.plans WHERE id = %s"  # noqa: S608 - constants only


def fetch_plan(conn: Any, plan_id: UUID | str) -> PlanView | None:
    row = conn.execute(PLAN_ROW, (plan_id,)).fetchone()
    return PlanView.model_validate(row) if row else None


# A page of steps stops at this many bytes of steps, whatever the count
# asked (2,000 steps with 3 kB inputs answered 7 MB, over Vercel's 4.5 MB).
MAX_STEP_BYTES = 1_500_000
# Lists of ids in the graph summary are cut to this many (all of them with
# ?graph=full): a 50,000-step plan's critical path and rollback gaps alone
# were 2 MB of every answer.
GRAPH_LIST_LIMIT = 200


def fetch_steps(conn: Any, plan_id: UUID | str, limit: int = MAX_STEPS_IN_RESPONSE, offset: int = 0) -> list[StepView]:
    """A page of steps in stage order: at most `limit`, and no more than
    MAX_STEP_BYTES of their JSON (at least one step)."""
    rows = conn.execute(STEP_PAGE, (plan_id, limit, offset, MAX_STEP_BYTES)).fetchall()
    return [StepView.model_validate(r) for r in rows]


STEP_PAGE = (
    "SELECT * FROM (SELECT page.*, sum(bytes) OVER (ORDER BY stage, position) - bytes AS before "  # noqa: S608
    f"FROM (SELECT {STEP_VIEW_COLUMNS}, octet_length(inputs::text) + coalesce(octet_length(output::text), 0) "
    "+ coalesce(octet_length(rollback::text), 0) + coalesce(octet_length(error), 0) "
    "+ 40 * cardinality(depends_on) + 400 AS bytes FROM public.plan_steps WHERE plan_id = %s "
    "ORDER BY stage, position LIMIT %s OFFSET %s) page) sized WHERE before = 0 OR before + bytes <= %s "
    "ORDER BY stage, position"
)


def summarize_graph(graph: dict[str, Any], full: bool) -> dict[str, Any]:
    """The plan's graph facts with long id lists cut to GRAPH_LIST_LIMIT (and
    their full length beside them), unless the whole graph is asked for."""
    if full:
        return graph
    out = dict(graph)
    for key, value in graph.items():
        if isinstance(value, list) and len(value) > GRAPH_LIST_LIMIT and isinstance(value[0], str):
            out[key] = value[:GRAPH_LIST_LIMIT]
            out[f"{key}_total"] = len(value)
    return out


_STEP_VIEWS = TypeAdapter(list[StepView])


def draft_step_fields(s: Any) -> dict[str, Any]:
    """A planned step's fields as a stored step shows them (not yet run):
    what the API answers and, with a few more, what the plan writes."""
    return {
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


def draft_steps_view(draft: PlanDraft, limit: int) -> list[StepView]:
    """The first steps as the API shows them, from the planner's own steps:
    plain dicts validated in one pydantic call (model_construct, one step at a
    time in Python, cost twice as much)."""
    return _STEP_VIEWS.validate_python([draft_step_fields(s) for s in draft.steps[:limit]])


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
    conn: Any,
    plan_id: UUID | str,
    *,
    reused: bool = False,
    limit: int = MAX_STEPS_IN_RESPONSE,
    offset: int = 0,
    full_graph: bool = False,
) -> PlanCreated:
    from lib.llm import store

    with conn.pipeline():  # the plan, a page of its steps, its comparison, what it pulled in: one round trip
        plan_rows = conn.execute(PLAN_ROW, (plan_id,))
        step_rows = conn.execute(STEP_PAGE, (plan_id, limit, offset, MAX_STEP_BYTES))
        comparison_rows = conn.execute(store.SUMMARY_ROWS, (plan_id,))
        pulled_rows = conn.execute(plan_progress.PULLED_IN, (plan_id,))
    row = plan_rows.fetchone()
    if row is None:
        raise not_found("plan", plan_id)
    plan = PlanView.model_validate(row)
    plan.graph = summarize_graph(plan.graph, full_graph)
    plan.totals = summarize_graph(plan.totals, full_graph)
    total = int(plan.totals["steps"])  # steps are written once, with the plan (copy_steps)
    page = step_rows.fetchall()
    steps = [StepView.model_validate(r) for r in page]
    whole = offset == 0 and len(page) >= total
    # a plan that fits one page counts from it; a bigger one reads its steps' statuses (one more trip)
    counted = page if whole else conn.execute(plan_progress.PROGRESS_STEPS, (plan_id,)).fetchall()
    return PlanCreated(
        plan=plan,
        steps=steps,
        steps_total=total,
        steps_truncated=offset + len(steps) < total,
        steps_next_offset=offset + len(steps) if offset + len(steps) < total else None,
        evaluations=[],
        verdict=plan.verdict or "allow",
        reused=reused,
        comparison=store.summary_of(comparison_rows.fetchall()),
        progress=plan_progress.progress(counted, datetime.now(UTC)),
        pulled_in=plan_progress.pulled_in_of(pulled_rows.fetchone()["pulled_in"]),
    )
