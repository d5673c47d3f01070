"""Gates: time to evaluate all four gates (and each alone) on generated plans
of 1,000 and 10,000 steps, with the seed's tool registry and policies.

    python -m bench.gates_bench [sizes...]
"""

from __future__ import annotations

import random
import sys
from typing import Any

from bench.common import median_ms, timed
from bench.planner_bench import generate
from lib.gates import compliance, resource, risk, structural
from lib.gates.evaluate import GateContext, evaluate_gates
from lib.planner import BacklogItem, PlanOptions, Tool, build_plan
from lib.runtime import gc_paused

TOOLS = {
    "ci.test": Tool(id="ci.test", category="test", cost_model={"usd_per_minute": 0.008}, default_duration_ms=240_000),
    "build.image": Tool(id="build.image", category="build", cost_model={"usd_per_minute": 0.012}),
    "deploy.staging": Tool(
        id="deploy.staging",
        category="deploy",
        mutating=True,
        rollback_template={"inputs": {"service": "{{inputs.service}}"}},
        cost_model={"usd_per_call": 0.05},
    ),
    "builtin.echo": Tool(id="builtin.echo", cost_model={"usd_per_call": 0}),
    "notify.slack": Tool(id="notify.slack", category="notify"),
}
PRICES = {
    "usd_per_gb_month_database": 0.125,
    "usd_per_gb_month_storage": 0.021,
    "usd_per_million_invocations": 2.0,
    "bytes_per_row": 400,
}


def draft_of(n: int) -> Any:
    rng = random.Random(11)
    rows = generate(n)
    for r in rows:  # some variety for the policies: environments and tags
        r["environment"] = rng.choice([None, "staging", "production"])
        r["tags"] = rng.choice([[], ["compliance:sox"]])
    backlog = {r["id"]: BacklogItem.model_validate({**r, "status": "open"}) for r in rows}
    return build_plan(backlog, TOOLS, {}, PlanOptions())


def measure(n: int, runs: int = 7) -> dict[str, Any]:
    draft = draft_of(n)
    policies = compliance.load_policy_set()
    compliance.engine_for(policies)  # compile outside the timing, as a warm instance would have
    ctx = GateContext(tools=TOOLS, settings={"gates.resource.supabase_prices": PRICES}, policies=policies)
    with gc_paused():
        row = {
            "steps": n,
            "structural": median_ms(timed(lambda: structural.evaluate(draft), runs)),
            "risk": median_ms(timed(lambda: risk.evaluate(draft, TOOLS), runs)),
            "compliance": median_ms(
                timed(lambda: compliance.evaluate(draft, TOOLS, ctx.options, ctx.settings, ctx.now, policies), runs)
            ),
            "resource": median_ms(timed(lambda: resource.evaluate(draft, None, 250.0, PRICES), runs)),
            "all": median_ms(timed(lambda: evaluate_gates(draft, ctx), runs)),
        }
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| steps | structural | risk | compliance (Rego) | resource | all four (median) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['steps']:,} | {r['structural']:.1f} ms | {r['risk']:.1f} ms | {r['compliance']:.1f} ms | "
            f"{r['resource']:.1f} ms | {r['all']:.1f} ms |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 10_000]
    print(table([measure(n) for n in sizes]))
