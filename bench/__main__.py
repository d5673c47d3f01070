"""`python -m bench` (make bench): every benchmark, one after the other, in one
run, each printing its table. The README carries the latest output.

    python -m bench            planner and gates at 1k/10k, approvals, load, execution,
                               round trips, cold imports
    python -m bench --full     also planner and gates at 100,000 (about two minutes more)

Each benchmark makes and drops its own database on DATABASE_URL's server
(else the embedded PostgreSQL) and starts its own dev server when it needs one.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import (
    approvals_bench,
    audit_bench,
    cold_imports,
    execution_bench,
    gates_bench,
    load_bench,
    planner_bench,
    queue_bench,
    roundtrips,
)


def section(title: str) -> float:
    print(f"\n## {title}\n", flush=True)
    return time.perf_counter()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="include the 100,000-item planner run")
    args = parser.parse_args()
    started = time.perf_counter()

    section("Planner (pure, and the endpoint end to end, beside the floor)")
    sizes = [1_000, 10_000] + ([100_000] if args.full else [])
    print(planner_bench.table(planner_bench.run(sizes)), flush=True)

    section("Gates")
    print(gates_bench.table([gates_bench.measure(n) for n in sizes]), flush=True)

    section("Approval decisions (16 clients over HTTP, beside the raw row-locked UPDATE)")
    print(approvals_bench.table(approvals_bench.run(1000)), flush=True)

    section("Load (200 plans, 1,000 approval decisions, 16 clients)")
    load = load_bench.run(200, 5)
    print(load_bench.report(load), flush=True)
    load_problems = load_bench.failed_checks(load["checks"])

    section("Execution: answer time with a slow tool, fan-out across invocations")
    print(execution_bench.answer_table(execution_bench.answer()), flush=True)
    print(execution_bench.fan_out_table(execution_bench.fan_out()), flush=True)

    section("Database round trips per request (each one delayed 5 ms by a proxy)")
    print(roundtrips.table(roundtrips.run(15)), flush=True)

    section("Audit trail reads at 20,000 entries (checkpoint or whole chain)")
    print(audit_bench.table(audit_bench.run(20_000)), flush=True)

    section("The approval queue at 500 pending (pages, search, the badge; the context's price)")
    print(queue_bench.table(queue_bench.run(500)), flush=True)

    section("Cold import of every api/ module (fresh process, median of 7)")
    cold_imports.main(["--runs", "7"])

    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s")
    if load_problems:
        print("load checks failed: " + "; ".join(load_problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
