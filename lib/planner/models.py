"""The planner's vocabulary: what goes in (backlog, tools, metrics, options)
and what comes out (a plan draft of staged steps). Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, StrictBool

ItemStatus = Literal["open", "in_progress", "done", "cancelled"]
Severity = Literal["info", "warn", "block"]

OPEN_STATUSES = ("open", "in_progress")


class ApprovalPolicy(BaseModel):
    """Who must say yes before a tool runs, and how long they have."""

    required_approvals: int = Field(default=1, ge=1, le=5)
    timeout_seconds: int = Field(default=3600, ge=60, le=14 * 86400)
    approver_role: Literal["approver", "admin"] = "approver"


class CostModel(BaseModel):
    usd_per_call: float = Field(default=0.0, ge=0)
    usd_per_minute: float = Field(default=0.0, ge=0)


class Tool(BaseModel):
    id: str
    name: str = ""
    kind: Literal["builtin", "webhook"] = "builtin"
    category: str = "general"
    mutating: bool = False
    sensitive: bool = False
    approval_policy: ApprovalPolicy | None = None
    rollback_template: dict[str, Any] | None = None
    cost_model: CostModel | None = None  # None: the price is unknown (never $0)
    default_duration_ms: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class ToolStats(BaseModel):
    """Phase 2 metrics of one tool, aggregated from tool_metrics."""

    tool_id: str
    samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    avg_cost_usd: float | None = None
    avg_input_tokens: float | None = None
    avg_output_tokens: float | None = None
    unknown_cost_samples: int = 0


class BacklogItem(BaseModel):
    id: str
    key: str
    title: str
    description: str = ""
    pack_id: str
    tool_id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=3, ge=1, le=5)
    estimate_minutes: float | None = None
    status: ItemStatus = "open"
    depends_on: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    environment: str | None = None


class PlanOptions(BaseModel):
    """What a planner may ask for. Everything but dry_run feeds the fingerprint."""

    model_config = ConfigDict(extra="forbid")

    max_parallel: int = Field(default=8, ge=1, le=1000, description="most steps in one stage and running at once")
    budget_usd: float | None = Field(
        default=None, ge=0, le=1e9, description="soft cost limit: the resource gate warns above"
    )
    compare_models: list[str] = Field(
        default_factory=list,
        max_length=6,
        description='ask these models for a plan too, e.g. ["openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-6"]',
    )
    adopt_best_model: StrictBool = Field(default=False, description="adopt the best valid model proposal")
    rollback_on_failure: StrictBool = Field(default=False, description="undo succeeded steps when one fails")
    dry_run: StrictBool = Field(default=False, description="plan and evaluate without writing anything")
    title: str | None = Field(default=None, max_length=200)


class Finding(BaseModel):
    """One thing a gate (or the planner) noticed, and what a person can do about it."""

    code: str
    message: str
    remediation: str
    severity: Severity = "warn"
    step_id: str | None = None
    item_key: str | None = None


@dataclass(slots=True)
class PlanStep:
    """One step of a plan. A plain dataclass, not a model: the planner builds
    100,000 of them from values it has already checked, and validating each
    again cost a seventh of the planning time. pydantic still validates one
    built from outside data (a stored plan's rows, through a TypeAdapter), and
    passes these through unchanged inside PlanDraft. The containers are not
    re-validated there either (SkipValidation): copying every step's inputs
    again costs as much."""

    id: str
    item_id: str
    item_key: str
    title: str
    pack_id: str
    tool_id: str
    stage: int
    position: int
    depends_on: Annotated[list[str], SkipValidation]
    idempotency_token: str
    rollback: Annotated[dict[str, Any] | None, SkipValidation]
    inputs: Annotated[dict[str, Any], SkipValidation]
    requires_approval: bool
    est_duration_ms: int
    duration_source: str
    est_cost_usd: float | None
    cost_note: str | None = None
    environment: str | None = None
    tags: Annotated[list[str], SkipValidation] = field(default_factory=list)
    priority: int = 3


class Cycle(BaseModel):
    members: list[str] = Field(description="item keys in the strongly connected component")
    path: list[str] = Field(description="one concrete cycle through them, first key repeated at the end")


class DependencyIssue(BaseModel):
    item_key: str
    depends_on: str
    reason: Literal["missing", "done", "cancelled"]


class GraphFacts(BaseModel):
    """What the dependency graph itself says; the structural gate judges it."""

    cycles: list[Cycle] = Field(default_factory=list)
    dependency_issues: list[DependencyIssue] = Field(default_factory=list)
    pulled_in: list[str] = Field(default_factory=list, description="keys added because a selected item needs them")
    rollback_gaps: list[str] = Field(default_factory=list, description="step ids of mutating tools without rollback")
    unknown_tools: list[str] = Field(default_factory=list)
    depth: int = 0
    max_width: int = 0


class Totals(BaseModel):
    steps: int
    stages: int
    critical_path_ms: int
    critical_path: list[str] = Field(description="step ids along the longest chain of estimated durations")
    est_duration_ms: int = Field(description="sum over stages of each stage's longest step")
    est_cost_usd: float = Field(description="sum of the known step costs")
    unknown_cost_steps: int
    cost_complete: bool


class PlanDraft(BaseModel):
    fingerprint: str
    steps: list[PlanStep]
    stages: list[list[str]]
    totals: Totals
    graph: GraphFacts
    item_ids: list[str]
    pack_ids: list[str]
