"""What a provider said, in provider-neutral terms."""

from __future__ import annotations

from dataclasses import dataclass

from lib.llm.pricing import TokenUsage


@dataclass(frozen=True)
class Answer:
    text: str | None
    usage: TokenUsage | None  # None: the response carried no usage block
    served_model: str | None  # the model the provider says answered (often a dated snapshot)
    note: str | None = None  # e.g. a refusal, or an answer cut off at the token limit
