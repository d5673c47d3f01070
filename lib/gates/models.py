"""What a gate returns: allow, warn or block, a score, and findings a person can act on."""

from __future__ import annotations

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


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    return max(verdicts, key=RANK.__getitem__, default="allow")


def result(gate: GateName, findings: list[Finding]) -> GateResult:
    """The verdict is the worst finding's severity; each finding costs points."""
    verdict = worst([f.severity for f in findings if f.severity != "info"])
    score = max(0, 100 - sum(PENALTY[f.severity] for f in findings))
    return GateResult(gate=gate, verdict=verdict, score=score, findings=findings)
