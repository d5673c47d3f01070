"""model_comparisons: one row per model per plan, written in the plan's
transaction, and read back as the plan endpoints' comparison summary."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from lib.llm.summary import ComparisonSummary, ModelComparisonView

INSERT = """
INSERT INTO public.model_comparisons (
  plan_id, provider, model, served_model, latency_ms, attempts, input_tokens, output_tokens, cost_usd, cost_note,
  price_source, price_date, score, valid, reasons, error, prompt_digest, proposal, best, adopted, comparison_ms)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def record(conn: Any, plan_id: str, comparison: Any) -> None:
    """`comparison` is a lib.llm.compare.Comparison (not imported: this module
    is on the read path too)."""
    rows = [
        (
            plan_id,
            o.provider,
            o.model,
            o.served_model,
            o.latency_ms,
            o.attempts,
            o.input_tokens,
            o.output_tokens,
            o.price.cost_usd,
            o.price.note,
            o.price.source,
            o.price.date,
            o.score,
            o.valid,
            json.dumps(o.reasons),
            o.error,
            comparison.prompt_digest,
            None if o.proposal is None else json.dumps(o.proposal),
            o.name == comparison.best,
            o.adopted,
            comparison.wall_ms,
        )
        for o in comparison.outcomes
    ]
    with conn.cursor() as cur:
        cur.executemany(INSERT, rows)


def load_comparison(conn: Any, plan_id: UUID | str) -> tuple[list[Any], list[tuple[str, list[list[str]]]]]:
    """A stored plan's comparison, for re-evaluation, in one read: its costs as
    the resource gate counts them (an unknown price stays unknown, with its
    reason), and each valid proposal's staging, by model name."""
    from lib.gates.resource import ModelCost

    rows = conn.execute(
        "SELECT provider, model, cost_usd::float8 AS cost_usd, cost_note, "
        "CASE WHEN valid AND proposal ? 'stages' THEN proposal->'stages' END AS stages "
        "FROM public.model_comparisons WHERE plan_id = %s ORDER BY id",
        (plan_id,),
    ).fetchall()
    costs = [ModelCost(f"{r['provider']}:{r['model']}", r["cost_usd"], r["cost_note"]) for r in rows]
    proposals = [(f"{r['provider']}:{r['model']}", r["stages"]) for r in rows if r["stages"] is not None]
    return costs, proposals


SUMMARY_ROWS = (
    "SELECT provider, model, served_model, latency_ms, attempts, input_tokens, output_tokens, cost_usd, cost_note, "
    "price_source, price_date, score, valid, reasons, error, prompt_digest, best, adopted, comparison_ms "
    "FROM public.model_comparisons WHERE plan_id = %s ORDER BY id"
)


def load_summary(conn: Any, plan_id: UUID | str) -> ComparisonSummary | None:
    return summary_of(conn.execute(SUMMARY_ROWS, (plan_id,)).fetchall())


def summary_of(rows: list[dict[str, Any]]) -> ComparisonSummary | None:
    """The comparison as the plan's answer shows it, from its SUMMARY_ROWS."""
    if not rows:
        return None
    models = [
        ModelComparisonView(
            model=f"{r['provider']}:{r['model']}",
            provider=r["provider"],
            served_model=r["served_model"],
            score=r["score"],
            valid=r["valid"],
            adopted=r["adopted"],
            latency_ms=r["latency_ms"],
            attempts=r["attempts"],
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cost_usd=None if r["cost_usd"] is None else float(r["cost_usd"]),
            cost_note=r["cost_note"],
            price_source=r["price_source"],
            price_date=r["price_date"],
            reasons=r["reasons"],
            error=r["error"],
        )
        for r in rows
    ]
    latencies = [m.latency_ms for m in models if m.latency_ms is not None]
    return ComparisonSummary(
        best_model=next((m.model for m, r in zip(models, rows, strict=True) if r["best"]), None),
        adopted_model=next((m.model for m in models if m.adopted), None),
        prompt_digest=rows[0]["prompt_digest"],
        wall_ms=rows[0]["comparison_ms"],
        slowest_ms=max(latencies, default=None),
        cost_usd=float(sum(r["cost_usd"] for r in rows if r["cost_usd"] is not None)),
        cost_complete=all(r["cost_usd"] is not None for r in rows),
        models=models,
    )
