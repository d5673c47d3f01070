"""The comparison: ask every model (lib.llm.calls), then, purely, price,
check, score and rank what came back, evaluate each valid proposal through the
gates, and adopt the best one when asked.

    comparison = compare(draft, refs, max_parallel)          # network
    comparison = assemble(draft, prompt, records, ...)       # pure, for tests
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from lib.gates.resource import ModelCost
from lib.llm import pricing
from lib.llm.adopt import adopt_checked
from lib.llm.calls import CallRecord
from lib.llm.prompt import Prompt, build_prompt
from lib.llm.proposal import check_proposal, parse_proposal
from lib.llm.refs import ModelRef
from lib.llm.score import score_invalid, score_unreadable, score_valid
from lib.llm.summary import ComparisonSummary, ModelComparisonView
from lib.planner.models import PlanDraft

RAW_KEPT = 4000  # characters of an unreadable answer kept on its row


@dataclass(frozen=True)
class ModelOutcome:
    """One model's row of model_comparisons."""

    provider: str
    model: str
    latency_ms: int | None
    attempts: int
    input_tokens: int | None
    output_tokens: int | None
    price: pricing.Price
    score: int
    valid: bool
    reasons: list[str]
    error: str | None
    proposal: dict[str, Any] | None
    served_model: str | None = None
    stages: list[list[str]] | None = None  # set only for a valid proposal
    adopted: bool = False
    # a valid proposal's plan: the draft restaged per `stages` (adopt), made once
    # for the score and reused for the gates and adoption
    plan: PlanDraft | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"

    def view(self) -> ModelComparisonView:
        cost = self.price.cost_usd
        return ModelComparisonView(
            model=self.name,
            provider=self.provider,
            served_model=self.served_model,
            score=self.score,
            valid=self.valid,
            adopted=self.adopted,
            latency_ms=self.latency_ms,
            attempts=self.attempts,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=None if cost is None else float(cost),
            cost_note=self.price.note,
            price_source=self.price.source,
            price_date=self.price.date,
            reasons=self.reasons,
            error=self.error,
        )


@dataclass(frozen=True)
class Comparison:
    prompt_digest: str
    wall_ms: int
    outcomes: list[ModelOutcome]
    best: str | None
    adopted: str | None = None
    max_parallel: int = 8

    def valid(self) -> list[ModelOutcome]:
        return [o for o in self.outcomes if o.valid]

    def model_costs(self) -> list[ModelCost]:
        """What the resource gate counts: every call, an unknown price as unknown."""
        return [
            ModelCost(o.name, None if o.price.cost_usd is None else float(o.price.cost_usd), o.price.note)
            for o in self.outcomes
        ]

    def evaluate(self, evaluate: Callable[[PlanDraft], Any]) -> list[tuple[str, Any]]:
        """Gate verdicts per valid proposal, each evaluated as the plan it would be."""
        return [(o.name, evaluate(self.staged(o))) for o in self.valid()]

    @staticmethod
    def staged(outcome: ModelOutcome) -> PlanDraft:
        """The plan a valid proposal would be (restaged from the draft the comparison was assembled for)."""
        assert outcome.valid and outcome.plan is not None
        return outcome.plan

    def adopt_best(self, draft: PlanDraft) -> tuple[PlanDraft, Comparison]:
        """The plan restaged per the best valid proposal, and this comparison
        marked accordingly; `draft` (the deterministic plan the comparison was
        assembled for) when no proposal is valid."""
        best = next((o for o in self.outcomes if o.name == self.best and o.valid), None)
        if best is None:
            return draft, self
        outcomes = [replace(o, adopted=o is best) for o in self.outcomes]
        return self.staged(best), replace(self, outcomes=outcomes, adopted=best.name)

    def summary(self) -> ComparisonSummary:
        costs = [o.price.cost_usd for o in self.outcomes]
        latencies = [o.latency_ms for o in self.outcomes if o.latency_ms is not None]
        return ComparisonSummary(
            best_model=self.best,
            adopted_model=self.adopted,
            prompt_digest=self.prompt_digest,
            wall_ms=self.wall_ms,
            slowest_ms=max(latencies, default=None),
            cost_usd=float(sum((c for c in costs if c is not None), Decimal(0))),
            cost_complete=all(c is not None for c in costs),
            models=[o.view() for o in self.outcomes],
        )


