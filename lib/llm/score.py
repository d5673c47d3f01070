"""Scoring a proposal from 0 to 100, with the reasons kept. Pure.

A valid proposal earns the dependency (40) and coverage (20) points, then up
to 15 for its stage count and 15 for its staged duration (the sum over stages
of the longest step: the critical path through the stages), each measured
against the deterministic plan, and up to 10 for what the call cost next to the
cheapest priced call of the comparison. So a valid proposal scores at least 60.

An invalid one (broken dependency, dropped, invented or repeated items) gets
at most 20: up to 10 for the share of items it placed and 10 if it broke no
dependency. An answer that could not be read at all scores 0. So an invalid
proposal always ranks below every valid one, and none is ever adopted.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from lib.llm.proposal import Check
from lib.planner.models import PlanDraft

DEPENDENCIES, COVERAGE, STAGES, DURATION, COST = 40, 20, 15, 15, 10
INVALID_MAX = 20


@dataclass(frozen=True)
class Score:
    score: int
    reasons: list[str]


def _ratio(better: float, actual: float) -> float:
    """1 when actual is at most `better`, shrinking as actual grows past it."""
    return 1.0 if actual <= better or actual <= 0 else better / actual


def _duration(ms: int) -> str:
    return f"{ms / 1000:.0f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"


def score_unreadable(problem: str) -> Score:
    return Score(0, [problem, "not adoptable: the answer is not a proposal"])


def score_invalid(check: Check) -> Score:
    placed = round(INVALID_MAX / 2 * check.placed / check.total) if check.total else 0
    deps = INVALID_MAX // 2 if check.dependency_breaks == 0 else 0
    return Score(
        placed + deps,
        [
            *check.reasons,
            f"not adoptable: invalid proposal ({check.placed}/{check.total} items placed once: {placed} points; "
            f"{'no' if deps else check.dependency_breaks} broken dependencies: {deps} points)",
        ],
    )


def score_valid(
    draft: PlanDraft,
    stages: list[list[str]],
    adopted: PlanDraft,
    cost: Decimal | None,
    cheapest: Decimal | None,
    max_parallel: int,
) -> Score:
    """`adopted` is `adopt(draft, stages, max_parallel)`: scored as it would run."""
    base, mine = draft.totals, adopted.totals
    stage_points = STAGES * _ratio(base.stages, mine.stages)
    duration_points = DURATION * _ratio(base.est_duration_ms, mine.est_duration_ms)
    if cost is None:
        cost_points, cost_reason = COST / 2, "price unknown"
    else:
        cost_points = COST * (_ratio(float(cheapest), float(cost)) if cheapest is not None else 1.0)
        cost_reason = f"cost ${cost}, cheapest priced call ${cheapest}"
    reasons = [
        f"dependencies respected ({DEPENDENCIES}/{DEPENDENCIES})",
        f"all {base.steps} items placed once ({COVERAGE}/{COVERAGE})",
        f"{mine.stages} stages, deterministic plan {base.stages} ({stage_points:.1f}/{STAGES})",
        f"staged duration {_duration(mine.est_duration_ms)}, deterministic plan "
        f"{_duration(base.est_duration_ms)} ({duration_points:.1f}/{DURATION})",
        f"{cost_reason} ({cost_points:.1f}/{COST})",
    ]
    wide = sum(1 for stage in stages if len(stage) > max_parallel)
    if wide:  # adopt() splits them, which the stage points above already count
        reasons.append(f"{wide} stage(s) wider than max_parallel {max_parallel}: split on adoption")
    total = DEPENDENCIES + COVERAGE + stage_points + duration_points + cost_points
    return Score(round(total), reasons)
