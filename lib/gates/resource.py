"""The resource gate: what the plan will cost and how long it will take.

Per step, the planner's estimates (from the Phase 2 tool_metrics, else the
cost model, else unknown). Per plan: the known costs, plus what the model
comparison cost, plus the plan's own Supabase footprint (database bytes,
stored bytes, function invocations) from figures the tick measured on this
project (lib/ops/usage.py), priced from config over a retention period. An unknown price
is never counted as $0: the gate warns and names the tools. Above the plan's
`budget_usd` it warns; above `gates.resource.hard_limit_usd` it blocks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lib.gates.models import GateResult, result
from lib.planner.models import Finding, PlanDraft

GB = 1024**3


@dataclass(frozen=True)
class ModelCost:
    model: str
    cost_usd: float | None
    note: str | None = None


def supabase_footprint(
    draft: PlanDraft, prices: Mapping[str, Any], measured: Mapping[str, Any] | None, retention_months: float
) -> dict[str, Any]:
    """The plan's database bytes, stored bytes and function invocations from
    the per-step figures the tick measured (lib/ops/usage.py), priced from
    config: bytes per GB-month over the retention period, invocations per
    million. A figure not measured stays unknown and is left out of the cost
    (and named), never counted as $0; with nothing measured the cost is None."""
    steps = len(draft.steps)
    figures = measured or {}

    def scaled(name: str) -> float | None:
        per_step = figures.get(name)
        return None if per_step is None else per_step * steps

    database_bytes = scaled("database_bytes_per_step")
    storage_bytes = scaled("storage_bytes_per_step")
    invocations = scaled("invocations_per_step")
    parts = {
        "database_bytes": None
        if database_bytes is None
        else database_bytes / GB * float(prices.get("usd_per_gb_month_database", 0.125)) * retention_months,
        "storage_bytes": None
        if storage_bytes is None
        else storage_bytes / GB * float(prices.get("usd_per_gb_month_storage", 0.021)) * retention_months,
        "function_invocations": None
        if invocations is None
        else invocations / 1e6 * float(prices.get("usd_per_million_invocations", 2.0)),
    }
    known = [v for v in parts.values() if v is not None]
    return {
        "database_bytes": None if database_bytes is None else round(database_bytes),
        "storage_bytes": None if storage_bytes is None else round(storage_bytes),
        "function_invocations": None if invocations is None else round(invocations, 1),
        "unknown": [name for name, v in parts.items() if v is None],
        "cost_usd": round(sum(known), 6) if known else None,
        "retention_months": retention_months,
        "measured_at": figures.get("measured_at"),
        "plans_sampled": figures.get("plans_sampled"),
        "storage_source": figures.get("storage_source"),
        "price_source": prices.get("source"),
        "prices_as_of": prices.get("as_of"),
    }


def footprint_note(footprint: Mapping[str, Any]) -> str:
    """What the footprint figure rests on, for the gate's estimate finding."""
    if footprint["cost_usd"] is None:
        return "Supabase unknown (not measured yet: the tick measures once a plan has finished)"
    note = (
        f"Supabase ${footprint['cost_usd']:,.6f}, measured {footprint['measured_at']} from "
        f"{footprint['plans_sampled']} finished plan(s), stored {footprint['retention_months']:g} months"
    )
    if footprint["unknown"]:
        note += f"; unknown: {', '.join(footprint['unknown'])}"
    return note


@dataclass(frozen=True)
class Estimate:
    """The plan's costs, worked out once for the gate and its summary."""

    steps_cost: float
    models_cost: float
    footprint: dict[str, Any]
    total: float

    def summary(self, draft: PlanDraft) -> dict[str, Any]:
        return {
            "steps_cost_usd": self.steps_cost,
            "models_cost_usd": round(self.models_cost, 6),
            "supabase": self.footprint,
            "total_usd": self.total,
            "unknown_cost_steps": draft.totals.unknown_cost_steps,
            "critical_path_ms": draft.totals.critical_path_ms,
            "est_duration_ms": draft.totals.est_duration_ms,
        }


@dataclass(frozen=True)
class Usage:
    """The measured figures and how long data is kept, from config."""

    measured: Mapping[str, Any] | None = None
    retention_months: float = 12.0


