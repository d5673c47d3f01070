"""The pure parts of what the console shows: what changed between two asks of
the same approval, and a plan's progress with the time left along its longest
chain of unfinished steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lib.approvals.context import changes
from lib.planner.progress import progress

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_changes_list_each_input_that_differs_in_key_order() -> None:
    before = {"target": "db-1", "window": "14:00", "same": 1}
    after = {"target": "db-2", "same": 1, "region": "eu"}
    assert [(c.field, c.before, c.after) for c in changes(before, after)] == [
        ("region", None, "eu"),
        ("target", "db-1", "db-2"),
        ("window", "14:00", None),
    ]
    assert changes(after, dict(after)) == []


def step(sid: str, status: str, ms: int, after: tuple[str, ...] = (), started: datetime | None = None) -> dict:
    return {"id": sid, "status": status, "est_duration_ms": ms, "depends_on": list(after), "started_at": started}


def test_progress_counts_and_time_left_along_the_longest_unfinished_chain() -> None:
    steps = [
        step("a", "succeeded", 5_000),
        step("b", "running", 10_000, ("a",), started=NOW - timedelta(seconds=4)),  # 6 s of it left
        step("c", "awaiting_approval", 1_000, ("a",)),
        step("d", "pending", 3_000, ("b", "c")),
        step("e", "failed", 7_000),
        step("f", "skipped", 2_000, ("e",)),
    ]
    p = progress(steps, NOW)
    assert (p.total, p.done, p.running, p.waiting, p.failed, p.skipped) == (6, 1, 1, 2, 1, 1)
    assert p.est_remaining_ms == 6_000 + 3_000  # b's rest, then d; c (1 s) runs beside b
    assert p.by_status["pending"] == 1


def test_a_finished_plan_has_nothing_left_and_says_so() -> None:
    p = progress([step("a", "succeeded", 5_000), step("b", "rolled_back", 1_000)], NOW)
    assert (p.done, p.est_remaining_ms) == (1, None)
