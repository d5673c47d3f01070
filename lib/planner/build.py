"""build_plan: backlog in, staged plan draft out. Pure: no database, no clock.

1. select the items (given ids, or every open item) and pull in open dependencies
2. build the dependency DAG (networkx); report cycles, missing and closed dependencies
3. stage it: topological generations, in priority order, at most max_parallel per stage
4. per step: estimate (Phase 2 metrics), idempotency token, rollback instructions
5. totals: critical path, stage makespan, known cost and how much is unknown
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from lib.planner import estimates, graph, rollback, schedule, tokens
from lib.planner.models import (
    BacklogItem,
    GraphFacts,
    PlanDraft,
    PlanOptions,
    PlanStep,
    Tool,
    ToolStats,
    Totals,
)


def random_ids(count: int) -> list[str]:
    """Fresh UUIDv4s for the steps, from one read of the OS's randomness
    (formatted by hand: uuid.UUID costs more than the plan's graph work)."""
    raw = os.urandom(16 * count).hex()
    out = []
    for i in range(0, 32 * count, 32):
        h = raw[i : i + 32]
        out.append(f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}")
    return out


# RFC 9562: the two top bits of the clock_seq byte are 10 (variant 1).
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def build_plan(
    backlog: Mapping[str, BacklogItem],
    tools: Mapping[str, Tool],
    stats: Mapping[str, ToolStats],
    options: PlanOptions,
    selected_ids: Sequence[str] | None = None,
    new_ids: Callable[[int], list[str]] = random_ids,
) -> PlanDraft:
    dg = graph.build(backlog, selected_ids)
    items = dg.items
    lines = {item_id: tokens.item_line(item) for item_id, item in items.items()}
    fingerprint = tokens.fingerprint(items.values(), tools, options, selected_ids, lines)

    pred, succ = dg.adjacency()
    order = [node for generation in dg.generations for node in generation]
    est = {
        item_id: estimates.estimate(item, tools.get(item.tool_id), stats.get(item.tool_id))
        for item_id, item in items.items()
    }
    duration = {item_id: e.duration_ms for item_id, e in est.items()}
    level = schedule.bottom_levels(succ, order, duration)
    stage_of = schedule.assign_stages(
        pred,
        succ,
        options.max_parallel,
        rank=lambda i: (items[i].priority, -level[i], items[i].pack_id, items[i].tool_id, items[i].key),
    )

    step_id = dict(zip(items, new_ids(len(items)), strict=True))
    steps: dict[str, PlanStep] = {}
    facts = GraphFacts(
        cycles=dg.cycles,
        dependency_issues=dg.issues,
        pulled_in=sorted(dg.pulled_in),
        unknown_tools=sorted({i.tool_id for i in items.values() if i.tool_id not in tools}),
    )
    for item_id, item in items.items():
        tool = tools.get(item.tool_id)
        token = tokens.step_token(fingerprint, lines[item_id])
        step_est = est[item_id]
        undo, gap = rollback.instructions(item, tool, token)
        sid = step_id[item_id]
        if gap is not None:
            facts.rollback_gaps.append(sid)
        policy = tool.approval_policy if tool is not None else None
        steps[item_id] = PlanStep(
            id=sid,
            item_id=item.id,
            item_key=item.key,
            title=item.title,
            pack_id=item.pack_id,
            tool_id=item.tool_id,
            stage=stage_of[item_id],
            position=0,
            depends_on=[step_id[d] for d in item.depends_on if d in items],
            idempotency_token=token,
            rollback=undo if gap is None else {"action": "missing", "reason": gap},
            inputs=item.inputs,
            requires_approval=policy is not None,
            est_duration_ms=step_est.duration_ms,
            duration_source=step_est.duration_source,
            est_cost_usd=step_est.cost_usd,
            cost_note=step_est.cost_note,
            environment=item.environment,
            tags=item.tags,
            priority=item.priority,
        )

    stages = _order_stages(steps.values())
    path_ms, path = schedule.critical_path(pred, order, duration)
    known = [s.est_cost_usd for s in steps.values() if s.est_cost_usd is not None]
    facts.depth = len(stages)
    facts.max_width = max((len(s) for s in stages), default=0)
    by_id = {s.id: s for s in steps.values()}
    totals = Totals(
        steps=len(steps),
        stages=len(stages),
        critical_path_ms=path_ms,
        critical_path=[step_id[i] for i in path],
        est_duration_ms=sum(max(by_id[sid].est_duration_ms for sid in stage) for stage in stages),
        est_cost_usd=round(sum(known), 6),
        unknown_cost_steps=len(steps) - len(known),
        cost_complete=len(known) == len(steps),
    )
    ordered = [by_id[sid] for stage in stages for sid in stage]
    return PlanDraft(
        fingerprint=fingerprint,
        steps=ordered,
        stages=stages,
        totals=totals,
        graph=facts,
        item_ids=sorted(items),
        pack_ids=sorted({i.pack_id for i in items.values()}),
    )


def _order_stages(steps: Iterable[PlanStep]) -> list[list[str]]:
    """Within a stage, steps of one pack and tool sit together (affinity);
    groups go by their most urgent member, members by priority."""
    steps = list(steps)
    group_rank: dict[tuple[int, str, str], int] = {}
    for s in steps:
        group = (s.stage, s.pack_id, s.tool_id)
        if s.priority < group_rank.get(group, 6):
            group_rank[group] = s.priority
    steps.sort(
        key=lambda s: (
            s.stage,
            group_rank[(s.stage, s.pack_id, s.tool_id)],
            s.pack_id,
            s.tool_id,
            s.priority,
            s.item_key,
        )
    )
    ordered: list[list[str]] = []
    current = None
    for s in steps:
        if s.stage != current:
            current = s.stage
            ordered.append([])
        s.stage = len(ordered) - 1
        s.position = len(ordered[-1])
        ordered[-1].append(s.id)
    return ordered
