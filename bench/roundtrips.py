"""Round trips: what each endpoint costs once the database is a network hop away.

    python -m bench.roundtrips [samples]

Starts a TCP proxy that delays each direction by a set time and runs the dev
server's database traffic through it. One client calls each endpoint in
rounds, alternating a round at 0 ms and a round at 1 ms one way (2 ms a round
trip, what a Vercel function beside its Supabase database sees), and prints
each endpoint's median at both, and the round trips that implies
((median at 1 ms - median at 0 ms) / 2 ms), beside the budget.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from bench.common import dev_server, request, scratch_database, token
from bench.delay_proxy import DelayProxy

ONE_WAY = 0.001
# a longer hop, only to count round trips precisely (the 1 ms figures are
# within a few tenths of a millisecond of the machine's noise)
COUNTING = 0.005
# endpoint -> the most round trips its answer may cost (issue 17)
BUDGETS = {
    "GET /api/health": 1,
    "GET /api/plans/:id": 2,
    "GET /api/approvals/:id": 2,
    "POST /api/backlog": 4,
    "POST /api/auto-planner/plan (2 items)": 8,
    "POST /api/auto-planner/execute (answer)": 5,
    "POST /api/approvals/:id (decision)": 4,
    "GET /api/approvals (page of 50)": 2,
    "GET /api/config/flags": 2,
    "POST /api/automation/override-requests": 2,
    "POST /api/automation/override-requests/:id (decline)": 2,
}


def _through(proxy: DelayProxy, url: str) -> str:
    """The database URL with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
    rest = "&".join(f"{k}={v}" for k, v in query.items())
    return urlunsplit((parts.scheme, netloc, parts.path, rest, ""))


