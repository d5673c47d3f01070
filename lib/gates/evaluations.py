"""Gate results in and out of plan_evaluations: record a generation, report it.

A generation holds, per gate, a plan row (plus an 'overall' row), a row per
step that has findings (steps without are allow), and a row per compared
model. Every gate run emits `gate.evaluated`; the verdict emits `plan.ready`
or `plan.blocked`; a blocked plan is queued for Slack. All in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from lib.data.sqltext import NULL, copy_json, copy_text, write_lines
from lib.gates.compliance import load_policy_set
from lib.gates.evaluate import PlanEvaluation
from lib.gates.models import GATES, RANK, GateResult, Verdict, worst
from lib.gates.models import score as gate_score
from lib.planner.models import Finding
from lib.trail import events, notify
from lib.web.problems import Problem, not_found

PLAN_FINDINGS_KEPT = 100  # per gate on the plan row; every step's own are on its rows


def load_settings(conn: Any) -> dict[str, Any]:
    rows = conn.execute("SELECT key, value FROM public.config WHERE key LIKE 'gates.%'").fetchall()
    return {r["key"]: r["value"] for r in rows}


def load_policies(conn: Any) -> Any:
    rows = conn.execute("SELECT name, source, enabled FROM public.policies").fetchall()
    return load_policy_set(rows)


def plan_status(evaluation: PlanEvaluation) -> str:
    """The status a plan that has not started takes from its verdict."""
    return "blocked" if evaluation.verdict == "block" else "ready"


def status_reason(evaluation: PlanEvaluation) -> str | None:
    if evaluation.verdict != "block":
        return None
    blockers = [f.message for g in evaluation.gates for f in g.findings if f.severity == "block"]
    more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
    return f"blocked: {blockers[0]}{more}" if blockers else "blocked"


def _details(findings: list[Finding], policy_version: str, summary: dict[str, Any] | None = None) -> str:
    """EvaluationDetails (lib.gates.models) as JSON in COPY's text format,
    serialized straight from its fields (the findings are already valid
    models): a plan can have a row per step, and building the model first
    doubled the cost of each."""
    kept = findings[:PLAN_FINDINGS_KEPT]
    details: dict[str, Any] = {
        "findings": kept,
        "findings_total": len(findings),
        "truncated": len(kept) < len(findings),
        "policy_version": policy_version,
        "summary": summary or {},
    }
    return copy_json(details)


def evaluation_lines(
    evaluation: PlanEvaluation, evaluated_by: str, model_evaluations: Iterable[tuple[str, PlanEvaluation]] = ()
) -> list[str]:
    """A generation's rows (RECORD_COLUMNS but the last two), as COPY text
    lines without the plan id, generation and newline that record() appends.
    Pure: the planner builds them while its steps are being copied."""
    version = evaluation.policy_version
    tail = f"\t{copy_text(version)}\t{copy_text(evaluated_by)}"
    rows: list[tuple[str, str | None, str | None, str, str, int, str]] = []
    for gate in evaluation.gates:
        summary = evaluation.resource_summary if gate.gate == "resource" else None
        rows.append(
            ("plan", None, None, gate.gate, gate.verdict, gate.score, _details(gate.findings, version, summary))
        )
    overall_findings = [f for g in evaluation.gates for f in g.findings if f.severity == "block"]
    rows.append(
        (
            "plan",
            None,
            None,
            "overall",
            evaluation.verdict,
            evaluation.score,
            _details(overall_findings, version, evaluation.resource_summary),
        )
    )
    for step in evaluation.steps:
        by_gate: dict[str, list[Finding]] = {}
        for finding in step.findings:
            by_gate.setdefault(finding.code.split(".")[0], []).append(finding)
        for gate_name, found in by_gate.items():
            verdict = worst([f.severity for f in found])  # type: ignore[misc]
            rows.append(("step", step.step_id, None, gate_name, verdict, gate_score(found), _details(found, version)))
    for model, model_eval in model_evaluations:
        for gate in model_eval.gates:
            rows.append(("model", None, model, gate.gate, gate.verdict, gate.score, _details(gate.findings, version)))
        rows.append(("model", None, model, "overall", model_eval.verdict, model_eval.score, _details([], version)))
    return [
        f"{scope}\t{step_id or NULL}\t{NULL if model is None else copy_text(model)}\t{gate}\t{verdict}\t{score}\t"
        f"{details}{tail}"
        for scope, step_id, model, gate, verdict, score, details in rows
    ]


RECORD_COLUMNS = (
    "scope, step_id, model, gate, verdict, score, details, policy_version, evaluated_by, plan_id, generation"
)


def record(
    conn: Any,
    plan_id: str,
    evaluation: PlanEvaluation,
    evaluated_by: str,
    model_evaluations: Iterable[tuple[str, PlanEvaluation]] = (),
    *,
    set_status: bool = False,
    lines: list[str] | None = None,
) -> int:
    """Write the next generation; returns its number. With `set_status`, the
    plan's status and status_reason follow the verdict (plan_status) in the
    same UPDATE. `lines` are evaluation_lines() of the same arguments, when
    the caller has built them already."""
    if lines is None:
        lines = evaluation_lines(evaluation, evaluated_by, model_evaluations)
    status_columns = ", status = %(status)s, status_reason = %(status_reason)s" if set_status else ""
    row = conn.execute(
        "UPDATE public.plans SET evaluation_generation = evaluation_generation + 1, verdict = %(verdict)s, "  # noqa: S608 - constants only
        f"score = %(score)s, policy_version = %(policy_version)s, updated_at = now(){status_columns} "
        "WHERE id = %(id)s RETURNING evaluation_generation",
        {
            "verdict": evaluation.verdict,
            "score": evaluation.score,
            "policy_version": evaluation.policy_version,
            "status": plan_status(evaluation),
            "status_reason": status_reason(evaluation),
            "id": plan_id,
        },
    ).fetchone()
    generation = int(row["evaluation_generation"])
    end = f"\t{plan_id}\t{generation}\n"
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY public.plan_evaluations ({RECORD_COLUMNS}) FROM STDIN") as copy,
    ):
        write_lines(copy, (line + end for line in lines))
    events.emit_many(
        conn,
        (
            (
                "gate.evaluated",
                plan_id,
                {
                    "generation": generation,
                    "gate": gate.gate,
                    "verdict": gate.verdict,
                    "score": gate.score,
                    "findings": len(gate.findings),
                },
            )
            for gate in evaluation.gates
        ),
    )
    return generation


def announce_verdict(
    conn: Any, plan_id: str, title: str, evaluation: PlanEvaluation, generation: int, totals: dict[str, Any]
) -> None:
    """plan.ready or plan.blocked, and Slack for a blocked plan."""
    kind = "plan.blocked" if evaluation.verdict == "block" else "plan.ready"
    top = evaluation.summary()
    events.emit(
        conn,
        kind,
        plan_id,
        {
            "verdict": evaluation.verdict,
            "score": evaluation.score,
            "generation": generation,
            "top_findings": top,
            "steps": totals.get("steps"),
            "stages": totals.get("stages"),
        },
    )
    if evaluation.verdict == "block":
        notify.enqueue_blocked_plan(conn, plan_id, title, evaluation.score, top)


# --------------------------------------------------------------- reading ----


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


def results_for_response(evaluation: PlanEvaluation) -> list[GateResult]:
    """The gates as the plan endpoint returns them (findings capped like the stored rows)."""
    return [
        GateResult(gate=g.gate, verdict=g.verdict, score=g.score, findings=g.findings[:PLAN_FINDINGS_KEPT])
        for g in evaluation.gates
    ]
