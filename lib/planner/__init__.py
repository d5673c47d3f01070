"""The auto planner: backlog items in, a staged plan draft out, persisted.

The pure core (no database, no clock, no network): models, graph, schedule,
tokens, rollback, estimates, build, files. Its shell, beside it: load (read
the backlog, tools, stats and stored plans), write (persist a plan), create
(the create flow), views (the plan as the API shows it), progress (how far
a stored plan has come, and the items it pulled in), reevaluate, and
backlog (writing backlog items through the API).
"""

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
