"""The auto planner's pure core: backlog items in, a staged plan draft out."""

from lib.planner.build import build_plan
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
