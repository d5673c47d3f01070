"""Reading and checking a model's proposal against the real dependency graph.

Pure. A proposal is `{"stages": [["KEY", ...], ...], "rationale": "..."}`.
It is valid only when it places every item of the plan exactly once, invents
no item, and puts each item in a stage strictly after all of its in-plan
dependencies. Anything else is kept, with the reasons, and never adopted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lib.planner.models import PlanDraft

SHOWN_PER_KIND = 5  # reasons name a few offenders of each kind, then count the rest
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Proposal:
    stages: list[list[str]] | None  # None: the answer could not be read as a proposal
    rationale: str | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, Any] | None:
        return None if self.stages is None else {"stages": self.stages, "rationale": self.rationale}


def parse_proposal(text: str | None) -> Proposal:
    if text is None or not text.strip():
        return Proposal(None, problem="the answer was empty")
    body = text.strip()
    fenced = _FENCE.match(body)  # some models wrap JSON in a Markdown fence despite being asked not to
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return Proposal(None, problem=f"the answer is not valid JSON ({exc.msg} at line {exc.lineno})")
    except RecursionError:
        return Proposal(None, problem="the answer nests too deeply to be a proposal")
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        return Proposal(None, problem='the answer has no "stages" list')
    stages = data["stages"]
    for index, stage in enumerate(stages):
        if not isinstance(stage, list) or not all(isinstance(key, str) for key in stage):
            return Proposal(None, problem=f"stage {index} is not a list of item keys")
    rationale = data.get("rationale")
    return Proposal(
        stages=[list(stage) for stage in stages if stage],  # an empty stage runs nothing: drop it
        rationale=rationale[:2000] if isinstance(rationale, str) else None,
    )


@dataclass(frozen=True)
class Check:
    valid: bool
    total: int  # items in the plan
    placed: int  # plan items placed exactly once
    dependency_breaks: int
    reasons: list[str] = field(default_factory=list)


def _named(kind: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_PER_KIND])
    more = f" and {len(keys) - SHOWN_PER_KIND} more" if len(keys) > SHOWN_PER_KIND else ""
    return f"{kind}: {shown}{more}"


def check_proposal(draft: PlanDraft, stages: list[list[str]]) -> Check:
    by_key = {s.item_key: s for s in draft.steps}
    key_of = {s.id: s.item_key for s in draft.steps}
    stage_of: dict[str, int] = {}
    invented: list[str] = []
    twice: list[str] = []
    for number, stage in enumerate(stages):
        for key in stage:
            if key not in by_key:
                invented.append(key)
            elif key in stage_of:
                twice.append(key)
            else:
                stage_of[key] = number
    missing = sorted(by_key.keys() - stage_of.keys())
    breaks: list[str] = []
    for key, number in stage_of.items():
        for dep_id in by_key[key].depends_on:
            dep = key_of.get(dep_id)
            if dep is not None and dep in stage_of and stage_of[dep] >= number:
                breaks.append(f"{key} (stage {number}) before {dep} (stage {stage_of[dep]})")
    reasons = []
    if breaks:
        reasons.append(_named("breaks a dependency", breaks))
    if missing:
        reasons.append(_named(f"drops {len(missing)} of {len(by_key)} items", missing))
    if invented:
        reasons.append(_named("invents items not in the plan", sorted(set(invented))))
    if twice:
        reasons.append(_named("places items more than once", sorted(set(twice))))
    placed = len(stage_of) - len(set(twice))
    return Check(
        valid=not reasons,
        total=len(by_key),
        placed=placed,
        dependency_breaks=len(breaks),
        reasons=reasons,
    )
