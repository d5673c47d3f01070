"""The executor's reads and its audit entries: a plan (optionally locked), the
tool registry, the step columns every part of the executor selects.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from lib.data import db
from lib.planner.models import Tool
from lib.trail import audit

# This process, as the holder of the leases it takes.
WORKER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

PLAN_QUERY = (
    "SELECT id, version, title, status, status_reason, verdict, options, input_fingerprint, policy_version, "
    "created_by, created_by_sub, executed_by, executed_by_sub, pack_ids FROM public.plans WHERE id = %s"
)


def load_plan(conn: Any, plan_id: Any, lock: bool = False) -> dict[str, Any] | None:
    """The plan; with `lock`, its row locked for the transaction, waiting at
    most NOFX_LOCK_TIMEOUT_MS for another holder (then LockNotAvailable)."""
    sql = PLAN_QUERY + (f" AND {db.bounded()} FOR UPDATE" if lock else "")
    row: dict[str, Any] | None = conn.execute(sql, (plan_id,)).fetchone()
    return row


def load_tools(conn: Any) -> dict[str, Tool]:
    from lib.planner.load import load_tools as load_registry  # the planner reads the same registry

    tools: dict[str, Tool] = load_registry(conn)
    return tools


STEP_COLUMNS = """
  s.id, s.plan_id, s.backlog_item_id, s.item_key, s.title, s.pack_id, s.tool_id, s.stage, s.position, s.depends_on,
  s.idempotency_token, s.rollback, s.inputs, s.requires_approval, s.status, s.attempts, s.lease_until, s.leased_by,
  s.approval_round, s.external_run, s.undo_run
"""


def audit_step(conn: Any, plan: dict[str, Any], step: dict[str, Any], action: str, details: dict[str, Any]) -> None:
    audit.record(
        conn,
        actor="executor",
        action=action,
        plan_id=plan["id"],
        step_id=step["id"],
        backlog_item_ids=[step["backlog_item_id"]] if step["backlog_item_id"] else (),
        pack_ids=[step["pack_id"]],
        details={"item_key": step["item_key"], **details},
    )
