"""The pure half of the model comparison: the prompt, reading and checking a
proposal against the dependency graph, scoring, adoption and ranking."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lib.llm import pricing
from lib.llm.adopt import adopt
from lib.llm.answer import Answer
from lib.llm.calls import CallRecord
from lib.llm.compare import assemble
from lib.llm.prompt import build_prompt
from lib.llm.proposal import check_proposal, parse_proposal
from lib.llm.refs import ModelRef, parse_model_refs
from lib.llm.retry import ProviderFailure
from lib.llm.score import INVALID_MAX
from lib.planner import BacklogItem, PlanOptions, Tool, build_plan
from lib.web.problems import Problem

TOOLS = {
    "read": Tool(id="read", default_duration_ms=60_000),
    "slow": Tool(id="slow", default_duration_ms=600_000),
    "write": Tool(id="write", mutating=True, rollback_template={"inputs": {"undo": "{{inputs.target}}"}}),
}
# Deterministic staging: [[A, E], [B, C], [D]]
DEPS = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": []}


def draft_of(deps=DEPS, max_parallel: int = 8, tools: dict[str, str] | None = None, ids=None):
    backlog = {
        key: BacklogItem(
            id=key,
            key=key,
            title=f"item {key}",
            pack_id="p",
            tool_id=(tools or {}).get(key, "read"),
            depends_on=needs,
            inputs={"target": key},
        )
        for key, needs in deps.items()
    }
    kwargs = {"new_ids": ids} if ids else {}
    return build_plan(backlog, TOOLS, {}, PlanOptions(max_parallel=max_parallel), **kwargs)


def keys_by_stage(draft) -> list[list[str]]:
    key = {s.id: s.item_key for s in draft.steps}
    return [sorted(key[i] for i in stage) for stage in draft.stages]


# ------------------------------------------------------------------ prompt ----


def test_the_prompt_is_the_backlog_slice_and_its_digest_ignores_step_ids() -> None:
    one = build_prompt(draft_of(), 8)
    counter = iter(range(10_000))
    other = build_prompt(draft_of(ids=lambda n: [f"00000000-0000-4000-8000-{next(counter):012d}" for _ in range(n)]), 8)
    assert one.digest == other.digest and one.user == other.user
    sent = json.loads(one.user)
    assert sent["max_parallel"] == 8
    items = {i["key"]: i for i in sent["items"]}
    assert items["D"]["depends_on"] == ["B", "C"] and items["A"]["depends_on"] == []
    assert set(items["A"]) == {"key", "title", "pack", "tool", "priority", "est_minutes", "depends_on"}
    assert '"stages"' in one.system and "JSON" in one.system
    assert build_prompt(draft_of(), 2).digest != one.digest  # max_parallel is part of what was asked


# ------------------------------------------------------- reading answers ----


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("stages: A then B", "not valid JSON"),
        ('{"stages": "A,B"}', 'no "stages" list'),
        ('["A", "B"]', 'no "stages" list'),
        ('{"stages": [["A"], [1, 2]]}', "stage 1 is not a list of item keys"),
        ("[" * 100_000, "nests too deeply"),
    ],
)
def test_unreadable_answers_say_why(text, problem) -> None:
    parsed = parse_proposal(text)
    assert parsed.stages is None and problem in (parsed.problem or "")


def test_a_fenced_answer_is_read_and_empty_stages_are_dropped() -> None:
    parsed = parse_proposal('```json\n{"stages": [["A"], [], ["B"]], "rationale": "A first"}\n```')
    assert parsed.stages == [["A"], ["B"]] and parsed.rationale == "A first"


# ------------------------------------------------------------ the checks ----


def test_a_proposal_that_follows_the_graph_is_valid() -> None:
    check = check_proposal(draft_of(), [["A"], ["E", "B", "C"], ["D"]])
    assert check.valid and check.reasons == [] and check.placed == 5


@pytest.mark.parametrize(
    ("stages", "reason"),
    [
        ([["A", "B", "C", "E"], ["D"]], "breaks a dependency: B (stage 0) before A (stage 0)"),
        ([["D"], ["A", "E"], ["B", "C"]], "D (stage 0) before B (stage 2)"),
        ([["A", "E"], ["B"], ["D"]], "drops 1 of 5 items: C"),
        ([["A", "E", "Z"], ["B", "C"], ["D"]], "invents items not in the plan: Z"),
        ([["A", "E"], ["B", "C"], ["D", "A"]], "places items more than once: A"),
    ],
)
def test_breaking_dropping_inventing_or_repeating_is_invalid(stages, reason) -> None:
    check = check_proposal(draft_of(), stages)
    assert not check.valid
    assert any(reason in r for r in check.reasons), check.reasons


def test_long_lists_of_offenders_are_summarised() -> None:
    deps = {f"K{i}": [] for i in range(12)}
    check = check_proposal(draft_of(deps), [["K0"]])
    assert "drops 11 of 12 items: K1, K10, K11, K2, K3 and 6 more" in check.reasons


# -------------------------------------------------------------- adoption ----


def test_adopt_keeps_the_steps_and_changes_only_their_staging() -> None:
    draft = draft_of(tools={"B": "write"})
    adopted = adopt(draft, [["A"], ["E", "B", "C"], ["D"]], max_parallel=8)
    assert keys_by_stage(adopted) == [["A"], ["B", "C", "E"], ["D"]]
    before = {s.id: s for s in draft.steps}
    for step in adopted.steps:
        original = before[step.id]
        assert (step.idempotency_token, step.rollback, step.depends_on, step.inputs) == (
            original.idempotency_token,
            original.rollback,
            original.depends_on,
            original.inputs,
        )
    assert [s.position for s in adopted.steps if s.stage == 1] == [0, 1, 2]
    assert adopted.totals.stages == adopted.graph.depth == 3 and adopted.graph.max_width == 3
    assert adopted.totals.critical_path == draft.totals.critical_path  # the DAG did not change
    assert adopted.fingerprint == draft.fingerprint
    assert keys_by_stage(draft) == [["A", "E"], ["B", "C"], ["D"]]  # the original is untouched


def test_adopt_splits_a_stage_wider_than_max_parallel_in_order() -> None:
    adopted = adopt(draft_of(), [["A", "E"], ["B", "C"], ["D"]], max_parallel=1)
    assert [[s.item_key for s in adopted.steps if s.stage == n] for n in range(5)] == [
        ["A"],
        ["E"],
        ["B"],
        ["C"],
        ["D"],
    ]
    assert adopted.totals.est_duration_ms == 5 * 60_000


def test_an_invalid_proposal_can_never_be_adopted() -> None:
    with pytest.raises(ValueError, match="breaks a dependency"):
        adopt(draft_of(), [["A", "B", "C", "E"], ["D"]], max_parallel=8)


# ------------------------------------------------- scoring and ranking ----

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def record(provider: str, model: str, stages=None, text=None, failure=None, tokens=(1000, 100), latency=800):
    ref = ModelRef(provider, model)
    if failure is not None:
        return CallRecord(ref, NOW, failure=failure, latency_ms=latency, attempts=1)
    body = text if text is not None else json.dumps({"stages": stages, "rationale": "r"})
    usage = pricing.TokenUsage(*tokens)
    return CallRecord(ref, NOW, answer=Answer(body, usage, model), latency_ms=latency, attempts=1)


def test_valid_proposals_outrank_invalid_ones_and_the_reasons_are_kept() -> None:
    draft = draft_of()
    prompt = build_prompt(draft, 8)
    records = [
        record("openai", "gpt-4.1-mini", [["A", "E"], ["B", "C"], ["D"]]),
        record("anthropic", "claude-sonnet-4-6", [["A"], ["E"], ["B", "C"], ["D"]]),
        record("openai", "gpt-4.1", [["A", "B", "C", "E"], ["D"]]),  # breaks A -> B: short but invalid
        record("anthropic", "claude-haiku-4-5", text="I would start with A."),
        record("openai", "gpt-5-mini", failure=ProviderFailure("HTTP 503: overloaded", status=503)),
    ]
    comparison = assemble(draft, prompt, records, max_parallel=8, wall_ms=900)
    scores = {o.name: o for o in comparison.outcomes}
    best, slower, broken, prose, failed = (scores[r.ref.name] for r in records)
    assert best.valid and slower.valid and not broken.valid and not prose.valid and not failed.valid
    assert best.score > slower.score >= 60 > INVALID_MAX >= broken.score > prose.score == failed.score == 0
    assert comparison.best == "openai:gpt-4.1-mini"
    assert "3 stages, deterministic plan 3 (15.0/15)" in best.reasons
    assert any(r.startswith("4 stages, deterministic plan 3") for r in slower.reasons)
    assert any(r.startswith("not adoptable: invalid proposal") for r in broken.reasons)
    assert prose.proposal == {"unreadable": "I would start with A."}
    assert failed.error == "HTTP 503: overloaded" and failed.price.cost_usd == 0
    assert "refused the call (HTTP 503)" in (failed.price.note or "")
    # the gates get every call's cost, in the order asked
    assert [c.model for c in comparison.model_costs()] == [r.ref.name for r in records]


def test_cost_breaks_a_tie_between_equally_good_proposals() -> None:
    draft = draft_of()
    same = [["A", "E"], ["B", "C"], ["D"]]
    records = [record("anthropic", "claude-sonnet-4-6", same), record("openai", "gpt-4.1-mini", same)]
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=900)
    by_name = {o.name: o for o in comparison.outcomes}
    assert by_name["openai:gpt-4.1-mini"].score == 100  # the cheapest priced call gets every cost point
    assert by_name["anthropic:claude-sonnet-4-6"].score < 100
    assert comparison.best == "openai:gpt-4.1-mini"


def test_an_unknown_price_is_none_with_a_reason_and_half_the_cost_points() -> None:
    draft = draft_of()
    records = [record("openai", "gpt-loopback-unpriced", [["A", "E"], ["B", "C"], ["D"]])]
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=10)
    (outcome,) = comparison.outcomes
    assert outcome.price.cost_usd is None and "not in the price table" in (outcome.price.note or "")
    assert outcome.score == 95 and "price unknown (5.0/10)" in outcome.reasons
    assert comparison.model_costs()[0].cost_usd is None
    summary = comparison.summary()
    assert summary.cost_complete is False and summary.cost_usd == 0


def test_adopt_best_marks_the_adopted_row_and_restages() -> None:
    draft = draft_of()
    records = [record("openai", "gpt-4.1-mini", [["A"], ["B", "C", "E"], ["D"]])]
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=10)
    adopted, marked = comparison.adopt_best(draft)
    assert marked.adopted == "openai:gpt-4.1-mini" and marked.outcomes[0].adopted
    assert keys_by_stage(adopted) == [["A"], ["B", "C", "E"], ["D"]]
    assert comparison.outcomes[0].adopted is False  # a new comparison, the old one untouched


def test_with_nothing_valid_adopt_best_keeps_the_deterministic_plan() -> None:
    draft = draft_of()
    records = [record("openai", "gpt-4.1-mini", [["A", "B"], ["C", "D", "E"]])]
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=10)
    kept, same = comparison.adopt_best(draft)
    assert kept is draft and same.adopted is None and same.best is None


def test_a_valid_proposal_is_restaged_once_and_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    from lib.llm import compare

    draft = draft_of()
    records = [
        record("openai", "gpt-4.1-mini", [["A"], ["B", "C", "E"], ["D"]]),
        record("anthropic", "claude-sonnet-4-6", [["A"], ["E"], ["B", "C"], ["D"]]),
        record("openai", "gpt-4.1", [["A", "B", "C", "E"], ["D"]]),  # invalid: never restaged
    ]
    calls: list[list[list[str]]] = []
    real = compare.adopt_checked

    def counted(d, stages, max_parallel):
        calls.append(stages)
        return real(d, stages, max_parallel)

    monkeypatch.setattr(compare, "adopt_checked", counted)
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=10)
    assert len(calls) == 2
    seen: list = []
    verdicts = comparison.evaluate(lambda d: seen.append(d) or len(seen))
    assert verdicts == [("openai:gpt-4.1-mini", 1), ("anthropic:claude-sonnet-4-6", 2)]
    adopted, marked = comparison.adopt_best(draft)
    assert len(calls) == 2  # evaluating and adopting restaged nothing again
    assert adopted is seen[0] and marked.adopted == "openai:gpt-4.1-mini"
    assert adopted == adopt(draft, [["A"], ["B", "C", "E"], ["D"]], max_parallel=8)  # what adopt() makes
    assert keys_by_stage(seen[1]) == [["A"], ["E"], ["B", "C"], ["D"]]


def test_staged_duration_counts_against_a_proposal() -> None:
    # S is slow (10 min); putting it in its own extra stage lengthens the plan.
    draft = draft_of({"A": [], "S": [], "B": ["A"]}, tools={"S": "slow"})
    good = record("openai", "gpt-4.1-mini", [["A", "S"], ["B"]])
    worse = record("anthropic", "claude-sonnet-4-6", [["A"], ["B"], ["S"]])
    comparison = assemble(draft, build_prompt(draft, 8), [good, worse], max_parallel=8, wall_ms=10)
    by_name = {o.name: o for o in comparison.outcomes}
    reasons = " ".join(by_name["anthropic:claude-sonnet-4-6"].reasons)
    assert "staged duration 12.0 min, deterministic plan 11.0 min" in reasons


# -------------------------------------------------------------- the refs ----


def test_model_references_name_a_known_provider_and_a_model() -> None:
    refs, errors = parse_model_refs(["openai:gpt-4.1-mini", "Anthropic:claude-sonnet-4-6", "mistral:large", "gpt-4o"])
    assert [r.name for r in refs] == ["openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-6"]
    assert [i for i, _ in errors] == [2, 3] and "unknown provider 'mistral'" in errors[0][1]
    _, errors = parse_model_refs(["openai:", "openai:gpt 4", "openai:a", "openai:a", "openai:" + "x" * 101])
    assert [i for i, _ in errors] == [0, 1, 3, 4] and "listed twice" in errors[2][1]
    assert "longer than 100 characters" in errors[3][1]


def test_require_model_refs_is_a_422_naming_each_field() -> None:
    from lib.llm.refs import require_model_refs

    with pytest.raises(Problem) as caught:
        require_model_refs(["openai:gpt-4.1-mini", "cohere:command"])
    assert caught.value.status == 422
    assert caught.value.errors == [
        {"loc": ["body", "options", "compare_models", 1], "msg": caught.value.errors[0]["msg"]}
    ]
    assert caught.value.detail.startswith("body.options.compare_models.1: unknown provider 'cohere'")


def test_summary_totals_known_costs_exactly() -> None:
    draft = draft_of()
    same = [["A", "E"], ["B", "C"], ["D"]]
    records = [
        record("openai", "gpt-4.1-mini", same, tokens=(1000, 200)),
        record("anthropic", "claude-sonnet-4-6", same, tokens=(1000, 200)),
    ]
    comparison = assemble(draft, build_prompt(draft, 8), records, max_parallel=8, wall_ms=10)
    total = sum((o.price.cost_usd or Decimal(0)) for o in comparison.outcomes)
    assert comparison.summary().cost_usd == float(total) and comparison.summary().cost_complete
