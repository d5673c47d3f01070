"""build_plan: backlog in, staged plan draft out. Pure: no database, and the
same draft for the same input but for the step ids, which come from `new_ids`
(time-ordered and random by default; tests pass their own).

1. select the items (given ids, or every open item) and pull in open dependencies
2. build the dependency DAG (networkx); report cycles, missing and closed dependencies
3. stage it: topological generations, in priority order, at most max_parallel per stage
4. per step: estimate (Phase 2 metrics), idempotency token, rollback instructions
5. totals: critical path, stage makespan, known cost and how much is unknown
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence

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


def time_ordered_ids(count: int) -> list[str]:
    """Fresh UUIDv7s for the steps (RFC 9562), ascending in the order given.

    The steps are written in that order, so each new key goes at the right
    edge of plan_steps' primary key index: with random UUIDv4s every insert
    landed on a random leaf, and a plan's COPY grew slower as the table grew
    (100,000 steps: 1.5 s into an empty table, 1.9-2.0 s once it held a few
    plans). Layout (method 1, a counter): 48 bits of Unix milliseconds, the
    version, a 32-bit counter split around the variant (whose two free bits
    stay 0), then 40 random bits, so two plans started in the same millisecond
    still differ. Formatted
    by hand from one read of the OS's randomness: uuid.UUID costs more than
    the plan's graph work."""
    millis = f"{int(time.time() * 1000) & (1 << 48) - 1:012x}"
    prefix = f"{millis[:8]}-{millis[8:]}-7"
    raw = os.urandom(5 * count).hex()
    out: list[str] = []
    for block in range(0, count, 256):  # the counter's top 24 bits change once a block
        head = f"{prefix}{block >> 20 & 0xFFF:03x}-8{block >> 8 & 0xFFF:03x}-"
        numbers = range(block, min(block + 256, count))  # the last block may be short
        out.extend(head + low + raw[10 * i : 10 * i + 10] for low, i in zip(_LOW_BYTE, numbers, strict=False))
    return out


_LOW_BYTE = [f"{b:02x}" for b in range(256)]


def build_plan(
    backlog: Mapping[str, BacklogItem],
    tools: Mapping[str, Tool],
    stats: Mapping[str, ToolStats],
    options: PlanOptions,
    selected_ids: Sequence[str] | None = None,
    new_ids: Callable[[int], list[str]] = time_ordered_ids,
) -> PlanDraft:
    dg = graph.build(backlog, selected_ids)
    items = dg.items
    lines = {item_id: tokens.item_line(item) for item_id, item in items.items()}
    fingerprint = tokens.fingerprint(items.values(), tools, options, selected_ids, lines)

    pred, succ = dg.adjacency()
    order = [node for generation in dg.generations for node in generation]
    est = _estimates(items, tools, stats)
    duration = {item_id: e.duration_ms for item_id, e in est.items()}
    level = schedule.bottom_levels(succ, order, duration)
    rank = {i: (item.priority, -level[i], item.pack_id, item.tool_id, item.key) for i, item in items.items()}
    stage_of = schedule.assign_stages(pred, succ, options.max_parallel, rank=rank.__getitem__)
    stages_of_items = _order_stages(items, stage_of)

    # ids ascend in the order the steps are written (time_ordered_ids)
    step_id = dict(zip((i for members in stages_of_items for i in members), new_ids(len(items)), strict=True))
    facts = GraphFacts(
        cycles=dg.cycles,
        dependency_issues=dg.issues,
        pulled_in=sorted(dg.pulled_in),
        unknown_tools=sorted({i.tool_id for i in items.values() if i.tool_id not in tools}),
    )
    gaps: set[str] = set()
    steps = _steps(items, tools, stages_of_items, step_id, lines, est, tokens.step_tokens(fingerprint), gaps)
    facts.rollback_gaps = [step_id[i] for i in items if i in gaps]  # in item order, as they always were
    known = [e.cost_usd for e in est.values() if e.cost_usd is not None]  # summed in item order
    stages = [[step_id[i] for i in members] for members in stages_of_items]

    path_ms, path = schedule.critical_path(pred, order, duration)
    facts.depth = len(stages)
    facts.max_width = max((len(s) for s in stages), default=0)
    totals = Totals(
        steps=len(steps),
        stages=len(stages),
        critical_path_ms=path_ms,
        critical_path=[step_id[i] for i in path],
        est_duration_ms=sum(max(duration[i] for i in members) for members in stages_of_items),
        est_cost_usd=round(sum(known), 6),
        unknown_cost_steps=len(steps) - len(known),
        cost_complete=len(known) == len(steps),
    )
    return PlanDraft(
        fingerprint=fingerprint,
        steps=steps,
        stages=stages,
        totals=totals,
        graph=facts,
        item_ids=sorted(items),
        pack_ids=sorted({i.pack_id for i in items.values()}),
    )


