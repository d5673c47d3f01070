"""What a gate returns: allow, warn or block, a score, and findings a person can act on."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, Field

from lib.planner.models import Finding

Verdict = Literal["allow", "warn", "block"]
GateName = Literal["structural", "risk", "compliance", "resource"]
GATES: tuple[GateName, ...] = ("structural", "risk", "compliance", "resource")
RANK = {"allow": 0, "warn": 1, "block": 2}
PENALTY = {"info": 0, "warn": 10, "block": 40}


class GateResult(BaseModel):
    gate: GateName
    verdict: Verdict
    score: int = Field(ge=0, le=100)
    findings: list[Finding] = Field(default_factory=list)


class EvaluationDetails(BaseModel):
    """The `details` column of plan_evaluations (its JSON Schema is the contract
    the table's CHECK constraints enforce the basic shape of)."""

    findings: list[Finding] = Field(default_factory=list)
    findings_total: int = Field(default=0, description="findings before truncation")
    truncated: bool = False
    policy_version: str | None = None
    summary: dict[str, object] = Field(default_factory=dict, description="gate-specific figures (costs, counts)")


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    return max(verdicts, key=RANK.__getitem__, default="allow")


def score(findings: list[Finding]) -> int:
    """100 minus a penalty per distinct problem (code), plus a little per repeat:
    a thousand steps with one shared problem are one problem, not a thousand."""
    if len(findings) == 1:  # most steps with findings have one: no counting needed
        return max(0, 100 - PENALTY[findings[0].severity])
    by_code = Counter((f.code, f.severity) for f in findings)
    lost = sum(PENALTY[sev] + (min(10, count - 1) if sev != "info" else 0) for (_, sev), count in by_code.items())
    return max(0, 100 - lost)


def result(gate: GateName, findings: list[Finding]) -> GateResult:
    """The verdict is the worst finding's severity (info does not count)."""
    verdict = worst([f.severity for f in findings if f.severity != "info"])
    return GateResult(gate=gate, verdict=verdict, score=score(findings), findings=findings)
