"""The structural gate: is the plan's graph sound enough to run?

Blocks on cycles, missing or cancelled dependencies, unknown tools, duplicate
idempotency tokens, steps that depend on steps outside the plan, and mutating
steps without rollback instructions. Warns past the depth and width limits.
A finished dependency is satisfied; it is reported for information only.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lib.gates.models import GateResult, result
from lib.planner.models import Finding, PlanDraft, PlanStep


@dataclass(frozen=True)
class StructuralLimits:
    max_depth: int = 200
    max_width: int = 500


def evaluate(
    draft: PlanDraft, limits: StructuralLimits = StructuralLimits(), tool_errors: Mapping[str, str] | None = None
) -> GateResult:
    findings: list[Finding] = []
    by_id = {s.id: s for s in draft.steps}
    # item key -> step id, needed only to point cycle and dependency findings at a step
    key_of = {s.item_key: s.id for s in draft.steps} if draft.graph.cycles or draft.graph.dependency_issues else {}

    for cycle in draft.graph.cycles:
        findings.append(
            Finding(
                code="structural.cycle",
                severity="block",
                message=f"dependency cycle: {' -> '.join(cycle.path)} (members: {', '.join(cycle.members)})",
                remediation=f"remove one dependency in the loop {' -> '.join(cycle.path)}, e.g. make "
                f"{cycle.path[0]} stop waiting for {cycle.path[-2]}",
                step_id=key_of.get(cycle.members[0]),
                item_key=cycle.members[0],
            )
        )
    for issue in draft.graph.dependency_issues:
        waiting = key_of.get(issue.item_key)
        if issue.reason == "missing":
            findings.append(
                Finding(
                    code="structural.missing_dependency",
                    severity="block",
                    step_id=waiting,
                    item_key=issue.item_key,
                    message=f"{issue.item_key} depends on {issue.depends_on}, which is not in the backlog",
                    remediation=f"restore the item {issue.depends_on} or remove it from "
                    f"{issue.item_key}'s dependencies",
                )
            )
        elif issue.reason == "cancelled":
            findings.append(
                Finding(
                    code="structural.cancelled_dependency",
                    severity="block",
                    step_id=waiting,
                    item_key=issue.item_key,
                    message=f"{issue.item_key} depends on {issue.depends_on}, which was cancelled",
                    remediation=f"reopen {issue.depends_on}, or drop the dependency if {issue.item_key} "
                    "no longer needs it",
                )
            )
        else:
            findings.append(
                Finding(
                    code="structural.dependency_done",
                    severity="info",
                    step_id=waiting,
                    item_key=issue.item_key,
                    message=f"{issue.item_key} depends on {issue.depends_on}, which is already done",
                    remediation="nothing to do: the dependency counts as satisfied",
                )
            )
    for tool_id in draft.graph.unknown_tools:
        why = (tool_errors or {}).get(tool_id)
        if why is not None:  # the row exists, but the code refuses it
            findings.append(
                Finding(
                    code="structural.misconfigured_tool",
                    severity="block",
                    message=f"tool {tool_id} is misconfigured: {why}",
                    remediation=f"fix the tools row of {tool_id} ({why})",
                )
            )
            continue
        findings.append(
            Finding(
                code="structural.unknown_tool",
                severity="block",
                message=f"tool {tool_id} is not in the registry",
                remediation=f"register {tool_id} in the tools table or point the items at an existing tool",
            )
        )
    for token, count in _repeated(s.idempotency_token for s in draft.steps).items():
        if count > 1:
            findings.append(
                Finding(
                    code="structural.duplicate_token",
                    severity="block",
                    message=f"{count} steps share the idempotency token {token}: a tool would run only one of them",
                    remediation="give the items distinct inputs, or merge the duplicate backlog items",
                )
            )
    for step in _with_outside_dependencies(draft, by_id):
        outside = [d for d in step.depends_on if d not in by_id]
        if outside:
            findings.append(
                Finding(
                    code="structural.orphan_dependency",
                    severity="block",
                    step_id=step.id,
                    item_key=step.item_key,
                    message=f"{step.item_key} waits for {len(outside)} step(s) that are not in this plan",
                    remediation="re-plan so that every dependency is part of the plan",
                )
            )
    for step_id in draft.graph.rollback_gaps:
        step = by_id[step_id]
        reason = (step.rollback or {}).get("reason", "no rollback instructions")
        findings.append(
            Finding(
                code="structural.no_rollback",
                severity="block",
                step_id=step_id,
                item_key=step.item_key,
                message=f"{step.item_key}: {reason}",
                remediation=f"add a rollback_template to tool {step.tool_id} (or the inputs it references to "
                f"{step.item_key}), so this change can be undone",
            )
        )
    if draft.graph.depth > limits.max_depth:
        findings.append(
            Finding(
                code="structural.too_deep",
                severity="warn",
                message=f"{draft.graph.depth} stages, more than the limit of {limits.max_depth}",
                remediation="split the backlog into several plans, or raise max_parallel if stages are capacity-bound",
            )
        )
    if draft.graph.max_width > limits.max_width:
        findings.append(
            Finding(
                code="structural.too_wide",
                severity="warn",
                message=f"a stage holds {draft.graph.max_width} steps, more than the limit of {limits.max_width}",
                remediation="lower max_parallel so no stage fans out that far",
            )
        )
    return result("structural", findings)


def _repeated(tokens: Iterable[str]) -> Counter[str]:
    """Counts of the tokens, or nothing when all are distinct (the usual case,
    told by one set instead of a Counter over every step)."""
    tokens = list(tokens)
    return Counter(tokens) if len(set(tokens)) < len(tokens) else Counter()


def _with_outside_dependencies(draft: PlanDraft, by_id: Mapping[str, PlanStep]) -> list[PlanStep]:
    """The steps that wait for a step not in the plan: none, usually, which one
    set difference over every dependency tells."""
    if set(itertools.chain.from_iterable(s.depends_on for s in draft.steps)) <= by_id.keys():
        return []
    return draft.steps
