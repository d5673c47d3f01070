"""Running one claimed step: its tool, outside any transaction, to its end or
its own timeout, behind `require_approval` when its tool needs approval (the
decision is checked against the step's digest right before the call).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from lib import settings
from lib.approvals import asking
from lib.data import db
from lib.executor import kill_switch
from lib.executor import tools as toolbox
from lib.planner.models import Tool


def step_timeout() -> float:
    return float(settings.env("NOFX_STEP_TIMEOUT_SECONDS", "30") or 30)


@dataclass
class StepRun:
    step: dict[str, Any]
    tool: Tool | None
    result: toolbox.ToolResult | None = None
    error: str | None = None
    waiting: str | None = None  # approval id, when the step must wait after all
    denied: str | None = None
    held: bool = False  # the kill switch was off: the tool was not called, the step waits
    # the database failed around the call (the approval's re-check): not the
    # tool's answer, so not the step's failure; it waits for its next run
    infrastructure: str | None = None
    duration_ms: int = 0


def run_step(plan: dict[str, Any], step: dict[str, Any], tool: Tool | None) -> StepRun:
    """Run one claimed step to its end or its own timeout. The invocation's
    budget only decides whether a step is started: one started near the end
    of it still gets NOFX_STEP_TIMEOUT_SECONDS (the functions' maxDuration
    leaves room for that), rather than failing on a deadline of ours."""
    run = StepRun(step, tool)
    started = time.monotonic()
    if tool is None:
        run.error = f"tool {step['tool_id']} is not in the registry"
        return run
    function = toolbox.implementation(tool)
    if tool.approval_policy is not None:
        # checked again right before the tool runs: the decision must still
        # match what the step is now (its digest), not what it was at claim
        function = asking.require_approval(tool.id, tool.approval_policy)(function)
    call = toolbox.ToolCall(
        plan=plan,
        step=step,
        tool=tool,
        inputs=step["inputs"],
        token=step["idempotency_token"],
        deadline=started + step_timeout(),
        transaction=db.transaction,
    )
    if not kill_switch.execution_on():  # switched off since the step was claimed
        run.held = True
        return run
    try:
        run.result = function(call)
    except asking.ApprovalPending as pending:
        run.waiting = pending.approval_id
    except asking.ApprovalDenied as denied:
        run.denied = denied.reason
    except (psycopg.OperationalError, psycopg.errors.LockNotAvailable) as lost:
        run.infrastructure = f"{type(lost).__name__}: {lost}"
    except toolbox.ToolFailed as failed:
        run.error = str(failed)
    except Exception as exc:  # noqa: BLE001 - a tool's bug is the step's failure, not the executor's
        run.error = f"{type(exc).__name__}: {exc}"
    run.duration_ms = int((time.monotonic() - started) * 1000)
    return run
