"""Advance a plan as far as a time budget allows; the next call resumes it.

Claimed steps (claiming) run outside any transaction, in threads, up to
max_parallel at once (running); each result is recorded by its lease holder
(recording). A failed step fails the plan, or with rollback_on_failure undoes
the succeeded steps in reverse dependency order (rollback).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import psycopg

from lib.data import db
from lib.executor import kill_switch
from lib.executor.claiming import claim
from lib.executor.recording import record, settle
from lib.executor.rollback import roll_back, undo_deadline, undo_late
from lib.executor.running import StepRun, run_step
from lib.executor.store import load_plan
from lib.planner.models import Tool
from lib.plans.status import RUNNABLE as RUNNABLE_PLAN

log = logging.getLogger("nofx.executor")


@dataclass
class Outcome:
    plan_id: str
    status: str
    ran: int = 0
    succeeded: int = 0
    failed: int = 0
    waiting_for: list[str] = field(default_factory=list)


def advance(plan_id: Any, budget_seconds: float) -> Outcome:
    """Run what can run until the plan settles or the budget is spent."""
    deadline = time.monotonic() + budget_seconds
    outcome = Outcome(plan_id=str(plan_id), status="")
    in_flight: dict[Future[StepRun], dict[str, Any]] = {}
    failed = held = False  # held: no new step starts in this run (the switch, the database)
    tools: dict[str, Tool] | None = None
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="nofx-step") as pool:
        while True:
            if not (failed or held) and time.monotonic() < deadline and not kill_switch.execution_on():
                kill_switch.hold(plan_id)  # nothing new starts; what runs finishes
                held = True
            if not (failed or held) and time.monotonic() < deadline:
                try:
                    batch = claim(plan_id, len(in_flight), tools)
                except TRANSIENT as exc:  # the plan busy, the database away: no new step now
                    log.warning("plan %s: could not claim: %s", plan_id, exc)
                    held = True
                    continue
                tools = batch.tools
                for step in batch.steps:
                    future = pool.submit(run_step, batch.plan, step, batch.tools.get(step["tool_id"]))
                    in_flight[future] = step
                if not in_flight and (batch.stop or not batch.steps):
                    break
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=max(0.05, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            for future in done:
                in_flight.pop(future)
                run = future.result()
                state = _record(plan_id, run)
                outcome.ran += 1
                if state == "undo":
                    assert tools is not None  # the step was claimed with them
                    undo_late(plan_id, run.step, tools, deadline)
                if state in ("succeeded", "undo"):
                    outcome.succeeded += 1
                elif state == "failed":
                    outcome.failed += 1
                    failed = True
                elif state == "held":
                    kill_switch.hold(plan_id)
                    held = True
                elif state == "lost":
                    held = True  # recording failed (or the lease was lost): leave the plan to its next run
                elif state == "waiting" and run.waiting:
                    outcome.waiting_for.append(run.waiting)
            if time.monotonic() >= deadline and not in_flight:
                break
    try:
        outcome.status = _after(plan_id, failed, deadline)
    except TRANSIENT as exc:  # the plan settles on its next run (a worker, the tick)
        log.warning("plan %s: could not settle: %s", plan_id, exc)
        outcome.status = "unsettled"
    return outcome


# What may fail around recording a result that is not the tool's doing: the
# connection (a restart, a cut), a lock held too long, a serialization retry.
TRANSIENT = (psycopg.OperationalError, psycopg.errors.LockNotAvailable, psycopg.errors.SerializationFailure)
RECORD_RETRIES = (0.2, 0.5, 1.0)


def _record(plan_id: Any, run: StepRun) -> str:
    """Record a result, retrying what the database (not the tool) got wrong.
    Still failing, the step is left to its lease: the next run presents the
    same idempotency token, so the tool does not act twice."""
    for delay in (*RECORD_RETRIES, None):
        try:
            return record(plan_id, run)
        except TRANSIENT:
            if delay is None:
                log.warning("plan %s: could not record step %s; its lease will hand it on", plan_id, run.step["id"])
                return "lost"
            time.sleep(delay)
    return "lost"  # pragma: no cover - the loop returns


def _after(plan_id: Any, failed: bool, deadline: float) -> str:
    with db.transaction() as conn:
        plan = load_plan(conn, plan_id)
    assert plan is not None
    if failed and (plan["options"] or {}).get("rollback_on_failure") and plan["status"] in RUNNABLE_PLAN:
        return roll_back(
            plan_id,
            "executor",
            "a step failed and the plan rolls back on failure",
            undo_deadline(deadline),
        )
    return settle(plan_id)
