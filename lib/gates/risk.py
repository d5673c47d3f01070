"""The risk gate: what could go wrong, and how far it would reach.

- A sensitive tool without an approval policy blocks: nobody would be asked.
- A production change without an approval blocks; with one, it warns.
- Blast radius: how many steps wait (transitively) on a risky step, i.e. a
  sensitive one or a production change. Past the warn threshold it warns,
  past the block threshold it blocks. Counting stops at the block threshold,
  so a 10,000-step plan costs at most threshold visits per risky step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from lib.gates.models import GateResult, result
from lib.planner.models import Finding, PlanDraft, PlanStep, Tool


@dataclass(frozen=True)
class RiskSettings:
    blast_radius_warn: int = 10
    blast_radius_block: int = 100


def _dependents(successors: Mapping[str, list[str]], start: str, cap: int) -> int:
    """How many steps wait on `start`, directly or not; counting stops at cap."""
    seen = {start}
    queue = deque(successors.get(start, ()))
    count = 0
    while queue and count < cap:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        count += 1
        queue.extend(successors.get(node, ()))
    return count


def _successors(draft: PlanDraft) -> dict[str, list[str]]:
    successors: dict[str, list[str]] = {}
    for step in draft.steps:
        for dep in step.depends_on:
            successors.setdefault(dep, []).append(step.id)
    return successors


def _is_production_change(step: PlanStep, tool: Tool | None) -> bool:
    return step.environment == "production" and (tool is None or tool.mutating)


def evaluate(draft: PlanDraft, tools: Mapping[str, Tool], settings: RiskSettings = RiskSettings()) -> GateResult:
    findings: list[Finding] = []
    successors: dict[str, list[str]] | None = None  # built at the first risky step: most plans have none

    for step in draft.steps:
        tool = tools.get(step.tool_id)
        sensitive = tool is not None and tool.sensitive
        production = _is_production_change(step, tool)
        if sensitive and not step.requires_approval:
            findings.append(
                Finding(
                    code="risk.sensitive_without_approval",
                    severity="block",
                    step_id=step.id,
                    item_key=step.item_key,
                    message=f"{step.item_key} uses the sensitive tool {step.tool_id}, "
                    "whose policy asks nobody to approve",
                    remediation=f"give tool {step.tool_id} an approval_policy (required_approvals >= 1)",
                )
            )
        elif sensitive:
            findings.append(
                Finding(
                    code="risk.sensitive_tool",
                    severity="info",
                    step_id=step.id,
                    item_key=step.item_key,
                    message=f"{step.item_key} uses the sensitive tool {step.tool_id}; it will wait for approval",
                    remediation="approvers: check the inputs summary and the findings before approving",
                )
            )
        if production and not step.requires_approval:
            findings.append(
                Finding(
                    code="risk.production_without_approval",
                    severity="block",
                    step_id=step.id,
                    item_key=step.item_key,
                    message=f"{step.item_key} changes production through {step.tool_id} without an approval",
                    remediation=f"add an approval_policy to {step.tool_id}, or target staging first",
                )
            )
        elif production:
            findings.append(
                Finding(
                    code="risk.production_change",
                    severity="warn",
                    step_id=step.id,
                    item_key=step.item_key,
                    message=f"{step.item_key} changes production ({step.tool_id}); it waits for approval",
                    remediation="make sure its rollback instructions were exercised in staging",
                )
            )
        if sensitive or production:
            if successors is None:
                successors = _successors(draft)
            reach = _dependents(successors, step.id, settings.blast_radius_block + 1)
            if reach > settings.blast_radius_block:
                findings.append(
                    Finding(
                        code="risk.blast_radius",
                        severity="block",
                        step_id=step.id,
                        item_key=step.item_key,
                        message=f"more than {settings.blast_radius_block} steps depend on the risky step "
                        f"{step.item_key}",
                        remediation=f"split the plan so fewer steps wait on {step.item_key}, "
                        "or run it in a plan of its own",
                    )
                )
            elif reach > settings.blast_radius_warn:
                findings.append(
                    Finding(
                        code="risk.blast_radius",
                        severity="warn",
                        step_id=step.id,
                        item_key=step.item_key,
                        message=f"{reach} steps depend on the risky step {step.item_key}",
                        remediation="consider a canary: run it alone first and approve the rest after",
                    )
                )
    return result("risk", findings)
