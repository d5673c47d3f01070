"""Reading what a plan is made from: the backlog items a plan may touch (the
selected roots and, through open items, their dependencies), the tool
registry and its measured stats, the gates' context, and a stored plan as the
pure core sees it.
"""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from lib.data import db
from lib.data.sqltext import uuid_array_literal
from lib.planner import BacklogItem, PlanDraft, PlanOptions, Tool, ToolStats
from lib.planner.views import PlanRequest
from lib.web.problems import Problem, invalid_input, not_found

ITEM_COLUMNS = """
  id::text AS id, key, title, description, pack_id, tool_id, inputs, priority,
  estimate_minutes::float8 AS estimate_minutes, status, depends_on::text[] AS depends_on, tags, environment
"""


class ToolRegistry(dict[str, Tool]):
    """The tools that validate, by id; `errors` says why each other row was
    refused. One bad row (written before the database checked it) is
    reported on the plans that use it, never fatal to the rest."""

    def __init__(self, tools: dict[str, Tool], errors: dict[str, str]) -> None:
        super().__init__(tools)
        self.errors = errors


TOOL_ROWS = (
    "SELECT id, name, kind, category, mutating, sensitive, approval_policy, rollback_template, "
    "cost_model, default_duration_ms, config FROM public.tools"
)
STAT_ROWS = (
    "SELECT tool_id, samples, p50_ms, p95_ms, avg_cost_usd::float8 AS avg_cost_usd, "
    "avg_input_tokens::float8 AS avg_input_tokens, avg_output_tokens::float8 AS avg_output_tokens, "
    "unknown_cost_samples FROM public.tool_metric_stats"
)


def load_tools(conn: Any) -> ToolRegistry:
    return registry_of(conn.execute(TOOL_ROWS).fetchall())


def registry_of(rows: list[dict[str, Any]]) -> ToolRegistry:
    tools: dict[str, Tool] = {}
    errors: dict[str, str] = {}
    for row in rows:
        try:
            tools[row["id"]] = Tool.model_validate(row)
        except ValidationError as exc:
            errors[row["id"]] = "; ".join(
                ".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors(include_url=False)
            )
    return ToolRegistry(tools, errors)


def load_stats(conn: Any) -> dict[str, ToolStats]:
    return {r["tool_id"]: ToolStats.model_validate(r) for r in conn.execute(STAT_ROWS).fetchall()}


def registry_and_context(conn: Any, options: PlanOptions) -> tuple[ToolRegistry, dict[str, ToolStats], Any]:
    """The tools, their measured stats, and the gates' context (settings and
    policies): four reads sent together, one round trip."""
    from lib.gates import evaluations
    from lib.gates.compliance import load_policy_set
    from lib.gates.evaluate import GateContext

    with conn.pipeline():
        tool_rows = conn.execute(TOOL_ROWS)
        stat_rows = conn.execute(STAT_ROWS)
        setting_rows = conn.execute(evaluations.SETTINGS_ROWS)
        policy_rows = conn.execute(evaluations.POLICY_ROWS)
    tools = registry_of(tool_rows.fetchall())
    stats = {r["tool_id"]: ToolStats.model_validate(r) for r in stat_rows.fetchall()}
    context = GateContext(
        tools=tools,
        tool_errors=tools.errors,
        stats=stats,
        options=options,
        settings=evaluations.settings_of(setting_rows.fetchall()),
        policies=load_policy_set(policy_rows.fetchall()),
    )
    return tools, stats, context


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


def gate_context(conn: Any, tools: dict[str, Tool], stats: dict[str, ToolStats], options: PlanOptions) -> Any:
    from lib.gates import evaluations
    from lib.gates.evaluate import GateContext

    return GateContext(
        tools=tools,
        tool_errors=getattr(tools, "errors", {}),
        stats=stats,
        options=options,
        settings=evaluations.load_settings(conn),
        policies=evaluations.load_policies(conn),
    )


@functools.cache
def _stored_steps() -> TypeAdapter[list[Any]]:
    """Validates a stored plan's step rows; built on first use, once."""
    from lib.planner.models import PlanStep

    return TypeAdapter(list[PlanStep])


def load_draft(conn: Any, plan_id: UUID | str) -> tuple[dict[str, Any], PlanDraft]:
    """A stored plan as the pure core sees it, for re-evaluation."""
    from lib.planner.models import GraphFacts, Totals

    plan = conn.execute(
        "SELECT id, title, status, status_reason, executed_by, input_fingerprint, options, totals, graph, "  # noqa: S608
        "backlog_item_ids::text[] AS item_ids, "
        f"pack_ids FROM public.plans WHERE id = %s AND {db.bounded()} FOR UPDATE",
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
