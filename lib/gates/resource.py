"""The resource gate: what the plan will cost and how long it will take.

Per step, the planner's estimates (from the Phase 2 tool_metrics, else the
cost model, else unknown). Per plan: the known costs, plus what the model
comparison cost, plus the plan's own Supabase footprint (rows written,
snapshot bytes, function invocations) priced from config. An unknown price
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

SNAPSHOTS_PER_PLAN = 4  # created, evaluated, approved, finished
SNAPSHOT_BYTES_PER_STEP = 700


@dataclass(frozen=True)
class ModelCost:
    model: str
    cost_usd: float | None
    note: str | None = None


def supabase_footprint(draft: PlanDraft, prices: Mapping[str, Any]) -> dict[str, Any]:
    """Rows the plan writes (plan, steps, events, audit, approvals), snapshot
    bytes, and function invocations (execute ticks, approvals), with a price."""
    steps = len(draft.steps)
    approvals = sum(1 for s in draft.steps if s.requires_approval)
    rows = 1 + steps + (2 * steps + 6) + (2 * steps + 4) + 3 * approvals + 8
    snapshot_bytes = SNAPSHOTS_PER_PLAN * (1_000 + SNAPSHOT_BYTES_PER_STEP * steps)
    invocations = 2 + len(draft.stages) + 2 * approvals
    bytes_per_row = float(prices.get("bytes_per_row", 400))
    gb = 1024**3
    cost = (
        rows * bytes_per_row / gb * float(prices.get("usd_per_gb_month_database", 0.125))
        + snapshot_bytes / gb * float(prices.get("usd_per_gb_month_storage", 0.021))
        + invocations / 1e6 * float(prices.get("usd_per_million_invocations", 2.0))
    )
    return {
        "rows_written": rows,
        "snapshot_bytes": snapshot_bytes,
        "function_invocations": invocations,
        "cost_usd": round(cost, 6),
        "price_source": prices.get("source"),
        "prices_as_of": prices.get("as_of"),
    }


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


def estimate(draft: PlanDraft, supabase_prices: Mapping[str, Any], models: list[ModelCost]) -> Estimate:
    steps_cost = draft.totals.est_cost_usd
    models_cost = sum(m.cost_usd for m in models if m.cost_usd is not None)
    footprint = supabase_footprint(draft, supabase_prices)
    total = round(steps_cost + models_cost + footprint["cost_usd"], 6)
    return Estimate(steps_cost, models_cost, footprint, total)


def evaluate(
    draft: PlanDraft,
    budget_usd: float | None,
    hard_limit_usd: float | None,
    supabase_prices: Mapping[str, Any],
    model_costs: Iterable[ModelCost] = (),
) -> GateResult:
    return assess(draft, budget_usd, hard_limit_usd, supabase_prices, model_costs)[0]


def assess(
    draft: PlanDraft,
    budget_usd: float | None,
    hard_limit_usd: float | None,
    supabase_prices: Mapping[str, Any],
    model_costs: Iterable[ModelCost] = (),
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
    costs = estimate(draft, supabase_prices, models)
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
                f"Supabase ${footprint['cost_usd']:,.6f}); critical path "
                f"{draft.totals.critical_path_ms / 60_000:.1f} min, stages "
                f"{draft.totals.est_duration_ms / 60_000:.1f} min"
                + ("" if not unknown else f"; {sum(len(v) for v in unknown.values())} step(s) unpriced")
            ),
            remediation="nothing to do: this is the estimate the other findings refer to",
        )
    )
    return gate, costs.summary(draft)


def summary(draft: PlanDraft, supabase_prices: Mapping[str, Any], model_costs: Iterable[ModelCost] = ()) -> dict:
    return estimate(draft, supabase_prices, list(model_costs)).summary(draft)
