"""Re-evaluate a stored plan after policies, metrics or settings changed.

Writes the next generation of plan_evaluations (history is kept), and moves
a plan that has not started yet between `ready` and `blocked` to match the
new verdict. A plan that is executing or finished keeps its status: its
evaluation is recorded for the record, not acted upon.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lib import audit, evaluations, planning
from lib.gates.evaluate import evaluate_gates
from lib.llm import store
from lib.llm.adopt import adopt
from lib.planner.models import PlanOptions
from lib.runtime import gc_paused

REEVALUATE_STATUSES = ("ready", "blocked")


def _valid_proposals(conn: Any, plan_id: UUID) -> list[tuple[str, list[list[str]]]]:
    """The compared models' valid stagings, to judge each again as the plan it would be."""
    rows = conn.execute(
        "SELECT provider, model, proposal FROM public.model_comparisons "
        "WHERE plan_id = %s AND valid AND proposal ? 'stages' ORDER BY id",
        (plan_id,),
    ).fetchall()
    return [(f"{r['provider']}:{r['model']}", r["proposal"]["stages"]) for r in rows]


def reevaluate(conn: Any, plan_id: UUID, principal: Any, reason: str | None) -> evaluations.GateReport:
    with gc_paused():
        plan, draft = planning.load_draft(conn, plan_id)
        options = PlanOptions.model_validate({**plan["options"], "dry_run": False})
        tools, stats = planning.load_tools(conn), planning.load_stats(conn)
        ctx = planning.gate_context(conn, tools, stats, options).model_copy(
            update={"model_costs": store.load_model_costs(conn, plan_id)}
        )
        evaluation = evaluate_gates(draft, ctx)
        per_model = [
            (name, evaluate_gates(adopt(draft, stages, options.max_parallel), ctx))
            for name, stages in _valid_proposals(conn, plan_id)
        ]
        generation = evaluations.record(conn, str(plan_id), evaluation, principal.name, model_evaluations=per_model)
    status = plan["status"]
    if status in REEVALUATE_STATUSES:
        status = "blocked" if evaluation.verdict == "block" else "ready"
        conn.execute(
            "UPDATE public.plans SET status = %s, status_reason = %s, updated_at = now() WHERE id = %s",
            (status, planning._status_reason(evaluation), plan_id),
        )
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
    return evaluations.report(conn, plan_id)
