"""Property tests of the pure planner on random DAGs (hypothesis)."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from lib.planner import BacklogItem, PlanOptions, Tool, build_plan

TOOLS = {"t.read": Tool(id="t.read", cost_model={"usd_per_call": 0.01})}


@st.composite
def dags(draw: st.DrawFn) -> dict[str, BacklogItem]:
    n = draw(st.integers(min_value=1, max_value=40))
    items = {}
    for i in range(n):
        # edges only to earlier nodes: always a DAG
        deps = draw(st.lists(st.integers(min_value=0, max_value=i - 1), max_size=4, unique=True)) if i else []
        items[f"id{i}"] = BacklogItem(
            id=f"id{i}",
            key=f"K{i}",
            title=f"item {i}",
            pack_id=draw(st.sampled_from(["a", "b"])),
            tool_id="t.read",
            priority=draw(st.integers(min_value=1, max_value=5)),
            depends_on=[f"id{d}" for d in deps],
            inputs={"n": i},
        )
    return items


@settings(max_examples=150, deadline=None)
@given(backlog=dags(), max_parallel=st.integers(min_value=1, max_value=6))
def test_stages_respect_dependencies_capacity_and_are_maximal(backlog, max_parallel) -> None:
    draft = build_plan(backlog, TOOLS, {}, PlanOptions(max_parallel=max_parallel))
    assert len(draft.steps) == len(backlog)
    stage = {s.id: s.stage for s in draft.steps}
    sizes = Counter(stage.values())
    assert sorted(sizes) == list(range(len(sizes))), "stages are numbered without gaps"
    for step in draft.steps:
        deps = [stage[d] for d in step.depends_on]
        # every step comes after all its dependencies
        assert all(d < step.stage for d in deps)
        # maximal: every stage between the earliest possible one and its own is full
        earliest = max(deps, default=-1) + 1
        for s in range(earliest, step.stage):
            assert sizes[s] == max_parallel
    assert max(sizes.values()) <= max_parallel
    for number, ids in enumerate(draft.stages):
        assert [next(s.position for s in draft.steps if s.id == i) for i in ids] == list(range(len(ids)))
        assert all(stage[i] == number for i in ids)


@settings(max_examples=60, deadline=None)
@given(backlog=dags())
def test_tokens_are_unique_and_stable(backlog) -> None:
    first = build_plan(backlog, TOOLS, {}, PlanOptions())
    second = build_plan(backlog, TOOLS, {}, PlanOptions())
    tokens = {s.item_key: s.idempotency_token for s in first.steps}
    assert len(set(tokens.values())) == len(tokens)
    assert tokens == {s.item_key: s.idempotency_token for s in second.steps}
    assert {s.id for s in first.steps}.isdisjoint({s.id for s in second.steps})  # fresh step ids
    # a dry run is the same plan: it does not change the fingerprint or the tokens
    third = build_plan(backlog, TOOLS, {}, PlanOptions(dry_run=True))
    assert third.fingerprint == first.fingerprint


@settings(max_examples=60, deadline=None)
@given(backlog=dags())
def test_critical_path_is_a_chain_of_dependencies(backlog) -> None:
    draft = build_plan(backlog, TOOLS, {}, PlanOptions())
    by_id = {s.id: s for s in draft.steps}
    path = draft.totals.critical_path
    assert path, "a non-empty plan has a critical path"
    for earlier, later in itertools.pairwise(path):
        assert earlier in by_id[later].depends_on
    assert draft.totals.critical_path_ms == sum(by_id[s].est_duration_ms for s in path)
    assert draft.totals.critical_path_ms <= draft.totals.est_duration_ms
