"""Re-evaluate a stored plan after policies, metrics or settings changed.

Writes the next generation of plan_evaluations (history is kept), and moves
a plan that was never executed between `ready` and `blocked` to match the
new verdict. A plan whose execution was asked for keeps its status (a denial
stands until an admin overrides it): its evaluation is recorded for the
record, not acted upon.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lib.gates import evaluations, report
from lib.gates.evaluate import evaluate_gates
from lib.llm import store
from lib.llm.adopt import adopt
from lib.planner import load
from lib.planner.models import PlanOptions
from lib.plans import status as plan_status
from lib.runtime import gc_paused
from lib.trail import audit

REEVALUATE_STATUSES = ("ready", "blocked")


def reevaluate(conn: Any, plan_id: UUID, principal: Any, reason: str | None) -> report.GateReport:
    with gc_paused():
        plan, draft = load.load_draft(conn, plan_id)
        options = PlanOptions.model_validate({**plan["options"], "dry_run": False})
        tools, stats = load.load_tools(conn), load.load_stats(conn)
        # the comparison's costs and its valid stagings, to judge each again as the plan it would be
        model_costs, proposals = store.load_comparison(conn, plan_id)
        ctx = load.gate_context(conn, tools, stats, options).model_copy(update={"model_costs": model_costs})
        evaluation = evaluate_gates(draft, ctx)
        per_model = [
            (name, evaluate_gates(adopt(draft, stages, options.max_parallel), ctx)) for name, stages in proposals
        ]
        # load_draft locked the plan row: its status cannot change under us.
        # Only a plan that never started moves: once execution was asked for,
        # a block is a person's denial or a rollback, which only an admin's
        # override (or the rollback itself) may lift.
        movable = plan["status"] in REEVALUATE_STATUSES and plan["executed_by"] is None
        movable = movable and not plan_status.rolling_back(plan)
        generation = evaluations.record(
            conn, str(plan_id), evaluation, principal.name, model_evaluations=per_model, set_status=movable
        )
    status = evaluations.plan_status(evaluation) if movable else plan["status"]
    if movable:
        evaluations.announce_verdict(
            conn, str(plan_id), plan["title"], evaluation, generation, draft.totals.model_dump()
        )
    audit.record(
        conn,
        actor=principal,
        action="plan.evaluated",
        plan_id=plan_id,
        backlog_item_ids=draft.item_ids,
        pack_ids=draft.pack_ids,
        details={
            "generation": generation,
            "verdict": evaluation.verdict,
            "score": evaluation.score,
            "policy_version": evaluation.policy_version,
            "status": status,
            "reason": reason,
        },
    )
    return report.report(conn, plan_id)
