"""Creating a plan: read the backlog, plan (the pure core), judge it with the
gates, and persist it in one transaction.

The plan row and all its steps (one COPY), the gate verdict, the
`plan.ready`/`plan.blocked` event and the audit entry commit together or not
at all. An open plan for the same input fingerprint is returned instead of a
duplicate; the partial unique index on plans decides races.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lib.planner import PlanDraft, PlanOptions
from lib.planner.load import registry_and_context, resolve_roots
from lib.planner.views import (
    MAX_STEPS_IN_RESPONSE,
    PlanCreated,
    PlanRequest,
    PlanView,
    draft_steps_view,
    existing_open_plan,
    open_plan_id,
)
from lib.planner.write import (
    SMALL_PLAN_STEPS,
    Judged,
    copy_steps,
    graph_summary,
    insert_plan,
    insert_steps,
    record_plan,
    steps_copied_meanwhile,
)
from lib.runtime import pause_gc
from lib.web.problems import Problem


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
        graph=graph_summary(draft),
        backlog_item_count=len(draft.item_ids),
        pack_ids=draft.pack_ids,
        created_by=principal.name,
        created_at=now,
        updated_at=now,
    )


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


def _read(conn: Any, request: PlanRequest) -> tuple[Any, ...]:
    # the registry and the gates' context first, in one pipelined round trip
    # (after a streamed read, psycopg 3.3 fails a pipeline on its chunked rows)
    tools, stats, context = registry_and_context(conn, request.options)
    roots, backlog = resolve_roots(conn, request)
    if roots is None and not any(i.status == "open" for i in backlog.values()):
        raise Problem(
            422,
            "body: the backlog has no open items to plan",
            type="invalid-input",
            errors=[{"loc": ["body"], "msg": "no open backlog items"}],
        )
    return roots, backlog, tools, stats, context


def _judge(draft: PlanDraft, ctx: Any, comparison: Any, options: PlanOptions) -> Judged:
    """Evaluate the gates; with compared models, each proposal too, and adopt
    the best valid one when asked (the deterministic plan when none is valid)."""
    from lib.gates.evaluate import evaluate_gates

    evaluation = evaluate_gates(draft, ctx)
    if comparison is None:
        return Judged(draft, evaluation, [], None, "deterministic")
    model_evaluations = comparison.evaluate(lambda d: evaluate_gates(d, ctx))
    source = "deterministic"
    if options.adopt_best_model:
        draft, comparison = comparison.adopt_best(draft)
        if comparison.adopted is not None:
            evaluation = dict(model_evaluations)[comparison.adopted]
            source = comparison.adopted
    return Judged(draft, evaluation, model_evaluations, comparison, source)


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

    if comparison is None and len(draft.steps) <= SMALL_PLAN_STEPS:
        # A small plan: judged, then everything it writes after the plan row
        # (steps, verdict, evaluation rows, events, audit) in one round trip.
        judged = _judge(draft, ctx, None, options)
        row = insert_plan(conn, request, principal, idempotency_key, draft, "deterministic")
        if row is None:
            return 200, existing_open_plan(conn, draft.fingerprint)
        answer = _answer_with(row, judged)
        with conn.pipeline():
            insert_steps(conn, str(row["id"]), draft)
            record_plan(conn, str(row["id"]), row["title"], judged, [], None, request, principal)
        return 201, answer
    if comparison is None:
        # The draft is final: it is written as a draft while the gates judge
        # it (and the rest of what is written is prepared), and record()
        # below gives it the verdict's status.
        row = insert_plan(conn, request, principal, idempotency_key, draft, "deterministic")
        if row is None:
            return 200, existing_open_plan(conn, draft.fingerprint)
        with steps_copied_meanwhile(conn, str(row["id"]), draft):
            judged = _judge(draft, ctx, None, options)
            lines, answer = _prepare(row, judged, principal)
        keep.extend((judged, lines))
    else:  # the gates choose which plan to write (adopt_best_model)
        judged = _judge(draft, ctx, comparison, options)
        row = insert_plan(conn, request, principal, idempotency_key, judged.draft, judged.source)
        if row is None:
            return 200, existing_open_plan(conn, draft.fingerprint)
        lines, answer = _prepare(row, judged, principal)
        copy_steps(conn, str(row["id"]), judged.draft)
    record_plan(conn, str(row["id"]), row["title"], judged, lines, answer.comparison, request, principal)
    return 201, answer


def _prepare(row: dict[str, Any], judged: Judged, principal: Any) -> tuple[list[str], PlanCreated]:
    """What is left to write and answer, worked out without the connection:
    the evaluation rows, and the answer with the plan row as record() leaves
    it (verdict, score and status; the same now() stamps updated_at)."""
    from lib.gates import evaluations

    lines = evaluations.evaluation_lines(judged.evaluation, principal.name, judged.model_evaluations)
    return lines, _answer_with(row, judged)


def _answer_with(row: dict[str, Any], judged: Judged) -> PlanCreated:
    """The answer, with the plan row as record() leaves it (verdict, score
    and status; the same now() stamps updated_at)."""
    from lib.gates import evaluations

    evaluation = judged.evaluation
    plan = PlanView.model_validate(
        {
            **row,
            "status": evaluations.plan_status(evaluation),
            "status_reason": evaluations.status_reason(evaluation),
            "verdict": evaluation.verdict,
            "score": evaluation.score,
        }
    )
    return _answer(plan, judged, dry_run=False)


def _answer(plan: PlanView, judged: Judged, *, dry_run: bool) -> PlanCreated:
    """The answer to a new plan (or a dry run): its first steps straight from the draft."""
    from lib.gates import evaluations

    draft = judged.draft
    return PlanCreated(
        plan=plan,
        steps=draft_steps_view(draft, MAX_STEPS_IN_RESPONSE),
        steps_total=len(draft.steps),
        steps_truncated=len(draft.steps) > MAX_STEPS_IN_RESPONSE,
        evaluations=evaluations.results_for_response(judged.evaluation),
        verdict=judged.evaluation.verdict,
        reused=False,
        dry_run=dry_run,
        comparison=judged.comparison.summary() if judged.comparison is not None else None,
    )
