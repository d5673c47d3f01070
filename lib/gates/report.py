"""The gate report as GET /api/gates/:planId shows it: the latest generation per
gate and per model, a page of the flagged steps (worst first), the overrides
beside the verdicts they overrode, and the history of generations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from lib.gates.models import GATES, RANK, Verdict
from lib.planner.models import Finding
from lib.web.problems import Problem, not_found


class GateSummary(BaseModel):
    verdict: Verdict
    score: int
    findings: list[Finding]
    findings_total: int
    overrides: list[dict[str, Any]] = Field(default_factory=list, description="overrides that apply to this gate")


class StepReport(BaseModel):
    step_id: UUID
    item_key: str
    verdict: Verdict
    findings: list[Finding]


class ModelReport(BaseModel):
    model: str
    verdict: Verdict
    score: int
    gates: dict[str, GateSummary]


class GenerationSummary(BaseModel):
    generation: int
    verdict: Verdict
    score: int
    evaluated_at: datetime
    evaluated_by: str


class GateReport(BaseModel):
    plan_id: UUID
    plan_status: str
    generation: int
    evaluated_at: datetime
    verdict: Verdict
    score: int
    policy_version: str
    gates: dict[str, GateSummary]
    summary: dict[str, Any] = Field(description="the resource estimate: costs, Supabase footprint, durations")
    steps: list[StepReport] = Field(description="one page of the steps with findings, worst first")
    steps_total: int = Field(default=0, description="steps with findings in all")
    steps_next_offset: int | None = Field(default=None, description="pass as ?steps_offset= for the next page")
    models: list[ModelReport]
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    history: list[GenerationSummary]


STEPS_PAGE = 200


# A page of the steps with findings, worst first (a plan of 50,000 flagged
# steps answered 22 MB in one piece, over Vercel's 4.5 MB limit).
STEP_PAGE_ROWS = """
WITH flagged AS (
  SELECT e.step_id, max(CASE e.verdict WHEN 'block' THEN 2 WHEN 'warn' THEN 1 ELSE 0 END) AS worst,
         min(s.item_key) AS item_key
    FROM public.plan_evaluations e JOIN public.plan_steps s ON s.id = e.step_id
   WHERE e.plan_id = %(plan)s AND e.generation = %(generation)s AND e.scope = 'step'
   GROUP BY e.step_id),
page AS (
  SELECT step_id, worst, item_key, count(*) OVER () AS total FROM flagged
   ORDER BY worst DESC, item_key LIMIT %(limit)s OFFSET %(offset)s)
SELECT p.step_id, p.item_key, p.worst, p.total, e.gate, e.verdict, e.details
  FROM page p JOIN public.plan_evaluations e
    ON e.plan_id = %(plan)s AND e.generation = %(generation)s AND e.scope = 'step' AND e.step_id = p.step_id
 ORDER BY p.worst DESC, p.item_key, e.id
"""


def report(conn: Any, plan_id: UUID, steps_limit: int = STEPS_PAGE, steps_offset: int = 0) -> GateReport:
    plan = conn.execute(
        "SELECT id, status, evaluation_generation FROM public.plans WHERE id = %s", (plan_id,)
    ).fetchone()
    if plan is None:
        raise not_found("plan", plan_id)
    generation = plan["evaluation_generation"]
    rows = conn.execute(
        "SELECT e.scope, e.step_id, e.model, e.gate, e.verdict, e.score, e.details, e.policy_version, "
        "e.created_at, s.item_key FROM public.plan_evaluations e "
        "LEFT JOIN public.plan_steps s ON s.id = e.step_id "
        "WHERE e.plan_id = %s AND e.generation = %s AND e.scope <> 'step' ORDER BY e.id",
        (plan_id, generation),
    ).fetchall()
    step_rows = conn.execute(
        STEP_PAGE_ROWS, {"plan": plan_id, "generation": generation, "limit": steps_limit, "offset": steps_offset}
    ).fetchall()
    if not rows:
        raise Problem(404, f"plan {plan_id} has not been evaluated", type="not-found")
    gates: dict[str, GateSummary] = {}
    overall = None
    steps: dict[str, StepReport] = {}
    models: dict[str, ModelReport] = {}
    for r in rows:
        details = r["details"]
        summary = GateSummary(
            verdict=r["verdict"],
            score=r["score"],
            findings=details["findings"],
            findings_total=details.get("findings_total", len(details["findings"])),
        )
        if r["scope"] == "plan":
            if r["gate"] == "overall":
                overall = (r, details)
            else:
                gates[r["gate"]] = summary
        else:
            model = models.setdefault(r["model"], ModelReport(model=r["model"], verdict="allow", score=100, gates={}))
            if r["gate"] == "overall":
                model.verdict, model.score = r["verdict"], r["score"]
            else:
                model.gates[r["gate"]] = summary
    for r in step_rows:
        step = steps.setdefault(
            str(r["step_id"]),
            StepReport(step_id=r["step_id"], item_key=r["item_key"] or "?", verdict="allow", findings=[]),
        )
        step.findings.extend(Finding.model_validate(f) for f in r["details"]["findings"])
        if RANK[r["verdict"]] > RANK[step.verdict]:
            step.verdict = r["verdict"]
    steps_total = int(step_rows[0]["total"]) if step_rows else 0
    assert overall is not None
    overall_row, overall_details = overall
    history = conn.execute(
        "SELECT generation, verdict, score, created_at AS evaluated_at, evaluated_by FROM public.plan_evaluations "
        "WHERE plan_id = %s AND scope = 'plan' AND gate = 'overall' ORDER BY generation",
        (plan_id,),
    ).fetchall()
    from lib.plans import overrides

    applied = overrides.for_plan(conn, plan_id)
    for item in applied:
        if item["action"] == "allow":
            for name, gate in gates.items():
                if item["scope"] == "plan" or item["gate"] == name:
                    gate.overrides.append(_jsonable(item))
    return GateReport(
        plan_id=plan_id,
        plan_status=plan["status"],
        generation=generation,
        evaluated_at=overall_row["created_at"],
        verdict=overall_row["verdict"],
        score=overall_row["score"],
        policy_version=overall_row["policy_version"],
        gates={name: gates[name] for name in GATES if name in gates},
        summary=overall_details.get("summary", {}),
        steps=list(steps.values()),  # in the page's order: worst first, then by key
        steps_total=steps_total,
        steps_next_offset=steps_offset + len(steps) if steps_offset + len(steps) < steps_total else None,
        models=sorted(models.values(), key=lambda m: m.model),
        overrides=[_jsonable(o) for o in applied],
        history=[GenerationSummary(**h) for h in history],
    )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, UUID) else v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }
