"""Under concurrent load (a small run of bench/load_bench.py against the dev
server in its own process): nothing lost, no step run twice, every audit
chain intact. Timing is the benchmark's business; this checks correctness."""

from __future__ import annotations

from bench import load_bench
from bench.common import dev_server


def test_concurrent_plans_and_decisions_lose_nothing(fresh_database: str) -> None:
    with dev_server(fresh_database, threads=load_bench.CLIENTS) as (host, port):
        result = load_bench.run_against(fresh_database, host, port, plans=24, gated=4)
    for phase in ("plan", "execute", "approve"):
        _, _, statuses = result["phases"][phase]
        assert all(200 <= s < 300 for s in statuses), (phase, sorted(set(statuses)))
    checks = result["checks"]
    assert checks["plans_created"] == checks["plans_completed"] == 24
    assert checks["approvals_approved"] == checks["approvals_wanted"] == 96
    assert checks["steps"] == checks["steps_succeeded"] == checks["steps_run_once"] == 24 * 5
    assert checks["tool_runs"] == checks["tool_runs_distinct_steps"] == 24 * 5
    assert checks["chains"] >= 24 and checks["chains_broken"] == 0
    assert load_bench.failed_checks(checks) == []


def test_the_load_benchmark_names_what_went_wrong() -> None:
    good = {
        "plans_created": 2,
        "plans_wanted": 2,
        "plans_completed": 2,
        "approvals_approved": 4,
        "approvals_wanted": 4,
        "steps": 6,
        "steps_succeeded": 6,
        "steps_run_once": 6,
        "tool_runs": 6,
        "tool_runs_distinct_steps": 6,
        "chains_broken": 0,
    }
    assert load_bench.failed_checks(good) == []
    assert load_bench.failed_checks({**good, "tool_runs": 7}) == ["tool runs do not match steps one to one"]
    assert load_bench.failed_checks({**good, "chains_broken": 1}) == ["an audit chain is broken"]
    assert load_bench.failed_checks({**good, "plans_completed": 1}) == ["not every plan was created and completed"]
