"""The planning shell: load the backlog, plan (pure), persist in one transaction.

The plan row and all its steps (one COPY), the gate verdict, the
`plan.ready`/`plan.blocked` event and the audit entry commit together or not
at all. An open plan for the same input fingerprint is returned instead of a
duplicate; the partial unique index on plans decides races.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WithJsonSchema

from lib.data.sqltext import NULL, array_literal, copy_json, copy_text, uuid_array_literal, write_lines
from lib.gates.models import GateResult
from lib.llm.summary import ComparisonSummary
from lib.planner import BacklogItem, PlanDraft, PlanOptions, Tool, ToolStats
from lib.plans import status as plan_status
from lib.runtime import pause_gc
from lib.trail import audit
from lib.web.problems import Problem, invalid_input, not_found

OPEN_PLAN_STATUSES = plan_status.OPEN
MAX_STEPS_IN_RESPONSE = 2000

ITEM_COLUMNS = """
  id::text AS id, key, title, description, pack_id, tool_id, inputs, priority,
  estimate_minutes::float8 AS estimate_minutes, status, depends_on::text[] AS depends_on, tags, environment
"""


# ------------------------------------------------------------- API models ----


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


# ---------------------------------------------------------------- loading ----


def load_tools(conn: Any) -> dict[str, Tool]:
    rows = conn.execute(
        "SELECT id, name, kind, category, mutating, sensitive, approval_policy, rollback_template, "
        "cost_model, default_duration_ms, config FROM public.tools"
    ).fetchall()
    return {r["id"]: Tool.model_validate(r) for r in rows}


def load_stats(conn: Any) -> dict[str, ToolStats]:
    rows = conn.execute(
        "SELECT tool_id, samples, p50_ms, p95_ms, avg_cost_usd::float8 AS avg_cost_usd, "
        "avg_input_tokens::float8 AS avg_input_tokens, avg_output_tokens::float8 AS avg_output_tokens, "
        "unknown_cost_samples FROM public.tool_metric_stats"
    ).fetchall()
    return {r["tool_id"]: ToolStats.model_validate(r) for r in rows}


_BACKLOG_ITEMS = TypeAdapter(list[BacklogItem])


# Rows a batch: the server sends the next while pydantic validates this one.
FETCH_BATCH_ROWS = 1000


def _fetch_items(conn: Any, query: str, params: Any = None) -> list[BacklogItem]:
    """The query's rows as BacklogItems. Each row comes as its JSON text
    (json_agg would build the document too, at twice the server's time), and
    pydantic validates a batch of them in one call over one JSON document (row
    by row, psycopg's JSON loads and a model validation each cost three times
    as much). The rows are streamed in batches, so the server produces and
    sends while this process validates: 100,000 items took 1.05 s read whole,
    then validated, and 0.5 s so."""
    from psycopg.rows import tuple_row  # here: psycopg loads when a request first reads, not at import

    items: list[BacklogItem] = []
    batch: list[str] = []
    with conn.cursor(row_factory=tuple_row) as cur:
        sql = f"SELECT row_to_json(q)::text FROM ({query}) q"  # noqa: S608 - queries are constants
        for (text,) in cur.stream(sql, params, size=FETCH_BATCH_ROWS):
            batch.append(text)
            if len(batch) == FETCH_BATCH_ROWS:
                items += _BACKLOG_ITEMS.validate_json("[" + ",".join(batch) + "]")
                batch = []
    if batch:
        items += _BACKLOG_ITEMS.validate_json("[" + ",".join(batch) + "]")
    return items


# The roots and, through open items, everything they depend on.
CLOSURE_OF_ROOTS = f"""
WITH RECURSIVE closure (id) AS (
    SELECT unnest(%s::uuid[])
  UNION
    SELECT dep FROM closure c
      JOIN public.backlog_items b ON b.id = c.id AND b.status IN ('open', 'in_progress')
     CROSS JOIN LATERAL unnest(b.depends_on) AS dep
)
SELECT {ITEM_COLUMNS} FROM public.backlog_items WHERE id IN (SELECT id FROM closure)
"""  # noqa: S608 - ITEM_COLUMNS is a constant
# When every open item is a root, the closure is one step deep: the open
# items, then the items they name that are not open (ITEMS_BY_ID). Asked
# separately: in one statement PostgreSQL probed the index once per
# dependency (300,000 probes for 100,000 items) to find the few closed ones.
OPEN_ITEMS = f"SELECT {ITEM_COLUMNS} FROM public.backlog_items WHERE status IN ('open', 'in_progress')"  # noqa: S608
ITEMS_BY_ID = f"SELECT {ITEM_COLUMNS} FROM public.backlog_items WHERE id = ANY(%s::uuid[])"  # noqa: S608


def load_backlog(conn: Any, roots: list[str] | None) -> dict[str, BacklogItem]:
    """The items a plan may touch: the roots (or every open item) and, through
    open items, everything they depend on, closed dependencies included so the
    planner can tell a finished dependency from a missing one."""
    if roots is not None:
        return {item.id: item for item in _fetch_items(conn, CLOSURE_OF_ROOTS, (roots,))}
    backlog = {item.id: item for item in _fetch_items(conn, OPEN_ITEMS)}
    named = {dep for item in backlog.values() for dep in item.depends_on if dep not in backlog}
    if named:  # by id whatever their status now: one reopened meanwhile is open, not missing
        backlog.update(
            (item.id, item) for item in _fetch_items(conn, ITEMS_BY_ID, (uuid_array_literal(sorted(named)),))
        )
    return backlog


def resolve_roots(conn: Any, request: PlanRequest) -> tuple[list[str] | None, dict[str, BacklogItem]]:
    """The selected item ids, validated (unknown ids and packs are 422s naming
    them), and the backlog they reach (load_backlog), which the ids are
    validated against: each selected item is read once."""
    if request.backlog_item_ids is None and request.pack_ids is None:
        return None, load_backlog(conn, None)
    pack_errors: list[dict[str, Any]] = []
    roots: list[str] = []
    wanted = [] if request.backlog_item_ids is None else [str(i) for i in request.backlog_item_ids]
    roots.extend(dict.fromkeys(wanted))
    if request.pack_ids is not None:
        known = {r["id"] for r in conn.execute("SELECT id FROM public.packs WHERE id = ANY(%s)", (request.pack_ids,))}
        for index, pack in enumerate(request.pack_ids):
            if pack not in known:
                pack_errors.append({"loc": ["body", "pack_ids", index], "msg": f"no pack {pack!r}"})
        roots.extend(
            r["id"]
            for r in conn.execute(
                "SELECT id::text AS id FROM public.backlog_items WHERE status = 'open' AND pack_id = ANY(%s) "
                "ORDER BY priority, key",
                (request.pack_ids,),
            )
        )
    unique = list(dict.fromkeys(roots))
    backlog = load_backlog(conn, unique)  # a selected id that is not an item is not in it
    errors: list[dict[str, Any]] = []
    for index, item_id in enumerate(wanted):
        item = backlog.get(item_id)
        if item is None:
            errors.append({"loc": ["body", "backlog_item_ids", index], "msg": f"no backlog item {item_id}"})
        elif item.status not in ("open", "in_progress"):
            errors.append(
                {
                    "loc": ["body", "backlog_item_ids", index],
                    "msg": f"item {item.key} is {item.status}; only open items can be planned",
                }
            )
    errors.extend(pack_errors)
    if errors:
        raise invalid_input(errors)
    if not unique:
        raise Problem(
            422,
            "body.pack_ids: the selected packs have no open items",
            type="invalid-input",
            errors=[{"loc": ["body", "pack_ids"], "msg": "no open items in these packs"}],
        )
    return unique, backlog


# ------------------------------------------------------------ persisting ----

STEP_COLUMNS = (
    "id",
    "plan_id",
    "backlog_item_id",
    "item_key",
    "title",
    "pack_id",
    "tool_id",
    "stage",
    "position",
    "depends_on",
    "idempotency_token",
    "rollback",
    "inputs",
    "requires_approval",
    "status",
    "est_duration_ms",
    "est_cost_usd",
    "cost_note",
    "environment",
    "tags",
    "priority",
    "duration_source",
)


def _step_rows(plan_id: str, draft: PlanDraft) -> Iterator[str]:
    """Each step as one line of COPY's text format, in STEP_COLUMNS order.

    Built as text here rather than through psycopg's per-value dumpers (a
    plan's 100,000 rows went through ~2 million dumper calls). Step ids, the
    plan id, item ids and tokens are UUIDs and hex, which need no escaping;
    every other text is escaped. A rollback of None is JSON null, as before."""
    texts: dict[str | None, str] = {None: NULL}  # pack, tool, notes, sources: a few distinct values

    def text(value: str | None) -> str:
        out = texts.get(value)
        if out is None:
            out = texts[value] = copy_text(value)  # type: ignore[arg-type]
        return out

    for s in draft.steps:
        cost = NULL if s.est_cost_usd is None else repr(s.est_cost_usd)
        yield (
            f"{s.id}\t{plan_id}\t{s.item_id}\t{copy_text(s.item_key)}\t{copy_text(s.title)}\t"
            f"{text(s.pack_id)}\t{text(s.tool_id)}\t{s.stage}\t{s.position}\t"
            f"{uuid_array_literal(s.depends_on)}\t{s.idempotency_token}\t{copy_json(s.rollback)}\t{copy_json(s.inputs)}\t"
            f"{'t' if s.requires_approval else 'f'}\tpending\t{s.est_duration_ms}\t{cost}\t{text(s.cost_note)}\t"
            f"{text(s.environment)}\t{copy_text(array_literal(s.tags)) if s.tags else '{}'}\t{s.priority}\t"
            f"{text(s.duration_source)}\n"
        )


def copy_steps(conn: Any, plan_id: str, draft: PlanDraft, table: str = "public.plan_steps") -> None:
    """All steps in one COPY: a round trip per plan, not per step. `table`
    is for the benchmark's floor, which times this very COPY into a copy of
    plan_steps."""
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(STEP_COLUMNS)}) FROM STDIN") as copy,
    ):
        write_lines(copy, _step_rows(plan_id, draft))


PLAN_COLUMNS = """
  id, version, title, status, status_reason, verdict, score, source, input_fingerprint, options, totals,
  graph, cardinality(backlog_item_ids) AS backlog_item_count, pack_ids, created_by, created_at, updated_at
"""
# RETURNING the view: nothing later in the creating transaction changes these
# columns (evaluations.record writes the same verdict and score, and now(),
# the transaction's start, to updated_at).
INSERT_PLAN = f"""
INSERT INTO public.plans (title, status, status_reason, verdict, score, source, idempotency_key,
                          input_fingerprint, options, totals, graph, backlog_item_ids, pack_ids,
                          created_by, created_by_sub)
VALUES (%(title)s, %(status)s, %(status_reason)s, %(verdict)s, %(score)s, %(source)s, %(idempotency_key)s,
        %(fingerprint)s, %(options)s, %(totals)s, %(graph)s, %(item_ids)s::uuid[], %(pack_ids)s,
        %(created_by)s, %(created_by_sub)s)
ON CONFLICT (input_fingerprint)
   WHERE status IN ('draft', 'ready', 'blocked', 'approved', 'executing', 'paused')
   DO NOTHING
RETURNING {PLAN_COLUMNS}
"""  # noqa: S608 - PLAN_COLUMNS is a constant
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


def _draft_steps_view(draft: PlanDraft, limit: int) -> list[StepView]:
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


# -------------------------------------------------------------- the story ----


def _plan_view_for_dry_run(draft: PlanDraft, request: PlanRequest, principal: Any, evaluation: Any) -> PlanView:
    from uuid import uuid4

    now = datetime.now(UTC)
    return PlanView(
        id=uuid4(),
        version=1,
        title=request.options.title or "",
        status="draft",
        status_reason="dry run: nothing was written",
        verdict=evaluation.verdict,
        score=evaluation.score,
        source="deterministic",
        input_fingerprint=draft.fingerprint,
        options=request.options.model_dump(),
        totals=draft.totals.model_dump(),
        graph=_graph_summary(draft),
        backlog_item_count=len(draft.item_ids),
        pack_ids=draft.pack_ids,
        created_by=principal.name,
        created_at=now,
        updated_at=now,
    )


def _graph_summary(draft: PlanDraft) -> dict[str, Any]:
    return {**draft.graph.model_dump(), "stage_sizes": [len(s) for s in draft.stages]}


def create(
    conn: Any | Callable[[], Any],
    request: PlanRequest,
    principal: Any,
    idempotency_key: str | None,
    after_send: list[Callable[[], Any]] | None = None,
) -> tuple[int, PlanCreated]:
    """Plan and persist; returns (status code, body): 201 created, 200 reused or dry run.

    `conn` is the request's transaction, or a function that opens it: when
    models are compared, the backlog is read in a short transaction of its
    own and the providers are asked with no transaction open (they may take a
    minute); the request's transaction is opened only to write.

    The collector is paused while planning (see runtime.gc_paused). Given
    `after_send` (the endpoint's, run once the answer is sent), the backlog,
    the draft and its evaluation are freed there, and only then does the
    collector resume: resumed at once, it would first sweep every object
    the plan made (0.3-0.6 s at 100,000 items), inside the request."""
    writer = conn if callable(conn) else (lambda: conn)
    resume = pause_gc()
    keep: list[Any] = []

    def finish() -> None:
        keep.clear()
        resume()

    try:
        answer = _create(writer, request, principal, idempotency_key, keep)
    except BaseException:
        finish()
        raise
    if after_send is None:
        finish()
    else:
        after_send.append(finish)
    return answer


def gate_context(conn: Any, tools: dict[str, Tool], stats: dict[str, ToolStats], options: PlanOptions) -> Any:
    from lib.gates import evaluations
    from lib.gates.evaluate import GateContext

    return GateContext(
        tools=tools,
        stats=stats,
        options=options,
        settings=evaluations.load_settings(conn),
        policies=evaluations.load_policies(conn),
    )


def _read(conn: Any, request: PlanRequest) -> tuple[Any, ...]:
    roots, backlog = resolve_roots(conn, request)
    if roots is None and not any(i.status == "open" for i in backlog.values()):
        raise Problem(
            422,
            "body: the backlog has no open items to plan",
            type="invalid-input",
            errors=[{"loc": ["body"], "msg": "no open backlog items"}],
        )
    tools, stats = load_tools(conn), load_stats(conn)
    return roots, backlog, tools, stats, gate_context(conn, tools, stats, request.options)


class _Judged(NamedTuple):
    """The gates' word on the plan to write, and which plan that is."""

    draft: PlanDraft
    evaluation: Any  # PlanEvaluation
    model_evaluations: list[tuple[str, Any]]
    comparison: Any  # Comparison | None
    source: str


def _judge(draft: PlanDraft, ctx: Any, comparison: Any, options: PlanOptions) -> _Judged:
    """Evaluate the gates; with compared models, each proposal too, and adopt
    the best valid one when asked (the deterministic plan when none is valid)."""
    from lib.gates.evaluate import evaluate_gates

    evaluation = evaluate_gates(draft, ctx)
    if comparison is None:
        return _Judged(draft, evaluation, [], None, "deterministic")
    model_evaluations = comparison.evaluate(lambda d: evaluate_gates(d, ctx))
    source = "deterministic"
    if options.adopt_best_model:
        draft, comparison = comparison.adopt_best(draft)
        if comparison.adopted is not None:
            evaluation = dict(model_evaluations)[comparison.adopted]
            source = comparison.adopted
    return _Judged(draft, evaluation, model_evaluations, comparison, source)


@contextmanager
def _steps_copied_meanwhile(conn: Any, plan_id: str, draft: PlanDraft) -> Iterator[None]:
    """Copy the steps on a worker thread while the caller's block does pure
    work (it must not touch `conn`). The server parses, indexes and checks the
    foreign key of every row on its own core; done one after the other, this
    process sat idle through that, and the server through the gates. The
    worker's error, if any, is raised when the block ends."""
    failure: list[BaseException] = []

    def copy() -> None:
        try:
            copy_steps(conn, plan_id, draft)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            failure.append(error)

    worker = threading.Thread(target=copy, name="copy-steps", daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join()
    if failure:
        raise failure[0]


def _create(
    writer: Callable[[], Any],
    request: PlanRequest,
    principal: Any,
    idempotency_key: str | None,
    keep: list[Any],
) -> tuple[int, PlanCreated]:
    from lib.data import db
    from lib.llm.refs import require_model_refs
    from lib.planner.build import build_plan

    options = request.options
    refs = require_model_refs(options.compare_models)  # a 422 naming body.options.compare_models.N
    comparison = None
    if not refs:
        conn = writer()
        roots, backlog, tools, stats, ctx = _read(conn, request)
        draft = build_plan(backlog, tools, stats, options, roots)
        keep.extend((backlog, draft))
    else:
        with db.transaction() as reader:  # short: the providers are asked after it ends
            roots, backlog, tools, stats, ctx = _read(reader, request)
            draft = build_plan(backlog, tools, stats, options, roots)
            reuse = not options.dry_run and open_plan_id(reader, draft.fingerprint) is not None
        if reuse:
            return 200, existing_open_plan(writer(), draft.fingerprint)  # without paying for a second comparison
        from lib.llm.compare import compare

        # A provider that fails or times out is a row with its error, never a failed plan.
        comparison = compare(draft, refs, options.max_parallel)
        ctx = ctx.model_copy(update={"model_costs": comparison.model_costs()})
        conn = writer()

    if options.dry_run:
        judged = _judge(draft, ctx, comparison, options)
        view = _plan_view_for_dry_run(judged.draft, request, principal, judged.evaluation)
        view.source = judged.source
        return 200, _answer(view, judged, dry_run=True)

    if comparison is None:
        # The draft is final: it is written as a draft while the gates judge
        # it (and the rest of what is written is prepared), and record()
        # below gives it the verdict's status.
        row = _insert_plan(conn, request, principal, idempotency_key, draft, "deterministic")
        if row is None:
            return 200, existing_open_plan(conn, draft.fingerprint)
        with _steps_copied_meanwhile(conn, str(row["id"]), draft):
            judged = _judge(draft, ctx, None, options)
            lines, answer = _prepare(row, judged, principal)
        keep.extend((judged, lines))
    else:  # the gates choose which plan to write (adopt_best_model)
        judged = _judge(draft, ctx, comparison, options)
        row = _insert_plan(conn, request, principal, idempotency_key, judged.draft, judged.source)
        if row is None:
            return 200, existing_open_plan(conn, draft.fingerprint)
        lines, answer = _prepare(row, judged, principal)
        copy_steps(conn, str(row["id"]), judged.draft)
    _record(conn, str(row["id"]), row["title"], judged, lines, answer.comparison, request, principal)
    return 201, answer


def _prepare(row: dict[str, Any], judged: _Judged, principal: Any) -> tuple[list[str], PlanCreated]:
    """What is left to write and answer, worked out without the connection:
    the evaluation rows, and the answer with the plan row as record() leaves
    it (verdict, score and status; the same now() stamps updated_at)."""
    from lib.gates import evaluations

    evaluation = judged.evaluation
    lines = evaluations.evaluation_lines(evaluation, principal.name, judged.model_evaluations)
    plan = PlanView.model_validate(
        {
            **row,
            "status": evaluations.plan_status(evaluation),
            "status_reason": evaluations.status_reason(evaluation),
            "verdict": evaluation.verdict,
            "score": evaluation.score,
        }
    )
    return lines, _answer(plan, judged, dry_run=False)


def _record(
    conn: Any,
    plan_id: str,
    title: str,
    judged: _Judged,
    lines: list[str],
    summary: ComparisonSummary | None,
    request: PlanRequest,
    principal: Any,
) -> None:
    """The verdict and its evaluation rows, the comparison, the event and the audit entry."""
    from lib.gates import evaluations

    draft, evaluation = judged.draft, judged.evaluation
    generation = evaluations.record(
        conn,
        plan_id,
        evaluation,
        principal.name,
        model_evaluations=judged.model_evaluations,
        set_status=True,
        lines=lines,
    )
    if judged.comparison is not None:
        from lib.llm import store

        store.record(conn, plan_id, judged.comparison)
    evaluations.announce_verdict(conn, plan_id, title, evaluation, generation, draft.totals.model_dump())
    audit.record(
        conn,
        actor=principal,
        action="plan.created",
        plan_id=plan_id,
        backlog_item_ids=draft.item_ids,
        pack_ids=draft.pack_ids,
        details={
            "status": evaluations.plan_status(evaluation),
            "verdict": evaluation.verdict,
            "score": evaluation.score,
            "policy_version": evaluation.policy_version,
            "fingerprint": draft.fingerprint,
            "steps": draft.totals.steps,
            "options": request.options.model_dump(),
            "source": judged.source,
            "comparison": None
            if summary is None
            else {
                "best": summary.best_model,
                "adopted": summary.adopted_model,
                "prompt_digest": summary.prompt_digest,
                "models": {m.model: {"score": m.score, "valid": m.valid, "error": m.error} for m in summary.models},
            },
        },
    )


def _insert_plan(
    conn: Any, request: PlanRequest, principal: Any, idempotency_key: str | None, draft: PlanDraft, source: str
) -> dict[str, Any] | None:
    """The plan row, as a draft with no verdict yet (evaluations.record sets
    both), or None when an open plan for the same input exists."""
    return conn.execute(
        INSERT_PLAN,
        {
            "title": request.options.title or _default_title(draft),
            "status": "draft",
            "status_reason": "being evaluated",
            "verdict": None,
            "score": None,
            "source": source,
            "idempotency_key": idempotency_key,
            "fingerprint": draft.fingerprint,
            "options": json.dumps(request.options.model_dump()),
            "totals": json.dumps(draft.totals.model_dump()),
            "graph": json.dumps(_graph_summary(draft)),
            "item_ids": uuid_array_literal(draft.item_ids),
            "pack_ids": draft.pack_ids,
            "created_by": principal.name,
            "created_by_sub": principal.subject,
        },
    ).fetchone()


def _answer(plan: PlanView, judged: _Judged, *, dry_run: bool) -> PlanCreated:
    """The answer to a new plan (or a dry run): its first steps straight from the draft."""
    from lib.gates import evaluations

    draft = judged.draft
    return PlanCreated(
        plan=plan,
        steps=_draft_steps_view(draft, MAX_STEPS_IN_RESPONSE),
        steps_total=len(draft.steps),
        steps_truncated=len(draft.steps) > MAX_STEPS_IN_RESPONSE,
        evaluations=evaluations.results_for_response(judged.evaluation),
        verdict=judged.evaluation.verdict,
        reused=False,
        dry_run=dry_run,
        comparison=judged.comparison.summary() if judged.comparison is not None else None,
    )


def _default_title(draft: PlanDraft) -> str:
    packs = ", ".join(draft.pack_ids[:3]) + (" …" if len(draft.pack_ids) > 3 else "")
    return f"{draft.totals.steps} steps across {packs}"


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


# ------------------------------------------------------- stored plans ----


@functools.cache
def _stored_steps() -> TypeAdapter[list[Any]]:
    """Validates a stored plan's step rows; built on first use, once."""
    from lib.planner.models import PlanStep

    return TypeAdapter(list[PlanStep])


def load_draft(conn: Any, plan_id: UUID | str) -> tuple[dict[str, Any], PlanDraft]:
    """A stored plan as the pure core sees it, for re-evaluation."""
    from lib.planner.models import GraphFacts, Totals

    plan = conn.execute(
        "SELECT id, title, status, status_reason, input_fingerprint, options, totals, graph, "
        "backlog_item_ids::text[] AS item_ids, "
        "pack_ids FROM public.plans WHERE id = %s FOR UPDATE",
        (plan_id,),
    ).fetchone()
    if plan is None:
        raise not_found("plan", plan_id)
    rows = conn.execute(
        "SELECT id::text AS id, backlog_item_id::text AS item_id, item_key, title, pack_id, tool_id, stage, position, "
        "depends_on::text[] AS depends_on, idempotency_token, rollback, inputs, requires_approval, "
        "coalesce(est_duration_ms, 0) AS est_duration_ms, coalesce(duration_source, 'stored') AS duration_source, "
        "est_cost_usd::float8 AS est_cost_usd, cost_note, environment, tags, priority "
        "FROM public.plan_steps WHERE plan_id = %s ORDER BY stage, position",
        (plan_id,),
    ).fetchall()
    steps = _stored_steps().validate_python(rows)
    stages: list[list[str]] = []
    for step in steps:
        while len(stages) <= step.stage:
            stages.append([])
        stages[step.stage].append(step.id)
    draft = PlanDraft(
        fingerprint=plan["input_fingerprint"],
        steps=steps,
        stages=stages,
        totals=Totals.model_validate(plan["totals"]),
        graph=GraphFacts.model_validate(plan["graph"]),
        item_ids=plan["item_ids"],
        pack_ids=plan["pack_ids"],
    )
    return plan, draft