def estimate(
    draft: PlanDraft, supabase_prices: Mapping[str, Any], models: list[ModelCost], usage: Usage = Usage()
) -> Estimate:
    steps_cost = draft.totals.est_cost_usd
    models_cost = sum(m.cost_usd for m in models if m.cost_usd is not None)
    footprint = supabase_footprint(draft, supabase_prices, usage.measured, usage.retention_months)
    total = round(steps_cost + models_cost + (footprint["cost_usd"] or 0.0), 6)
    return Estimate(steps_cost, models_cost, footprint, total)


def evaluate(
    draft: PlanDraft,
    budget_usd: float | None,
    hard_limit_usd: float | None,
    supabase_prices: Mapping[str, Any],
    model_costs: Iterable[ModelCost] = (),
    usage: Usage = Usage(),
) -> GateResult:
    return assess(draft, budget_usd, hard_limit_usd, supabase_prices, model_costs, usage)[0]


def assess(
    draft: PlanDraft,
    budget_usd: float | None,
    hard_limit_usd: float | None,
    supabase_prices: Mapping[str, Any],
    model_costs: Iterable[ModelCost] = (),
    usage: Usage = Usage(),
) -> tuple[GateResult, dict[str, Any]]:
    """The gate and the plan's resource summary, from one estimate."""
    findings: list[Finding] = []
    unknown: dict[str, list[str]] = defaultdict(list)
    defaulted: dict[str, int] = defaultdict(int)
    for step in draft.steps:
        if step.est_cost_usd is None:
            unknown[step.tool_id].append(step.id)
        if step.duration_source.startswith("stated default"):
            defaulted[step.tool_id] += 1

    models = list(model_costs)
    costs = estimate(draft, supabase_prices, models, usage)
    steps_cost, models_cost, footprint, total = costs.steps_cost, costs.models_cost, costs.footprint, costs.total

    for tool_id, step_ids in sorted(unknown.items()):
        findings.append(
            Finding(
                code="resource.unknown_price",
                severity="warn",
                step_id=step_ids[0],
                message=f"{len(step_ids)} step(s) of {tool_id} have no known price; the total leaves them out",
                remediation=f"record runs of {tool_id} in tool_metrics, or give the tool a cost_model",
            )
        )
    for model in models:
        if model.cost_usd is None:
            findings.append(
                Finding(
                    code="resource.unknown_model_price",
                    severity="warn",
                    message=f"the comparison call to {model.model} has no known price ({model.note or 'no price'})",
                    remediation="add the model to the price table, or compare with priced models",
                )
            )
    for tool_id, count in sorted(defaulted.items()):
        findings.append(
            Finding(
                code="resource.default_duration",
                severity="info",
                message=f"{count} step(s) of {tool_id} use the stated default duration "
                "(no metrics, estimate or tool default)",
                remediation=f"record runs of {tool_id}, or set default_duration_ms on the tool",
            )
        )
    if hard_limit_usd is not None and total > hard_limit_usd:
        findings.append(
            Finding(
                code="resource.over_hard_limit",
                severity="block",
                message=f"estimated cost ${total:,.2f} is above the hard limit of ${hard_limit_usd:,.2f}",
                remediation="split the plan, or ask an admin to raise gates.resource.hard_limit_usd",
            )
        )
    elif budget_usd is not None and total > budget_usd:
        findings.append(
            Finding(
                code="resource.over_budget",
                severity="warn",
                message=f"estimated cost ${total:,.2f} is above the plan's budget of ${budget_usd:,.2f}",
                remediation="raise options.budget_usd, or plan fewer items",
            )
        )
    gate = result("resource", findings)
    gate.findings.append(
        Finding(
            code="resource.estimate",
            severity="info",
            message=(
                f"estimated ${total:,.4f} (steps ${steps_cost:,.4f}, model comparison ${models_cost:,.4f}, "
                f"{footprint_note(footprint)}); critical path "
                f"{draft.totals.critical_path_ms / 60_000:.1f} min, stages "
                f"{draft.totals.est_duration_ms / 60_000:.1f} min"
                + ("" if not unknown else f"; {sum(len(v) for v in unknown.values())} step(s) unpriced")
            ),
            remediation="nothing to do: this is the estimate the other findings refer to",
        )
    )
    return gate, costs.summary(draft)


def summary(
    draft: PlanDraft,
    supabase_prices: Mapping[str, Any],
    model_costs: Iterable[ModelCost] = (),
    usage: Usage = Usage(),
) -> dict:
    return estimate(draft, supabase_prices, list(model_costs), usage).summary(draft)
