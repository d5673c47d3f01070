"""The auto planner's pure core: backlog items in, a staged plan draft out."""

from typing import Any

from lib.planner.models import (
    ApprovalPolicy,
    BacklogItem,
    CostModel,
    Finding,
    PlanDraft,
    PlanOptions,
    PlanStep,
    Tool,
    ToolStats,
)

__all__ = [
    "ApprovalPolicy",
    "BacklogItem",
    "CostModel",
    "Finding",
    "PlanDraft",
    "PlanOptions",
    "PlanStep",
    "Tool",
    "ToolStats",
    "build_plan",
]


def __getattr__(name: str) -> Any:
    # build_plan brings networkx (about 0.2 s to import); endpoints that only
    # read plans import the models without paying for it.
    if name == "build_plan":
        from lib.planner.build import build_plan

        return build_plan
    raise AttributeError(name)
