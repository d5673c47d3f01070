"""Planner: pure planning time and the endpoint end to end (HTTP in, persisted,
event emitted) for generated backlogs, beside the floor measured in the same
run: networkx's topological generations alone, plus a COPY of the same step rows.

Measured side by side: each round takes one sample of each (pure plan, the
networkx floor, the COPY floor, one request end to end), so a slow spell of
this shared machine lands on all of them rather than on one block of samples.
A request meets an idle server: the one before it has finished the work it
does after answering (freeing the plan, resuming the garbage collector).

    python -m bench.planner_bench [sizes...]
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import networkx as nx
import psycopg

from bench.common import dev_server, median_ms, request, scratch_database, timed, token
from lib.planner import BacklogItem, PlanOptions, build_plan, write
from lib.planner import load as planner_load
from lib.runtime import gc_paused

RUNS = {1_000: 7, 10_000: 5, 100_000: 3}
PACKS = ["payments", "onboarding", "analytics", "platform"]
TOOLS = ["ci.test", "build.image", "deploy.staging", "builtin.echo", "notify.slack"]


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n items, about three dependencies each on earlier items (a DAG)."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)]
    rows = []
    for i, item_id in enumerate(ids):
        window = ids[max(0, i - 200) : i]
        deps = rng.sample(window, min(len(window), 3))
        rows.append(
            {
                "id": item_id,
                "key": f"GEN-{i}",
                "title": f"generated item {i}",
                "pack_id": PACKS[i % len(PACKS)],
                "tool_id": TOOLS[rng.randrange(len(TOOLS))],
                "inputs": {"n": i, "service": f"svc-{i % 40}"},
                "priority": rng.randint(1, 5),
                "depends_on": deps,
            }
        )
    return rows


def load(url: str, rows: list[dict[str, Any]]) -> None:
    seed_sql = (__import__("lib.settings", fromlist=["ROOT"]).ROOT / "supabase" / "seed.sql").read_text()
    with psycopg.connect(url) as conn:
        conn.execute(seed_sql)  # the tool registry and packs
        conn.execute("DELETE FROM backlog_items")
        with conn.cursor().copy(
            "COPY backlog_items (id, key, title, pack_id, tool_id, inputs, priority, depends_on) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row(
                    (
                        r["id"],
                        r["key"],
                        r["title"],
                        r["pack_id"],
                        r["tool_id"],
                        json.dumps(r["inputs"]),
                        r["priority"],
                        r["depends_on"],
                    )
                )
        conn.commit()
        conn.execute("ANALYZE")


def floor_networkx(rows: list[dict[str, Any]]) -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(r["id"] for r in rows)
    graph.add_edges_from((d, r["id"]) for r in rows for d in r["depends_on"])
    list(nx.topological_generations(graph))


def floor_copy(conn: psycopg.Connection, draft: Any) -> float:
    """The endpoint's own COPY of the steps, rows encoded as it encodes them
    (write.copy_steps), into a temporary table with plan_steps' columns and
    indexes (no foreign key, no WAL: a floor). Seconds."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS floor_steps (LIKE plan_steps INCLUDING ALL)")
    conn.execute("TRUNCATE floor_steps")
    start = time.perf_counter()
    write.copy_steps(conn, str(uuid.uuid4()), draft, table="floor_steps")
    return time.perf_counter() - start


def one(fn: Callable[[], Any]) -> float:
    """One sample, seconds: rounds interleave the measures (see the module's docstring)."""
    return timed(fn, 1, warmup=0)[0]


SETTLE_SECONDS = 0.5  # generous: freeing a 100,000-step plan after answering takes ~0.3 s


def measure(n: int) -> dict[str, Any]:
    rows = generate(n)
    backlog = {r["id"]: BacklogItem.model_validate({**r, "status": "open"}) for r in rows}
    runs = RUNS.get(n, 3)
    with scratch_database(f"plan{n}") as url:
        load(url, rows)
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            tools, stats = planner_load.load_tools(conn), planner_load.load_stats(conn)
        draft = build_plan(backlog, tools, stats, PlanOptions())
        planner_token = token("planner")
        counter = iter(range(10**6))
        samples: dict[str, list[float]] = {"pure": [], "nx": [], "copy": [], "e2e": []}
        with dev_server(url) as (host, port), psycopg.connect(url, prepare_threshold=None) as floor_conn:

            def call() -> None:
                body = {"options": {"title": f"bench {next(counter)}"}}
                status, answer = request(host, port, "POST", "/api/auto-planner/plan", body, planner_token)
                assert status == 201, (status, answer)
                assert answer["plan"]["totals"]["steps"] == n

            call()  # warm: imports, the policy engine, the pool
            for _ in range(runs):
                # pure and networkx as the endpoint runs them: with the collector paused
                with gc_paused():
                    samples["pure"].append(one(lambda: build_plan(backlog, tools, stats, PlanOptions())))
                    samples["nx"].append(one(lambda: floor_networkx(rows)))
                samples["copy"].append(floor_copy(floor_conn, draft))
                time.sleep(SETTLE_SECONDS)
                samples["e2e"].append(one(call))
                time.sleep(SETTLE_SECONDS)
            floor_conn.rollback()
    medians = {name: median_ms(values) for name, values in samples.items()}
    return {
        "items": n,
        "pure_ms": medians["pure"],
        "e2e_ms": medians["e2e"],
        "nx_floor_ms": medians["nx"],
        "copy_floor_ms": medians["copy"],
        "ratio": medians["e2e"] / (medians["nx"] + medians["copy"]),
        "runs": runs,
    }


def run(sizes: list[int]) -> list[dict[str, Any]]:
    return [measure(n) for n in sizes]


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| items | pure plan (median) | endpoint end to end (median) | floor: nx generations + COPY "
        "| end to end / floor | runs |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['items']:,} | {r['pure_ms']:.0f} ms | {r['e2e_ms']:.0f} ms | "
            f"{r['nx_floor_ms']:.0f} + {r['copy_floor_ms']:.0f} ms | {r['ratio']:.2f}× | {r['runs']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
    print(table(run(sizes)))
