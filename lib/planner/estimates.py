"""How long and how much: per-step estimates from the Phase 2 metrics.

Duration: the tool's median over its recorded runs, else the item's own
estimate, else the tool's default, else a stated default. Cost: the tool's
average recorded cost, else its cost model, else unknown: recorded as None
with the reason, never as $0.
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.planner.models import BacklogItem, Tool, ToolStats

DEFAULT_STEP_MS = 60_000


@dataclass(frozen=True)
class Estimate:
    duration_ms: int
    duration_source: str
    cost_usd: float | None
    cost_note: str | None


def estimate(item: BacklogItem, tool: Tool | None, stats: ToolStats | None) -> Estimate:
    if stats is not None and stats.samples > 0 and stats.p50_ms is not None:
        duration = int(stats.p50_ms)
        source = f"tool_metrics p50 of {stats.samples} runs"
    elif item.estimate_minutes is not None:
        duration = int(item.estimate_minutes * 60_000)
        source = "item estimate"
    elif tool is not None and tool.default_duration_ms is not None:
        duration = tool.default_duration_ms
        source = "tool default"
    else:
        duration = DEFAULT_STEP_MS
        source = f"stated default ({DEFAULT_STEP_MS // 1000} s): no metrics, estimate or tool default"

    known_runs = (stats.samples - stats.unknown_cost_samples) if stats is not None else 0
    if stats is not None and known_runs > 0 and stats.avg_cost_usd is not None:
        return Estimate(duration, source, round(stats.avg_cost_usd, 6), f"tool_metrics average of {known_runs} runs")
    if tool is not None and tool.cost_model is not None:
        cost = tool.cost_model.usd_per_call + tool.cost_model.usd_per_minute * duration / 60_000
        return Estimate(duration, source, round(cost, 6), "tool cost model")
    reason = f"no price known for tool {item.tool_id}" if tool is not None else f"unknown tool {item.tool_id}"
    return Estimate(duration, source, None, reason)
