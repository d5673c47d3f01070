"""Persisting a plan: the plan row (a draft until the gates' verdict), its steps
in one COPY (copied on a worker thread while the gates judge them), and the
verdict, evaluation rows, event and audit entry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from pydantic_core import to_json

from lib.data.sqltext import NULL, array_literal, copy_json, copy_text, uuid_array_literal, write_lines
from lib.llm.summary import ComparisonSummary
from lib.planner import PlanDraft
from lib.planner.views import PLAN_COLUMNS, PlanRequest, draft_step_fields
from lib.trail import audit


class Judged(NamedTuple):
    """The gates' word on the plan to write, and which plan that is."""

    draft: PlanDraft
    evaluation: Any  # PlanEvaluation
    model_evaluations: list[tuple[str, Any]]
    comparison: Any  # Comparison | None
    source: str


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


# Up to this many steps a plan is written in one pipelined round trip
# (statements, not COPY, which takes two round trips of its own and cannot
# run in a pipeline); a larger plan is COPYed while the gates judge it.
SMALL_PLAN_STEPS = 500

INSERT_STEPS = f"""
INSERT INTO public.plan_steps ({", ".join(STEP_COLUMNS)})
SELECT {", ".join(STEP_COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) AS t(
  id uuid, plan_id uuid, backlog_item_id uuid, item_key text, title text, pack_id text, tool_id text, stage int,
  position int, depends_on uuid[], idempotency_token text, rollback jsonb, inputs jsonb, requires_approval boolean,
  status text, est_duration_ms bigint, est_cost_usd numeric, cost_note text, environment text, tags text[],
  priority smallint, duration_source text)
"""  # noqa: S608 - STEP_COLUMNS is a constant


def insert_steps(conn: Any, plan_id: str, draft: PlanDraft) -> None:
    """A small plan's steps in one statement (one JSON recordset): in a
    pipeline it travels with the rest of what the plan writes."""
    rows = [
        {
            **draft_step_fields(s),
            "plan_id": plan_id,
            "environment": s.environment,
            "tags": s.tags,
            "priority": s.priority,
            "duration_source": s.duration_source,
        }
        for s in draft.steps
    ]
    conn.execute(INSERT_STEPS, (to_json(rows).decode(),))


def copy_steps(conn: Any, plan_id: str, draft: PlanDraft, table: str = "public.plan_steps") -> None:
    """All steps in one COPY: a round trip per plan, not per step. `table`
    is for the benchmark's floor, which times this very COPY into a copy of
    plan_steps."""
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(STEP_COLUMNS)}) FROM STDIN") as copy,
    ):
        write_lines(copy, _step_rows(plan_id, draft))


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


def graph_summary(draft: PlanDraft) -> dict[str, Any]:
    return {**draft.graph.model_dump(), "stage_sizes": [len(s) for s in draft.stages]}


@contextmanager
def steps_copied_meanwhile(conn: Any, plan_id: str, draft: PlanDraft) -> Iterator[None]:
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


def record_plan(
    conn: Any,
    plan_id: str,
    title: str,
    judged: Judged,
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
        generation=1,  # a new plan's first: nothing to read back
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


def insert_plan(
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
            "graph": json.dumps(graph_summary(draft)),
            "item_ids": uuid_array_literal(draft.item_ids),
            "pack_ids": draft.pack_ids,
            "created_by": principal.name,
            "created_by_sub": principal.subject,
        },
    ).fetchone()


def _default_title(draft: PlanDraft) -> str:
    packs = ", ".join(draft.pack_ids[:3]) + (" …" if len(draft.pack_ids) > 3 else "")
    n = draft.totals.steps
    return f"{n} step{'' if n == 1 else 's'} across {packs}"
