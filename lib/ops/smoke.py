"""The smoke test: the whole planner story against a running deployment.

    python -m lib.cli smoke --surface planner --base-url https://nofx.example.com

plan -> gates -> execute -> pause at approval -> approve through the signed
Zig Todo webhook -> complete -> the audit trail verifies -> the final
snapshot's signed storage link downloads -> the plan's events reached
Realtime (realtime.messages, when NOFX_SMOKE_DATABASE_URL or DATABASE_URL
can read it; skipped with a note otherwise). It writes a small
pack of its own (`smoke-<run>`), so it is safe to run against production.

Credentials: NOFX_SMOKE_PLANNER_TOKEN (a planner's JWT) and
ZIG_TODO_WEBHOOK_SECRET; locally both come from the development secrets.
The approval step uses NOFX_SMOKE_GATE_TOOL (default `db.migrate`, seeded by
supabase/seed.sql), a tool whose policy asks one approver.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from lib import settings
from lib.web import webhooks

SURFACES = ("planner",)


class SmokeFailed(RuntimeError):
    pass


class Smoke:
    def __init__(self, base_url: str, say: Callable[[str], None] = print, timeout: float = 90.0) -> None:
        import httpx

        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30.0)
        self.say = say
        self.timeout = timeout
        token = settings.env("NOFX_SMOKE_PLANNER_TOKEN")
        if token is None:
            from lib.web import auth

            token = auth.mint_token("planner", email="smoke@nofx.local", subject=str(uuid.uuid4()))
        self.auth = {"Authorization": f"Bearer {token}"}
        secret = settings.secret("ZIG_TODO_WEBHOOK_SECRET")
        if not secret:
            raise SmokeFailed("set ZIG_TODO_WEBHOOK_SECRET to sign the approval webhook")
        self.secret = secret

    def call(self, method: str, path: str, expect: tuple[int, ...], **kw: Any) -> Any:
        response = self.http.request(method, path, headers={**self.auth, **kw.pop("headers", {})}, **kw)
        if response.status_code not in expect:
            raise SmokeFailed(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        self.say(f"{'ok  ' if ok else 'FAIL'} {label}{': ' + detail if detail else ''}")
        if not ok:
            raise SmokeFailed(label + (f": {detail}" if detail else ""))

    def webhook_approver(self) -> str:
        """The person the signed webhook names: NOFX_SMOKE_APPROVER_EMAIL (on
        Supabase, a user of the project's auth), else a person this smoke
        registers (the project's own record of people, where auth.users is absent)."""
        email = settings.env("NOFX_SMOKE_APPROVER_EMAIL")
        if email:
            return email
        admin = settings.env("NOFX_SMOKE_ADMIN_TOKEN")
        if admin is None:
            from lib.web import auth

            try:
                admin = auth.mint_token("admin", email="smoke-admin@nofx.local", subject=str(uuid.uuid4()))
            except RuntimeError:
                raise SmokeFailed("set NOFX_SMOKE_APPROVER_EMAIL, or NOFX_SMOKE_ADMIN_TOKEN to register one") from None
        email = f"smoke-approver-{uuid.uuid4().hex[:8]}@nofx.local"
        response = self.http.post(
            "/api/people", json={"id": str(uuid.uuid4()), "email": email}, headers={"Authorization": f"Bearer {admin}"}
        )
        if response.status_code != 201:
            raise SmokeFailed(f"registering the smoke approver: {response.status_code} {response.text[:300]}")
        return email

    def wait_until(self, plan_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
        """The plan once its status is one of `statuses` (workers move it after the answers)."""
        deadline = time.monotonic() + self.timeout
        while True:
            plan: dict[str, Any] = self.call("GET", f"/api/plans/{plan_id}?limit=1", (200,))["plan"]
            waiting_for_approval = plan["status"] == "paused" and "paused" in statuses
            if plan["status"] in statuses and (plan["status"] != "paused" or waiting_for_approval):
                pending = self.call("GET", f"/api/approvals?plan_id={plan_id}", (200,))["approvals"]
                if plan["status"] != "paused" or pending:
                    return plan
            if time.monotonic() > deadline:
                raise SmokeFailed(f"plan still {plan['status']} after {self.timeout:.0f} s")
            time.sleep(0.2)

    def approve_by_webhook(self, approval_id: str) -> dict[str, Any]:
        if not hasattr(self, "approver"):
            self.approver = self.webhook_approver()
        decision = {"decision": "approve", "approver": self.approver, "approval_id": approval_id, "reason": "smoke"}
        body = json.dumps(decision).encode()
        headers = webhooks.sign(self.secret, f"msg_{uuid.uuid4().hex}", body)
        response = self.http.post(
            f"/api/approvals/{approval_id}", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        if response.status_code != 200:
            hint = " (set NOFX_SMOKE_APPROVER_EMAIL to a person who may approve)" if response.status_code == 422 else ""
            raise SmokeFailed(f"webhook approval {approval_id}: {response.status_code} {response.text[:300]}{hint}")
        result: dict[str, Any] = response.json()
        return result

    def run(self) -> str:
        health = self.http.get("/api/health").json()
        self.check(
            "health", health.get("status") == "ok", f"database {health.get('database', {}).get('server_version')}"
        )
        flags = {f["key"]: f["enabled"] for f in self.call("GET", "/api/config/flags", (200,))["flags"]}
        self.check("feature flags on", all(flags.values()), json.dumps(flags))

        run = uuid.uuid4().hex[:8]
        gate_tool = settings.env("NOFX_SMOKE_GATE_TOOL", "db.migrate") or "db.migrate"
        created = self.call(
            "POST",
            "/api/backlog",
            (201,),
            json={
                "pack_id": f"smoke-{run}",
                "pack_name": f"smoke test {run}",
                "items": [
                    {"key": f"SMK-{run}-1", "title": "prepare", "tool_id": "builtin.echo", "inputs": {"run": run}},
                    {
                        "key": f"SMK-{run}-2",
                        "title": "change that needs a person",
                        "tool_id": gate_tool,
                        "inputs": {"service": f"smoke-{run}", "previous": "0"},
                        "depends_on": [f"SMK-{run}-1"],
                    },
                    {
                        "key": f"SMK-{run}-3",
                        "title": "announce",
                        "tool_id": "builtin.echo",
                        "depends_on": [f"SMK-{run}-2"],
                    },
                ],
            },
        )
        ids = [i["id"] for i in created["items"]]
        self.check("backlog written", len(ids) == 3, f"pack smoke-{run}")

        plan = self.call(
            "POST",
            "/api/auto-planner/plan",
            (201,),
            json={"backlog_item_ids": ids, "options": {"rollback_on_failure": True, "title": f"smoke {run}"}},
        )
        plan_id = plan["plan"]["id"]
        self.check(
            "plan",
            plan["verdict"] != "block",
            f"{plan_id} verdict {plan['verdict']}, {plan['plan']['totals']['stages']} stages",
        )
        gates = self.call("GET", f"/api/gates/{plan_id}", (200,))
        self.check(
            "gates",
            set(gates["gates"]) == {"structural", "risk", "compliance", "resource"},
            ", ".join(f"{k} {v['verdict']}" for k, v in gates["gates"].items()),
        )

        started = self.call("POST", "/api/auto-planner/execute", (202,), json={"plan_id": plan_id})
        self.check("execute answers at once", started["dispatched"], f"{started['status']}, a worker dispatched")
        state = self.wait_until(plan_id, ("paused",))
        self.check("the worker pauses the plan for approval", state["status"] == "paused", state["status_reason"] or "")
        approved = 0
        while state["status"] not in ("completed", "failed", "rolled_back", "blocked", "cancelled"):
            pending = self.call("GET", f"/api/approvals?plan_id={plan_id}", (200,))["approvals"]
            for approval in pending:
                decided = self.approve_by_webhook(approval["id"])
                approved += 1
                self.check(
                    f"approved {approval['kind']} through the signed webhook",
                    decided["status"] in ("approved", "pending"),
                    decided["status"],
                )
            # each approval dispatched a worker: wait for it to move the plan on
            state = self.wait_until(plan_id, ("completed", "failed", "rolled_back", "blocked", "cancelled", "paused"))
            if state["status"] == "paused" and not pending:
                time.sleep(0.2)
        self.check("completed", state["status"] == "completed", f"after {approved} approval(s)")

        trail = self.call("GET", f"/api/audit/{plan_id}?verify=full", (200,))
        self.check(
            "audit chain verifies",
            trail["chain"]["ok"] and trail["snapshots_ok"],
            f"{trail['chain']['entries']} entries, snapshots verified",
        )
        self.snapshot_link_downloads(plan_id)
        events = self.until(
            lambda: self.call("GET", f"/api/events?plan_id={plan_id}&limit=1000", (200,))["events"],
            lambda found: any(e["type"] == "plan.completed" for e in found),
        )
        self.check("events", any(e["type"] == "plan.completed" for e in events), f"{len(events)}, plan.completed last")
        self.realtime_received(plan_id)
        return str(plan_id)

    def until(self, read: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 10.0) -> Any:
        """read() until done(what it read), for up to `seconds`; the last read."""
        deadline = time.monotonic() + seconds
        value = read()
        while not done(value) and time.monotonic() < deadline:
            time.sleep(0.5)
            value = read()
        return value

    def snapshot_link_downloads(self, plan_id: str) -> None:
        """The final snapshot's signed link (Supabase Storage's, or the local
        store's) downloads, and its bytes are the ones the audit row hashed.
        The upload follows its commit: wait for it a little."""
        trail = self.until(
            lambda: self.call("GET", f"/api/audit/{plan_id}", (200,)),
            lambda t: any(e["snapshot"] and e["snapshot"]["url"] for e in t["entries"][-1:]),
        )
        final = trail["entries"][-1]["snapshot"]
        if not final or not final["url"]:
            storage = self.http.get("/api/health").json().get("storage", {})
            self.check("snapshot link", False, f"not uploaded yet; storage says {json.dumps(storage)}")
            return
        url = final["url"] if final["url"].startswith("http") else self.base + final["url"]
        response = self.http.get(url)  # the link is its own credential: no token
        same = hashlib.sha256(response.content).hexdigest() == final["sha256"]
        self.check(
            "snapshot link downloads",
            response.status_code == 200 and same,
            f"{response.status_code}, {len(response.content)} bytes, sha256 {'matches' if same else 'differs'}",
        )

    def realtime_received(self, plan_id: str) -> None:
        """The plan's events reached Realtime: the rows Broadcast from
        Database wrote in realtime.messages, read with NOFX_SMOKE_DATABASE_URL
        (or DATABASE_URL). Without a readable database the check is skipped,
        and says so."""
        url = settings.env("NOFX_SMOKE_DATABASE_URL") or settings.env("DATABASE_URL")
        if not url:
            self.say("skip realtime: set NOFX_SMOKE_DATABASE_URL to read realtime.messages")
            return
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                events = [
                    r[0]
                    for r in conn.execute(
                        "SELECT event FROM realtime.messages WHERE topic = %s ORDER BY inserted_at",
                        (f"nofx:plan:{plan_id}",),
                    )
                ]
        except psycopg.Error as exc:
            self.say(f"skip realtime: realtime.messages is not readable here ({type(exc).__name__})")
            return
        self.check(
            "events reached Realtime", "plan.completed" in events, f"{len(events)} broadcasts on nofx:plan:{plan_id}"
        )


def main(surface: str, base_url: str) -> int:
    if surface not in SURFACES:
        print(f"unknown surface {surface!r}; one of {', '.join(SURFACES)}")
        return 2
    try:
        plan_id = Smoke(base_url).run()
    except SmokeFailed as failure:
        print(f"smoke test failed: {failure}")
        return 1
    print(f"smoke test passed (plan {plan_id})")
    return 0
