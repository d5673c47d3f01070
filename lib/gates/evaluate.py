"""evaluate_gates: run the four gates over a plan draft; the plan's verdict is the worst.

Pure: the caller passes in everything a gate may look at (tools, metrics,
settings from config, policies, the clock's reading), so the same inputs
always give the same verdict and the gates are tested in microseconds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lib.gates import compliance, resource, risk, structural
from lib.gates.models import RANK, GateResult, Verdict, worst
from lib.planner.models import Finding, PlanDraft, PlanOptions, Tool, ToolStats

DEFAULT_SETTINGS: dict[str, Any] = {
    "gates.resource.hard_limit_usd": 250,
    "gates.risk.blast_radius_warn": 10,
    "gates.risk.blast_radius_block": 100,
    "gates.structural.max_depth": 200,
    "gates.structural.max_width": 500,
    "gates.compliance.freeze_windows": [],
    "gates.resource.supabase_prices": {},
    "gates.resource.measured_usage": None,
    "gates.resource.retention_months": 12,
}


class GateContext(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    tools: dict[str, Tool] = Field(default_factory=dict)
    tool_errors: dict[str, str] = Field(default_factory=dict, description="tool rows refused, and why")
    stats: dict[str, ToolStats] = Field(default_factory=dict)
    options: PlanOptions = Field(default_factory=PlanOptions)
    settings: dict[str, Any] = Field(default_factory=dict, description="gates.* keys from the config table")
    now: datetime = Field(default_factory=lambda: datetime.now(UTC))
    policies: Any = None  # compliance.PolicySet; the shipped files when None
    model_costs: list[Any] = Field(default_factory=list)  # resource.ModelCost per compared model

    def setting(self, key: str) -> Any:
        return self.settings.get(key, DEFAULT_SETTINGS[key])


class StepVerdict(BaseModel):
    step_id: str
    item_key: str
    verdict: Verdict
    findings: list[Finding]


class PlanEvaluation(BaseModel):
    verdict: Verdict
    score: int
    gates: list[GateResult]
    steps: list[StepVerdict] = Field(description="steps with at least one finding; the rest are allow")
    policy_version: str
    resource_summary: dict[str, Any] = Field(default_factory=dict)

    def summary(self, limit: int = 3) -> list[str]:
        ranked = sorted(
            (f for g in self.gates for f in g.findings if f.severity != "info"),
            key=lambda f: -RANK[f.severity],
        )
        return [f.message for f in ranked[:limit]]


def evaluate_gates(draft: PlanDraft, ctx: GateContext) -> PlanEvaluation:
    policies = ctx.policies or compliance.load_policy_set()
    prices = ctx.setting("gates.resource.supabase_prices") or {}
    resource_gate, resource_summary = resource.assess(
        draft,
        ctx.options.budget_usd,
        _float_or_none(ctx.setting("gates.resource.hard_limit_usd")),
        prices,
        ctx.model_costs,
        resource.Usage(
            measured=ctx.setting("gates.resource.measured_usage"),
            retention_months=float(ctx.setting("gates.resource.retention_months") or 12),
        ),
    )
    results = [
        structural.evaluate(
            draft,
            structural.StructuralLimits(
                max_depth=int(ctx.setting("gates.structural.max_depth")),
                max_width=int(ctx.setting("gates.structural.max_width")),
            ),
            ctx.tool_errors,
        ),
        risk.evaluate(
            draft,
            ctx.tools,
            risk.RiskSettings(
                blast_radius_warn=int(ctx.setting("gates.risk.blast_radius_warn")),
                blast_radius_block=int(ctx.setting("gates.risk.blast_radius_block")),
            ),
        ),
        compliance.evaluate(draft, ctx.tools, ctx.options, ctx.settings, ctx.now, policies),
        resource_gate,
    ]
    evaluation = combine(draft, results, policies.version)
    evaluation.resource_summary = resource_summary
    return evaluation


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def combine(draft: PlanDraft, results: list[GateResult], policy_version: str) -> PlanEvaluation:
    per_step: dict[str, list[Finding]] = defaultdict(list)
    for gate in results:
        for finding in gate.findings:
            if finding.step_id and finding.severity != "info":
                per_step[finding.step_id].append(finding)
    keys = {s.id: s.item_key for s in draft.steps}
    steps = [
        StepVerdict(
            step_id=sid,
            item_key=keys.get(sid, "?"),
            verdict=worst([f.severity for f in found]),  # type: ignore[misc]
            findings=found,
        )
        for sid, found in per_step.items()
    ]
    return PlanEvaluation(
        verdict=worst([g.verdict for g in results]),
        score=min((g.score for g in results), default=100),
        gates=results,
        steps=steps,
        policy_version=policy_version,
    )
