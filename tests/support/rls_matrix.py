"""The intended row level security, as a table: for every table and role,
which of select, insert, update and delete are allowed. The test holds the
database to it; `python -m tests.support.rls_matrix` prints it for the README.

Roles: anon; signed-in users with app_metadata.nofx_role viewer, planner,
approver, admin; service_role (the server's key). "allowed" means the
statement ran and touched a row: RLS hiding a row (0 rows) and a refused
grant, policy check or append-only trigger all count as refused.
"""

from __future__ import annotations

ROLES = ("anon", "viewer", "planner", "approver", "admin", "service_role")
OPS = ("select", "insert", "update", "delete")

EVERYONE = {"viewer", "planner", "approver", "admin", "service_role"}
PLANNERS = {"planner", "approver", "admin", "service_role"}
ADMINS = {"admin", "service_role"}
SERVER = {"service_role"}
NOBODY: set[str] = set()


def _row(select: set[str], insert: set[str], update: set[str], delete: set[str]) -> dict[str, set[str]]:
    return {"select": select, "insert": insert, "update": update, "delete": delete}


EXPECTED: dict[str, dict[str, set[str]]] = {
    "config": _row(EVERYONE, ADMINS, ADMINS, ADMINS),
    "idempotency_keys": _row(SERVER, SERVER, SERVER, SERVER),
    "events": _row(EVERYONE, SERVER, NOBODY, NOBODY),
    "audit_log": _row(EVERYONE, SERVER, NOBODY, NOBODY),
    "audit_chain_heads": _row(EVERYONE, NOBODY, NOBODY, NOBODY),
    "packs": _row(EVERYONE, PLANNERS, PLANNERS, ADMINS),
    "tools": _row(EVERYONE, ADMINS, ADMINS, ADMINS),
    "tool_metrics": _row(EVERYONE, SERVER, SERVER, SERVER),
    "backlog_items": _row(EVERYONE, PLANNERS, PLANNERS, ADMINS),
    "plans": _row(EVERYONE, SERVER, SERVER, SERVER),
    "plan_steps": _row(EVERYONE, SERVER, SERVER, SERVER),
    "plan_evaluations": _row(EVERYONE, SERVER, SERVER, SERVER),
    "model_comparisons": _row(EVERYONE, SERVER, SERVER, SERVER),
    "policies": _row(EVERYONE, ADMINS, ADMINS, ADMINS),
    "notifications": _row(SERVER, SERVER, SERVER, SERVER),
    "approvals": _row(EVERYONE, SERVER, SERVER, SERVER),
    "approval_events": _row(EVERYONE, SERVER, NOBODY, NOBODY),
    "overrides": _row(EVERYONE, SERVER, NOBODY, NOBODY),
    "nofx_schema_migrations": _row(SERVER, SERVER, SERVER, SERVER),
    # a person reads only their own row (the matrix's rows belong to nobody signed in); admins read all
    "people": _row(ADMINS, SERVER, SERVER, SERVER),
    "step_callbacks": _row(EVERYONE, SERVER, SERVER, SERVER),
    "audit_checkpoints": _row(EVERYONE, SERVER, SERVER, SERVER),
    "storage_outbox": _row(SERVER, SERVER, SERVER, SERVER),
    "override_requests": _row(EVERYONE, SERVER, SERVER, NOBODY),
}
APPEND_ONLY = ("events", "audit_log", "approval_events", "overrides")
TRIGGER_WRITTEN = ("audit_chain_heads",)


def markdown() -> str:
    def cell(table: str, role: str) -> str:
        letters = "".join(op[0].upper() for op in OPS if role in EXPECTED[table][op])
        return letters or "-"

    lines = ["| table | " + " | ".join(ROLES) + " |", "| --- |" + " :---: |" * len(ROLES)]
    for table in EXPECTED:
        suffix = (
            " (append-only)" if table in APPEND_ONLY else " (audit trigger only)" if table in TRIGGER_WRITTEN else ""
        )
        lines.append(f"| `{table}`{suffix} | " + " | ".join(cell(table, r) for r in ROLES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("S select, I insert, U update, D delete; - nothing\n")
    print(markdown())
