"""The provider adapters through the real openai and anthropic SDKs, pointed
(base_url) at the loopback server that speaks their wire formats: what is sent,
what is read back (usage included), retries, timeouts, refused connections,
and that the SDKs load only on this path."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from lib.llm import provider_anthropic, provider_openai
from lib.llm.calls import run_calls
from lib.llm.prompt import SYSTEM, Prompt
from lib.llm.refs import ModelRef
from lib.llm.retry import ProviderFailure
from lib.settings import ROOT
from tests.support.llm_server import LLMServer, Reply

PROMPT = Prompt(system=SYSTEM, user='{"items": [], "max_parallel": 2}', digest="0" * 64, items=2)
ANSWER = '{"stages": [["A"], ["B"]], "rationale": "B waits for A"}'


@pytest.fixture
def server():
    s = LLMServer()
    yield s
    s.close()


def ask_openai(server: LLMServer, budget_s: float = 5, attempts: int = 3, model: str = "gpt-4.1-mini"):
    return provider_openai.ask(
        model, PROMPT, api_key="sk-test", base_url=server.openai_url, budget_s=budget_s, max_attempts=attempts
    )


def ask_anthropic(server: LLMServer, budget_s: float = 5, attempts: int = 3):
    return provider_anthropic.ask(
        "claude-sonnet-4-6",
        PROMPT,
        api_key="sk-ant-test",
        base_url=server.anthropic_url,
        budget_s=budget_s,
        max_attempts=attempts,
    )


def test_openai_chat_completions_with_a_strict_schema_and_its_usage(server: LLMServer) -> None:
    server.script("openai", Reply(text=ANSWER, input_tokens=700, output_tokens=30, cache_read_tokens=512))
    answer, tried = ask_openai(server)
    assert answer.text == ANSWER and tried.attempts == 1 and answer.note is None
    assert answer.served_model == "gpt-4.1-mini-2025-04-14"
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cache_read_tokens) == (700, 30, 512)
    (seen,) = server.seen("openai")
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert [m["role"] for m in seen.body["messages"]] == ["system", "user"]
    assert seen.body["messages"][1]["content"] == PROMPT.user
    schema = seen.body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["required"] == ["stages", "rationale"]
    assert seen.body["max_completion_tokens"] == PROMPT.max_output_tokens


def test_anthropic_messages_with_a_json_schema_and_its_usage(server: LLMServer) -> None:
    server.script("anthropic", Reply(text=ANSWER, input_tokens=900, output_tokens=40, cache_read_tokens=100))
    answer, tried = ask_anthropic(server)
    assert answer.text == ANSWER and tried.attempts == 1
    # Anthropic reports cache reads apart; the total input is what is billed as input
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.cache_read_tokens) == (900, 40, 100)
    (seen,) = server.seen("anthropic")
    assert seen.body["system"] == SYSTEM and seen.body["messages"] == [{"role": "user", "content": PROMPT.user}]
    assert seen.body["output_config"]["format"]["type"] == "json_schema"
    assert seen.body["max_tokens"] == PROMPT.max_output_tokens and "anthropic-version" in seen.headers


@pytest.mark.parametrize(("provider", "stop"), [("openai", "length"), ("anthropic", "max_tokens")])
def test_an_answer_cut_off_at_the_token_limit_says_so(server: LLMServer, provider: str, stop: str) -> None:
    server.script(provider, Reply(text='{"stages": [["A"]', stop=stop))
    answer, _ = ask_openai(server) if provider == "openai" else ask_anthropic(server)
    assert answer.note == "the answer was cut off at the token limit"


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_429_is_retried_after_the_time_the_provider_asked_for(server: LLMServer, provider: str) -> None:
    server.script(provider, Reply(status=429, text="slow down", headers={"retry-after": "0.3"}), Reply(text=ANSWER))
    answer, tried = ask_openai(server) if provider == "openai" else ask_anthropic(server)
    assert answer.text == ANSWER and tried.attempts == 2 and tried.waited_s == pytest.approx(0.3)
    first, second = server.seen(provider)
    assert second.arrived - first.answered >= 0.3


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(server: LLMServer) -> None:
    server.script("openai", Reply(status=429, text="quota", headers={"retry-after": "60"}), Reply(text=ANSWER))
    with pytest.raises(ProviderFailure) as caught:
        ask_openai(server, budget_s=2)
    assert caught.value.message.startswith("HTTP 429: quota (not retried: the provider asked to retry after 60.0 s")
    assert len(server.seen("openai")) == 1


def test_a_4xx_is_final(server: LLMServer) -> None:
    server.script("anthropic", Reply(status=400, text="output_config: unsupported for this model"))
    with pytest.raises(ProviderFailure) as caught:
        ask_anthropic(server)
    assert caught.value.message == "HTTP 400: output_config: unsupported for this model"
    assert caught.value.attempts == 1 and len(server.seen("anthropic")) == 1


def test_a_slow_provider_times_out_within_the_budget(server: LLMServer) -> None:
    server.script("openai", Reply(text=ANSWER, delay_s=3))
    with pytest.raises(ProviderFailure) as caught:
        ask_openai(server, budget_s=0.5)
    assert caught.value.kind == "timeout" and caught.value.attempts == 1
    assert caught.value.message == "timed out after 0.5 s"


def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ProviderFailure) as caught:
        provider_openai.ask(
            "gpt-4.1-mini", PROMPT, api_key="k", base_url=f"http://127.0.0.1:{port}/v1", budget_s=5, max_attempts=2
        )
    assert caught.value.kind == "connection" and caught.value.attempts == 2
    assert caught.value.message.startswith("connection failed")


def test_run_calls_records_what_was_not_sent_and_why(server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    server.script("openai", Reply(text=ANSWER))
    refs = [ModelRef("openai", "gpt-4.1-mini"), ModelRef("anthropic", "claude-sonnet-4-6")]
    (sent, unsent), wall_ms = run_calls(refs, PROMPT)
    assert sent.answer is not None and sent.sent and sent.attempts == 1 and sent.latency_ms is not None
    assert not unsent.sent and unsent.failure is not None and unsent.attempts == 0
    assert unsent.failure.message == "not sent: ANTHROPIC_API_KEY is not set"
    assert wall_ms >= 0

    big = Prompt(system=SYSTEM, user="{}", digest="0" * 64, items=501)
    (too_big,), _ = run_calls(refs[:1], big)
    assert not too_big.sent and "the plan has 501 items; a comparison sends at most 500" in too_big.failure.message
    assert len(server.seen()) == 1


CHILD = """
import json, sys
import lib.planner.create, lib.planner.load, lib.planner.views, lib.planner.write
import lib.llm.compare, lib.llm.calls, lib.llm.store, lib.llm.pricing
before = [m for m in ("openai", "anthropic") if m in sys.modules]
from lib.llm.calls import run_calls
from lib.llm.prompt import SYSTEM, Prompt
from lib.llm.refs import ModelRef
run_calls([ModelRef("openai", "gpt-4.1-mini")], Prompt(SYSTEM, "{}", "0" * 64, 1))
print(json.dumps({"before": before, "after": [m for m in ("openai", "anthropic") if m in sys.modules]}))
"""


def test_the_sdks_load_only_for_the_providers_a_comparison_calls() -> None:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env={**env, "NOFX_LLM_MAX_ATTEMPTS": "1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"before": [], "after": ["openai"]}


def test_a_call_that_outlives_its_budget_is_cut_off(server: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each byte arrives well within the HTTP read timeout, so only the
    # comparison's own deadline (budget plus a grace second) ends the wait.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("NOFX_LLM_TIMEOUT_SECONDS", "1")
    server.script("openai", Reply(text=ANSWER, drip_s=0.2))
    (record,), wall_ms = run_calls([ModelRef("openai", "gpt-4.1-mini")], PROMPT)
    assert record.answer is None and record.failure is not None and record.failure.kind == "timeout"
    assert record.failure.message == "no answer within the call's 1 s budget"
    assert record.latency_ms == 1000 and wall_ms >= 1000
