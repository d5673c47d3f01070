"""Gate results in and out of plan_evaluations: record a generation, report it.

A generation holds, per gate, a plan row (plus an 'overall' row), a row per
step that has findings (steps without are allow), and a row per compared
model. Every gate run emits `gate.evaluated`; the verdict emits `plan.ready`
or `plan.blocked`; a blocked plan is queued for Slack. All in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json

from lib.data import db
from lib.data.sqltext import NULL, copy_json, copy_text, write_lines
from lib.gates.compliance import load_policy_set
from lib.gates.evaluate import PlanEvaluation
from lib.gates.models import GateResult, worst
from lib.gates.models import score as gate_score
from lib.planner.models import Finding
from lib.trail import events, notify

PLAN_FINDINGS_KEPT = 100  # per gate on the plan row; every step's own are on its rows


SETTINGS_ROWS = "SELECT key, value FROM public.config WHERE key LIKE 'gates.%'"


POLICY_ROWS = "SELECT name, source, enabled FROM public.policies"


def load_settings(conn: Any) -> dict[str, Any]:
    return settings_of(conn.execute(SETTINGS_ROWS).fetchall())


def settings_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["key"]: r["value"] for r in rows}


def load_policies(conn: Any) -> Any:
    return load_policy_set(conn.execute(POLICY_ROWS).fetchall())


def plan_status(evaluation: PlanEvaluation) -> str:
    """The status a plan that has not started takes from its verdict."""
    return "blocked" if evaluation.verdict == "block" else "ready"


def status_reason(evaluation: PlanEvaluation) -> str | None:
    if evaluation.verdict != "block":
        return None
    blockers = [f.message for g in evaluation.gates for f in g.findings if f.severity == "block"]
    more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
    return f"blocked: {blockers[0]}{more}" if blockers else "blocked"


def _details(findings: list[Finding], policy_version: str, summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """EvaluationDetails (lib.gates.models) straight from its fields (the
    findings are already valid models): a plan can have a row per step, and
    building the model first doubled the cost of each."""
    kept = findings[:PLAN_FINDINGS_KEPT]
    return {
        "findings": kept,
        "findings_total": len(findings),
        "truncated": len(kept) < len(findings),
        "policy_version": policy_version,
        "summary": summary or {},
    }


Row = tuple[str, "str | None", "str | None", str, str, int, dict[str, Any]]


def evaluation_lines(
    evaluation: PlanEvaluation, evaluated_by: str, model_evaluations: Iterable[tuple[str, PlanEvaluation]] = ()
) -> list[str]:
    """A generation's rows (RECORD_COLUMNS but the last two), as COPY text
    lines without the plan id, generation and newline that record() appends.
    Pure: the planner builds them while its steps are being copied."""
    tail = f"\t{copy_text(evaluation.policy_version)}\t{copy_text(evaluated_by)}"
    return [
        f"{scope}\t{step_id or NULL}\t{NULL if model is None else copy_text(model)}\t{gate}\t{verdict}\t{score}\t"
        f"{copy_json(details)}{tail}"
        for scope, step_id, model, gate, verdict, score, details in evaluation_rows(evaluation, model_evaluations)
    ]


def evaluation_rows(
    evaluation: PlanEvaluation, model_evaluations: Iterable[tuple[str, PlanEvaluation]] = ()
) -> list[Row]:
    """A generation's rows: (scope, step id, model, gate, verdict, score, details)."""
    version = evaluation.policy_version
    rows: list[Row] = []
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
    return rows


RECORD_COLUMNS = (
    "scope, step_id, model, gate, verdict, score, details, policy_version, evaluated_by, plan_id, generation"
)


# The rows as arrays [scope, step_id, model, gate, verdict, score, details,
# policy_version, evaluated_by] in one JSON document (where COPY cannot go).
INSERT_ROWS = f"""
INSERT INTO public.plan_evaluations ({RECORD_COLUMNS})
SELECT r->>0, (r->>1)::uuid, r->>2, r->>3, r->>4, (r->>5)::int, r->6, r->>7, r->>8, %s, %s
  FROM jsonb_array_elements(%s::jsonb) AS r
"""  # noqa: S608 - RECORD_COLUMNS is a constant


def record(
    conn: Any,
    plan_id: str,
    evaluation: PlanEvaluation,
    evaluated_by: str,
    model_evaluations: Iterable[tuple[str, PlanEvaluation]] = (),
    *,
    set_status: bool = False,
    lines: list[str] | None = None,
    generation: int | None = None,
) -> int:
    """Write the next generation; returns its number. With `set_status`, the
    plan's status and status_reason follow the verdict (plan_status) in the
    same UPDATE. `lines` are evaluation_lines() of the same arguments, when
    the caller has built them already. `generation`: the number the caller
    knows it will be (a new plan's first), so nothing is read back; then, in
    a pipeline, every statement here travels with the caller's others."""
    status_columns = ", status = %(status)s, status_reason = %(status_reason)s" if set_status else ""
    update = (
        "UPDATE public.plans SET evaluation_generation = evaluation_generation + 1, verdict = %(verdict)s, "  # noqa: S608 - constants only
        f"score = %(score)s, policy_version = %(policy_version)s, updated_at = now(){status_columns} WHERE id = %(id)s"
    )
    params = {
        "verdict": evaluation.verdict,
        "score": evaluation.score,
        "policy_version": evaluation.policy_version,
        "status": plan_status(evaluation),
        "status_reason": status_reason(evaluation),
        "id": plan_id,
    }
    if generation is None:
        generation = int(
            conn.execute(update + " RETURNING evaluation_generation", params).fetchone()["evaluation_generation"]
        )
    else:
        conn.execute(update, params)
    if db.in_pipeline(conn):  # COPY cannot run in a pipeline: the rows go as one JSON recordset
        rows = evaluation_rows(evaluation, model_evaluations)
        document = to_json([[*r, evaluation.policy_version, evaluated_by] for r in rows]).decode()
        conn.execute(INSERT_ROWS, (plan_id, generation, document))
    else:
        if lines is None:
            lines = evaluation_lines(evaluation, evaluated_by, model_evaluations)
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
    """plan.ready or plan.blocked, and Slack for a blocked or warned plan."""
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
    notify.plan_verdict(conn, plan_id, title, evaluation.verdict, evaluation.score, top)


def results_for_response(evaluation: PlanEvaluation) -> list[GateResult]:
    """The gates as the plan endpoint returns them (findings capped like the stored rows)."""
    return [
        GateResult(gate=g.gate, verdict=g.verdict, score=g.score, findings=g.findings[:PLAN_FINDINGS_KEPT])
        for g in evaluation.gates
    ]
