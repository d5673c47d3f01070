"""Feature flags in the `config` table, each switched on its own.

Every instance keeps the flags for NOFX_FLAG_CACHE_SECONDS (default 2 s), so
a switch reaches every warm instance within that time, well inside the
contract's 5 seconds, while a busy endpoint reads them about once per window.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from lib import settings
from lib.data import db
from lib.trail import audit, events
from lib.web.problems import Problem, field_error

FLAGS = ("FEATURE_AUTO_PLANNER", "FEATURE_PLANNER_EXECUTE")

_lock = threading.Lock()
_cache: tuple[float, dict[str, bool]] | None = None


class FlagChange(BaseModel):
    enabled: bool
    by: str
    reason: str | None = Field(description="why, as the admin said (switches before reasons were required: null)")
    at: datetime


class Flag(BaseModel):
    key: str
    enabled: bool
    description: str
    updated_by: str
    updated_at: datetime
    history: list[FlagChange] = Field(default_factory=list, description="its last 10 switches, newest first")


class FlagList(BaseModel):
    flags: list[Flag]


class FlagSwitch(BaseModel):
    """Switch one or more flags; the reason goes into the audit trail."""

    model_config = ConfigDict(extra="forbid")
    flags: dict[str, StrictBool] = Field(min_length=1, examples=[{"FEATURE_AUTO_PLANNER": True}])
    reason: str = Field(
        min_length=3, max_length=500, description="why; required, shown with the change in the flag's history"
    )

    @field_validator("flags")
    @classmethod
    def known_flags(cls, value: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(value) - set(FLAGS))
        if unknown:
            raise ValueError(f"unknown flag {', '.join(unknown)}; known: {', '.join(FLAGS)}")
        return value

    @field_validator("reason")
    @classmethod
    def said_something(cls, value: str) -> str:
        if len(value.strip()) < 3:
            raise ValueError("say why (at least 3 characters): the reason is shown with the change")
        return value.strip()


# Each flag's switches from the audit trail (flag changes are global entries,
# found through the plan_id index's empty-plan part).
HISTORY = """
(SELECT coalesce(json_agg(h ORDER BY h.id DESC), '[]'::json) FROM (
   SELECT id, actor AS by, occurred_at AS at, (content::jsonb -> 'details' ->> 'to')::boolean AS enabled,
          content::jsonb -> 'details' ->> 'reason' AS reason
     FROM public.audit_log
    WHERE plan_id IS NULL AND action = 'flag.changed' AND content::jsonb -> 'details' ->> 'key' = c.key
    ORDER BY id DESC LIMIT 10) h) AS history
"""


def _read_all() -> dict[str, bool]:
    with db.transaction() as conn:
        rows = conn.execute("SELECT key, value FROM public.config WHERE key = ANY(%s)", (list(FLAGS),)).fetchall()
    return {r["key"]: r["value"] is True for r in rows}


def enabled(name: str) -> bool:
    global _cache
    now = time.monotonic()
    cached = _cache
    if cached is None or now - cached[0] > settings.flag_cache_seconds():
        values = _read_all()
        with _lock:
            _cache = cached = (now, values)
    return cached[1].get(name, False)


def forget() -> None:
    """Drop this instance's cache (after a switch made here)."""
    global _cache
    with _lock:
        _cache = None


def require(name: str) -> None:
    if not enabled(name):
        raise Problem(
            403,
            f"{name} is switched off; an admin can switch it on in the console or with PUT /api/config/flags",
            type="feature-disabled",
            extra={"flag": name},
        )


def list_flags(conn: Any) -> FlagList:
    rows = conn.execute(
        f"SELECT key, value, description, updated_by, updated_at, {HISTORY} "  # noqa: S608 - constants only
        "FROM public.config c WHERE key = ANY(%s) ORDER BY key",
        (list(FLAGS),),
    ).fetchall()
    fields = ("key", "description", "updated_by", "updated_at", "history")
    return FlagList(flags=[Flag(enabled=r["value"] is True, **{k: r[k] for k in fields}) for r in rows])


def switch(conn: Any, change: FlagSwitch, principal: Any) -> FlagList:
    for key, value in sorted(change.flags.items()):
        before = conn.execute("SELECT value FROM public.config WHERE key = %s FOR UPDATE", (key,)).fetchone()
        if before is None:
            raise field_error(422, ["body", "flags", key], "flag is not in config")
        if before["value"] is value:
            continue
        conn.execute(
            "UPDATE public.config SET value = %s::jsonb, updated_by = %s, updated_at = now() WHERE key = %s",
            ("true" if value else "false", principal.name, key),
        )
        audit.record(
            conn,
            actor=principal,
            action="flag.changed",
            details={"key": key, "from": before["value"], "to": value, "reason": change.reason},
        )
        events.emit(
            conn, "flag.changed", None, {"key": key, "enabled": value, "by": principal.name, "reason": change.reason}
        )
    forget()
    return list_flags(conn)