def _price(record: CallRecord) -> pricing.Price:
    if record.answer is not None:
        if record.answer.usage is None:
            return pricing.unknown("the response carried no usage block")
        return pricing.price_call(record.ref.provider, record.ref.model, record.answer.usage, record.started_at)
    failure = record.failure
    assert failure is not None
    if not record.sent:
        return pricing.not_billed(failure.message)
    if failure.kind == "status":
        return pricing.not_billed(f"not billed: the provider refused the call (HTTP {failure.status})")
    return pricing.unknown(f"unknown: the call ended ({failure.kind}) before any usage was reported")


def _outcome(draft: PlanDraft, record: CallRecord, price: pricing.Price) -> ModelOutcome:
    """Everything but the score of a valid proposal, whose cost part needs
    the whole comparison."""
    ref, answer = record.ref, record.answer
    outcome = ModelOutcome(
        provider=ref.provider,
        model=ref.model,
        latency_ms=record.latency_ms,
        attempts=record.attempts,
        input_tokens=None,
        output_tokens=None,
        price=price,
        score=0,
        valid=False,
        reasons=[],
        error=None,
        proposal=None,
    )
    if answer is None:
        assert record.failure is not None
        return replace(outcome, reasons=["no proposal: the call failed"], error=record.failure.message)
    outcome = replace(
        outcome,
        input_tokens=answer.usage.input_tokens if answer.usage else None,
        output_tokens=answer.usage.output_tokens if answer.usage else None,
        served_model=answer.served_model,
    )
    notes = [answer.note] if answer.note else []
    parsed = parse_proposal(answer.text)
    if parsed.stages is None:
        unreadable = score_unreadable(parsed.problem or "unreadable")
        return replace(
            outcome, reasons=notes + unreadable.reasons, proposal={"unreadable": (answer.text or "")[:RAW_KEPT]}
        )
    check = check_proposal(draft, parsed.stages)
    if not check.valid:
        invalid = score_invalid(check)
        return replace(outcome, score=invalid.score, reasons=notes + invalid.reasons, proposal=parsed.as_json())
    return replace(outcome, valid=True, reasons=notes, proposal=parsed.as_json(), stages=parsed.stages)


def _rank(outcome: ModelOutcome) -> tuple[Any, ...]:
    cost = outcome.price.cost_usd
    # best first: score, then a known and lower cost, then lower latency, then name
    return (-outcome.score, cost is None, cost or 0, outcome.latency_ms or 0, outcome.name)


def assemble(
    draft: PlanDraft, prompt: Prompt, records: list[CallRecord], max_parallel: int, wall_ms: int
) -> Comparison:
    outcomes = [_outcome(draft, r, _price(r)) for r in records]
    priced = [o.price.cost_usd for o in outcomes if o.valid and o.price.cost_usd is not None]
    cheapest = min(priced, default=None)
    scored = []
    for o in outcomes:
        if o.valid and o.stages is not None:
            staged = adopt_checked(draft, o.stages, max_parallel)  # _outcome found it valid for this draft
            s = score_valid(draft, o.stages, staged, o.price.cost_usd, cheapest, max_parallel)
            o = replace(o, score=s.score, reasons=o.reasons + s.reasons, plan=staged)
        scored.append(o)
    valid = sorted((o for o in scored if o.valid), key=_rank)
    return Comparison(
        prompt_digest=prompt.digest,
        wall_ms=wall_ms,
        outcomes=scored,
        best=valid[0].name if valid else None,
        max_parallel=max_parallel,
    )


def compare(draft: PlanDraft, refs: list[ModelRef], max_parallel: int) -> Comparison:
    from lib.llm.calls import run_calls

    prompt = build_prompt(draft, max_parallel)
    records, wall_ms = run_calls(refs, prompt)
    return assemble(draft, prompt, records, max_parallel, wall_ms)
