"""The planning prompt: the plan's backlog slice as structured JSON, and the
JSON answer we ask for. Pure: the same draft and options give the same prompt
(and the same digest) whatever random step ids the draft carries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lib.planner.models import PlanDraft

# A proposal must fit a model's context and output budget; beyond this many
# items a comparison is not sent at all (each model gets a row saying why).
MAX_ITEMS = 500

SYSTEM = """You plan the execution of work items for an automation control plane.
Group the items into stages that run one after another; items in one stage run in parallel.
Rules, all mandatory:
1. Use every item key exactly once, and no key that is not in the input.
2. An item goes in a stage strictly after the stages of every key in its depends_on.
3. At most max_parallel items in one stage.
Within the rules, prefer fewer stages and a short total duration (the sum over stages of the
longest est_minutes in the stage); put higher priority items (1 is the most urgent) early.
Answer with one JSON object and nothing else:
{"stages": [["KEY", ...], ...], "rationale": "one or two sentences"}"""

# Structured output schema, for the providers that enforce one (strict mode
# wants every property required and no others).
PROPOSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "stages": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        "rationale": {"type": "string"},
    },
    "required": ["stages", "rationale"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str
    digest: str  # sha256 of exactly what was sent (system and user text)
    items: int

    @property
    def max_output_tokens(self) -> int:
        # every key once plus JSON punctuation, and room for the rationale
        return min(16_000, 1_000 + 16 * self.items)


def backlog_slice(draft: PlanDraft, max_parallel: int) -> dict[str, Any]:
    key_of = {s.id: s.item_key for s in draft.steps}
    items = [
        {
            "key": s.item_key,
            "title": s.title,
            "pack": s.pack_id,
            "tool": s.tool_id,
            "priority": s.priority,
            "est_minutes": round(s.est_duration_ms / 60_000, 2),
            "depends_on": sorted(key_of[d] for d in s.depends_on if d in key_of),
        }
        for s in sorted(draft.steps, key=lambda s: s.item_key)
    ]
    return {"max_parallel": max_parallel, "items": items}


def build_prompt(draft: PlanDraft, max_parallel: int) -> Prompt:
    user = json.dumps(backlog_slice(draft, max_parallel), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(json.dumps([SYSTEM, user], ensure_ascii=False).encode()).hexdigest()
    return Prompt(system=SYSTEM, user=user, digest=digest, items=len(draft.steps))
