"""What one call cost, from the provider's usage block and a maintained price
table (genai-prices). A model the table does not know is priced `None` with the
reason: never $0.

genai-prices keeps dated prices, so a row stores the table's version
(`price_source`) and the day whose prices were applied (`price_date`):
`calc_price(usage, model, provider_id=..., genai_request_timestamp=price_date)`
under that version gives the same figure again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class TokenUsage:
    """Input tokens include cached ones (what genai-prices expects); the cache
    counts say how many of them were read from or written to a prompt cache."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class Price:
    cost_usd: Decimal | None
    note: str | None
    source: str | None
    date: date | None


def table_source() -> str:
    import genai_prices
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    if snapshot.from_auto_update:
        return f"genai-prices {genai_prices.__version__} (table updated {snapshot.timestamp:%Y-%m-%d})"
    return f"genai-prices {genai_prices.__version__} (bundled table)"


def price_call(provider: str, model: str, usage: TokenUsage, when: datetime) -> Price:
    from genai_prices import Usage, calc_price

    source = table_source()
    counts = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cache_read_tokens:
        counts["cache_read_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        counts["cache_write_tokens"] = usage.cache_write_tokens
    try:
        calc = calc_price(Usage(**counts), model, provider_id=provider, genai_request_timestamp=when)
    except LookupError:
        return Price(None, f"{provider}:{model} is not in the price table ({source})", source, when.date())
    except ValueError as exc:  # usage the table cannot price (e.g. a unit it lacks)
        return Price(None, f"{provider}:{model} could not be priced: {exc}", source, when.date())
    return Price(calc.total_price, None, source, when.date())


def not_billed(reason: str) -> Price:
    """A call the provider never ran (not sent, or refused with an error
    status) costs nothing, and the note says why it is $0."""
    return Price(Decimal(0), reason, None, None)


def unknown(reason: str) -> Price:
    return Price(None, reason, None, None)
