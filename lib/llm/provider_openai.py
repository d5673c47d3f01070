"""OpenAI through the official SDK: Chat Completions with a strict JSON schema.

Imported only when a comparison names an openai: model (the SDK costs about
1.1 s to import). The SDK's own retries are off; lib.llm.retry decides.
"""

from __future__ import annotations

from typing import Any

import openai

from lib.llm import clients
from lib.llm.answer import Answer
from lib.llm.pricing import TokenUsage
from lib.llm.prompt import PROPOSAL_SCHEMA, Prompt
from lib.llm.retry import Attempted, call_with_retries, sdk_failures


def _error_text(exc: openai.APIStatusError) -> str:
    body: Any = exc.body  # the SDK hands over the body's "error" object
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])[:300]
    return exc.message[:300]


def _answer(completion: Any) -> Answer:
    usage = None
    if completion.usage is not None:
        details = completion.usage.prompt_tokens_details
        usage = TokenUsage(
            input_tokens=completion.usage.prompt_tokens,  # includes the cached ones
            output_tokens=completion.usage.completion_tokens,
            cache_read_tokens=(details.cached_tokens or 0) if details is not None else 0,
        )
    if not completion.choices:
        return Answer(None, usage, completion.model, "the response had no choices")
    choice = completion.choices[0]
    note = None
    if choice.message.refusal:
        note = f"the model refused: {choice.message.refusal[:300]}"
    elif choice.finish_reason == "length":
        note = "the answer was cut off at the token limit"
    return Answer(choice.message.content, usage, completion.model, note)


def ask(
    model: str, prompt: Prompt, *, api_key: str, base_url: str | None, budget_s: float, max_attempts: int
) -> tuple[Answer, Attempted]:
    client = clients.cached(openai.OpenAI, api_key, base_url)

    def send(timeout_s: float) -> Answer:
        with sdk_failures(openai, timeout_s, _error_text):
            completion = client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": prompt.system},
                    {"role": "user", "content": prompt.user},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "plan_proposal", "strict": True, "schema": PROPOSAL_SCHEMA},
                },
                max_completion_tokens=prompt.max_output_tokens,
                timeout=timeout_s,
            )
        return _answer(completion)

    return call_with_retries(send, budget_s=budget_s, max_attempts=max_attempts)
