"""Small behaviours the console's author found wanting."""

from __future__ import annotations

from lib.planner import BacklogItem, PlanOptions, Tool, build_plan


def test_the_critical_path_keeps_steps_that_take_no_time() -> None:
    tools = {"zero": Tool(id="zero", default_duration_ms=0), "slow": Tool(id="slow", default_duration_ms=10)}
    items = {
        "A": BacklogItem(id="A", key="A", title="A", pack_id="p", tool_id="zero"),
        "B": BacklogItem(id="B", key="B", title="B", pack_id="p", tool_id="zero", depends_on=["A"]),
        "G": BacklogItem(id="G", key="G", title="G", pack_id="p", tool_id="slow", depends_on=["B"]),
    }
    draft = build_plan(items, tools, {}, PlanOptions())
    keys = {s.id: s.item_key for s in draft.steps}
    assert [keys[i] for i in draft.totals.critical_path] == ["A", "B", "G"]
    assert draft.totals.critical_path_ms == 10
