"""evaluate_gates: run every gate over a plan draft; the plan's verdict is the worst.

Pure: the caller passes in everything a gate may look at (tools, metrics,
settings from config, the clock's reading), so the same inputs always give the
same verdict and the gates are tested in microseconds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from lib.gates import structural
from lib.gates.models import RANK, GateResult, Verdict, worst
from lib.planner.models import PlanDraft, PlanOptions, Tool, ToolStats


class GateContext(BaseModel):
    tools: dict[str, Tool] = Field(default_factory=dict)
    stats: dict[str, ToolStats] = Field(default_factory=dict)
    options: PlanOptions = Field(default_factory=PlanOptions)
    settings: dict[str, Any] = Field(default_factory=dict, description="gate settings from the config table")
    now: datetime = Field(default_factory=lambda: datetime.now(UTC))


class StepVerdict(BaseModel):
    step_id: str
    item_key: str
    verdict: Verdict
    findings: int


class PlanEvaluation(BaseModel):
    verdict: Verdict
    score: int
    gates: list[GateResult]
    steps: list[StepVerdict] = Field(description="steps with at least one finding; the rest are allow")

    def summary(self, limit: int = 3) -> list[str]:
        top = sorted(
            (f for g in self.gates for f in g.findings if f.severity != "info"),
            key=lambda f: -RANK[f.severity if f.severity != "info" else "allow"],
        )
        return [f.message for f in top[:limit]]


def evaluate_gates(draft: PlanDraft, ctx: GateContext) -> PlanEvaluation:
    results = [
        structural.evaluate(draft),
    ]
    return combine(draft, results)


def combine(draft: PlanDraft, results: list[GateResult]) -> PlanEvaluation:
    per_step: dict[str, list[str]] = defaultdict(list)
    for gate in results:
        for finding in gate.findings:
            if finding.step_id and finding.severity != "info":
                per_step[finding.step_id].append(finding.severity)
    keys = {s.id: s.item_key for s in draft.steps}
    steps = [
        StepVerdict(step_id=sid, item_key=keys.get(sid, "?"), verdict=worst(sev), findings=len(sev))  # type: ignore[arg-type]
        for sid, sev in per_step.items()
    ]
    return PlanEvaluation(
        verdict=worst([g.verdict for g in results]),
        score=min((g.score for g in results), default=100),
        gates=results,
        steps=steps,
    )
