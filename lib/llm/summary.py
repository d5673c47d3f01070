"""The comparison as the plan endpoints show it (pydantic only: imported by
lib.planning at module load, so nothing heavy here)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class ModelComparisonView(BaseModel):
    model: str = Field(description='"provider:model" as asked for in options.compare_models')
    provider: str
    served_model: str | None = Field(default=None, description="the model the provider says answered")
    score: int = Field(ge=0, le=100)
    valid: bool = Field(description="the proposal respects every dependency and places every item exactly once")
    adopted: bool
    latency_ms: int | None = Field(description="from the first attempt to the answer, retries included")
    attempts: int
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None = Field(description="null when the price is unknown (cost_note says why), never 0 for that")
    cost_note: str | None
    price_source: str | None
    price_date: date | None
    reasons: list[str]
    error: str | None


class ComparisonSummary(BaseModel):
    best_model: str | None = Field(description="the valid proposal with the highest score; null when none is valid")
    adopted_model: str | None = Field(description="the model whose staging the plan uses (adopt_best_model)")
    prompt_digest: str = Field(description="sha256 of the prompt every model was sent")
    wall_ms: int = Field(description="the whole comparison, calls running concurrently")
    slowest_ms: int | None = Field(description="the slowest single call")
    cost_usd: float = Field(description="the known cost of all calls")
    cost_complete: bool = Field(description="false when a call's price is unknown (left out of cost_usd)")
    models: list[ModelComparisonView]