def _steps(
    items: Mapping[str, BacklogItem],
    tools: Mapping[str, Tool],
    stages_of_items: list[list[str]],
    step_id: Mapping[str, str],
    lines: Mapping[str, str],
    est: Mapping[str, estimates.Estimate],
    token_of: Callable[[str], str],
    gaps: set[str],
) -> list[PlanStep]:
    """The steps in stage order. Records each item whose rollback is missing in `gaps`."""
    renderer = rollback.Renderer()
    steps = []
    for number, members in enumerate(stages_of_items):
        for position, item_id in enumerate(members):
            item = items[item_id]
            tool = tools.get(item.tool_id)
            token = token_of(lines[item_id])
            undo, gap = renderer.instructions(item, tool, token)
            if gap is not None:
                gaps.add(item_id)
            step_est = est[item_id]
            steps.append(
                PlanStep(
                    id=step_id[item_id],
                    item_id=item.id,
                    item_key=item.key,
                    title=item.title,
                    pack_id=item.pack_id,
                    tool_id=item.tool_id,
                    stage=number,
                    position=position,
                    depends_on=[step_id[d] for d in item.depends_on if d in items],
                    idempotency_token=token,
                    rollback=undo if gap is None else {"action": "missing", "reason": gap},
                    inputs=item.inputs,
                    requires_approval=tool is not None and tool.approval_policy is not None,
                    est_duration_ms=step_est.duration_ms,
                    duration_source=step_est.duration_source,
                    est_cost_usd=step_est.cost_usd,
                    cost_note=step_est.cost_note,
                    environment=item.environment,
                    tags=item.tags,
                    priority=item.priority,
                )
            )
    return steps


def _estimates(
    items: Mapping[str, BacklogItem], tools: Mapping[str, Tool], stats: Mapping[str, ToolStats]
) -> dict[str, estimates.Estimate]:
    """Per item; an estimate depends only on the tool and the item's own
    estimate, so a plan of 100,000 items works out a few dozen."""
    known: dict[tuple[str, float | None], estimates.Estimate] = {}
    out = {}
    for item_id, item in items.items():
        key = (item.tool_id, item.estimate_minutes)
        e = known.get(key)
        if e is None:
            e = known[key] = estimates.estimate(item, tools.get(item.tool_id), stats.get(item.tool_id))
        out[item_id] = e
    return out


def _order_stages(items: Mapping[str, BacklogItem], stage_of: Mapping[str, int]) -> list[list[str]]:
    """Item ids per stage. Within a stage, items of one pack and tool sit
    together (affinity); groups go by their most urgent member, members by
    priority."""
    group_rank: dict[tuple[int, str, str], int] = {}
    for item_id, item in items.items():
        group = (stage_of[item_id], item.pack_id, item.tool_id)
        if item.priority < group_rank.get(group, 6):
            group_rank[group] = item.priority
    # Plain tuples sort fastest; the item's index breaks ties as a stable sort would.
    keyed = []
    for index, (item_id, item) in enumerate(items.items()):
        stage = stage_of[item_id]
        urgency = group_rank[(stage, item.pack_id, item.tool_id)]
        keyed.append((stage, urgency, item.pack_id, item.tool_id, item.priority, item.key, index, item_id))
    keyed.sort()
    ordered: list[list[str]] = []
    current = None
    for k in keyed:
        if k[0] != current:
            current = k[0]
            ordered.append([])
        ordered[-1].append(k[-1])
    return ordered
