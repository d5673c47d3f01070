"""Anthropic through the official SDK: the Messages API with a JSON schema
output format.

Imported only when a comparison names an anthropic: model (the SDK costs
about 1.8 s to import). The SDK's own retries are off; lib.llm.retry decides.
"""

from __future__ import annotations

from typing import Any

import anthropic

from lib.llm import clients
from lib.llm.answer import Answer
from lib.llm.pricing import TokenUsage
from lib.llm.prompt import PROPOSAL_SCHEMA, Prompt
from lib.llm.retry import Attempted, call_with_retries, sdk_failures


def _error_text(exc: anthropic.APIStatusError) -> str:
    body: Any = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        return str(body["error"]["message"])[:300]
    return exc.message[:300]


def _answer(message: Any) -> Answer:
    u = message.usage
    cache_write = u.cache_creation_input_tokens or 0
    cache_read = u.cache_read_input_tokens or 0
    usage = TokenUsage(
        # Anthropic counts cache reads and writes apart from input_tokens
        input_tokens=u.input_tokens + cache_write + cache_read,
        output_tokens=u.output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    text = "".join(block.text for block in message.content if block.type == "text") or None
    note = None
    if message.stop_reason == "max_tokens":
        note = "the answer was cut off at the token limit"
    elif message.stop_reason == "refusal":
        note = "the model refused"
    return Answer(text, usage, message.model, note)


def ask(
    model: str, prompt: Prompt, *, api_key: str, base_url: str | None, budget_s: float, max_attempts: int
) -> tuple[Answer, Attempted]:
    client = clients.cached(anthropic.Anthropic, api_key, base_url)

    def send(timeout_s: float) -> Answer:
        with sdk_failures(anthropic, timeout_s, _error_text):
            message = client.messages.create(
                model=model,
                max_tokens=prompt.max_output_tokens,
                system=prompt.system,
                messages=[{"role": "user", "content": prompt.user}],
                output_config={"format": {"type": "json_schema", "schema": PROPOSAL_SCHEMA}},
                timeout=timeout_s,
            )
        return _answer(message)

    return call_with_retries(send, budget_s=budget_s, max_attempts=max_attempts)