def _upstream(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if "host" in query:  # a Unix socket directory (the embedded PostgreSQL)
        return query["host"], int(query.get("port", 5432))
    return parts.hostname or "127.0.0.1", parts.port


class Fixtures:
    """What the measured calls need, made ahead through the server at 0 ms."""

    def __init__(self, url: str, host: str, port: int, rounds: int) -> None:
        self.url, self.host, self.port = url, host, port
        self.planner, self.approver, self.viewer = token("planner"), token("approver"), token("viewer")
        self.admin = token("admin")
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            conn.execute(
                "INSERT INTO tools (id, name, kind, config, cost_model) VALUES "
                "('rt.echo', 'echo', 'builtin', '{\"action\": \"echo\"}', '{\"usd_per_call\": 0}') "
                "ON CONFLICT DO NOTHING"
            )
            conn.execute(
                "INSERT INTO tools (id, name, kind, config, sensitive, approval_policy, cost_model) VALUES "
                "('rt.gate', 'gate', 'builtin', '{\"action\": \"echo\"}', true, "
                '\'{"required_approvals": 1, "timeout_seconds": 3600}\', \'{"usd_per_call": 0}\') '
                "ON CONFLICT DO NOTHING"
            )
        self.plan_id = self.plan(self.items("rt", 2))
        self.item_pairs = [self.items(f"rtp{n}", 2) for n in range(rounds * 3)]
        self.plans_to_execute = [self.plan(self.items(f"rte{n}", 2)) for n in range(rounds * 3)]
        self.approvals = self.pending_approvals(rounds * 3)
        self.one_approval = self.approvals[-1]
        # a plan each to ask an override for, and an open request each to decline
        self.plans_to_ask = [self.plan(self.items(f"rto{n}", 1)) for n in range(rounds * 3)]
        self.requests = [self.ask(plan_id, "cancel") for plan_id in self.plans_to_ask]

    def call(self, method: str, path: str, body: Any = None, who: str | None = None) -> tuple[int, Any]:
        return request(self.host, self.port, method, path, body, who or self.planner)

    def items(self, pack: str, n: int, tool: str = "rt.echo") -> list[str]:
        made = [{"key": f"{pack}-{i}-{uuid.uuid4().hex[:6]}", "title": f"item {i}", "tool_id": tool} for i in range(n)]
        status, body = self.call("POST", "/api/backlog", {"pack_id": pack, "items": made})
        assert status == 201, body
        return [i["id"] for i in body["items"]]

    def plan(self, ids: list[str]) -> str:
        status, body = self.call("POST", "/api/auto-planner/plan", {"backlog_item_ids": ids})
        assert status == 201, body
        return str(body["plan"]["id"])

    def ask(self, plan_id: str, action: str) -> str:
        status, body = self.call(
            "POST", "/api/automation/override-requests", {"plan_id": plan_id, "action": action, "reason": "bench"}
        )
        assert status == 201, body
        return str(body["id"])

    def pending_approvals(self, n: int) -> list[str]:
        for k in range(n):
            plan_id = self.plan(self.items(f"rta{k}", 1, tool="rt.gate"))
            self.call("POST", "/api/auto-planner/execute", {"plan_id": plan_id})
        deadline = time.monotonic() + 60
        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            while True:
                rows = conn.execute(
                    "SELECT id FROM approvals WHERE status = 'pending' ORDER BY requested_at"
                ).fetchall()
                if len(rows) >= n or time.monotonic() > deadline:
                    return [str(r["id"]) for r in rows]
                time.sleep(0.05)


def calls(f: Fixtures) -> dict[str, Callable[[], tuple[int, Any]]]:
    pairs, executes, approvals = iter(f.item_pairs), iter(f.plans_to_execute), iter(f.approvals)
    asks, requests = iter(f.plans_to_ask), iter(f.requests)

    def backlog() -> tuple[int, Any]:
        key = uuid.uuid4().hex[:8]
        items = [{"key": f"rtb-{key}-{i}", "title": "t", "tool_id": "rt.echo"} for i in range(2)]
        return f.call("POST", "/api/backlog", {"pack_id": "rtb", "items": items})

    return {
        "GET /api/health": lambda: f.call("GET", "/api/health"),
        "GET /api/plans/:id": lambda: f.call("GET", f"/api/plans/{f.plan_id}", who=f.viewer),
        "GET /api/approvals/:id": lambda: f.call("GET", f"/api/approvals/{f.one_approval}", who=f.viewer),
        "POST /api/backlog": backlog,
        "POST /api/auto-planner/plan (2 items)": lambda: f.call(
            "POST", "/api/auto-planner/plan", {"backlog_item_ids": next(pairs)}
        ),
        "POST /api/auto-planner/execute (answer)": lambda: f.call(
            "POST", "/api/auto-planner/execute", {"plan_id": next(executes)}
        ),
        "POST /api/approvals/:id (decision)": lambda: f.call(
            "POST", f"/api/approvals/{next(approvals)}", {"decision": "approve"}, who=f.approver
        ),
        "GET /api/approvals (page of 50)": lambda: f.call("GET", "/api/approvals?limit=50", who=f.viewer),
        "GET /api/config/flags": lambda: f.call("GET", "/api/config/flags", who=f.viewer),
        "POST /api/automation/override-requests": lambda: f.call(
            "POST", "/api/automation/override-requests", {"plan_id": next(asks), "reason": "bench"}
        ),
        "POST /api/automation/override-requests/:id (decline)": lambda: f.call(
            "POST", f"/api/automation/override-requests/{next(requests)}", {"decision": "decline", "reason": "not now"},
            who=f.admin,
        ),
    }


def run(rounds: int = 15) -> dict[str, tuple[float, float, float]]:
    """Per endpoint: the median ms at 0 ms, at 1 ms and at 5 ms one way."""
    with scratch_database("roundtrips") as url:
        proxy = DelayProxy(*_upstream(url)).start()
        try:
            with dev_server(_through(proxy, url), threads=4) as (host, port):
                fixtures = Fixtures(url, host, port, rounds)
                measured = calls(fixtures)
                samples = {name: {0.0: [], ONE_WAY: [], COUNTING: []} for name in measured}
                for _ in range(rounds):
                    for delay in (0.0, ONE_WAY, COUNTING):
                        proxy.delay = delay
                        for name, call in measured.items():
                            started = time.perf_counter()
                            status, body = call()
                            took = time.perf_counter() - started
                            assert status < 400 or status == 503, (name, status, body)
                            samples[name][delay].append(took)
                proxy.delay = 0.0
        finally:
            proxy.stop()
    return {
        name: tuple(statistics.median(s[d]) * 1000 for d in (0.0, ONE_WAY, COUNTING)) for name, s in samples.items()
    }


def table(results: dict[str, tuple[float, ...]]) -> str:
    lines = [
        "| endpoint | 0 ms | 1 ms one way | implied round trips (1 ms) | counted at 5 ms | budget |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (fast, slow, slower) in results.items():
        trips = (slow - fast) / (2 * ONE_WAY * 1000)
        counted = (slower - fast) / (2 * COUNTING * 1000)
        lines.append(f"| {name} | {fast:.1f} ms | {slow:.1f} ms | {trips:.1f} | {counted:.1f} | ≤ {BUDGETS[name]} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 15
    print(table(run(rounds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
