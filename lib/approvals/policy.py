"""What an approval binds to and who may decide it: the digest of exactly what
is approved (plan id and version, step, tool, inputs, policy version), the
requesters (who may not approve their own work), and the identity and role
rules a decision passes before it counts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from lib.planner.models import ApprovalPolicy
from lib.web.problems import Problem, field_error

PLAN_APPROVAL_POLICY = ApprovalPolicy(required_approvals=1, timeout_seconds=24 * 3600, approver_role="approver")
INPUT_PREVIEW_CHARS = 200


class DecisionRequest(BaseModel):
    """approve or deny; a denial says why."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "deny"]
    reason: str | None = Field(default=None, max_length=2000, validate_default=True)
    approver: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="who decided in the calling system (required for the signed Zig Todo webhook)",
    )

    @field_validator("reason")
    @classmethod
    def denial_needs_reason(cls, reason: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("decision") == "deny" and not (reason and reason.strip()):
            raise ValueError("a denial needs a reason")
        return reason


def digest(
    plan_id: Any, plan_version: int, step_id: Any, tool_id: str | None, inputs: Any, policy_version: str | None
) -> str:
    material = json.dumps(
        {
            "plan": str(plan_id),
            "version": plan_version,
            "step": str(step_id) if step_id else None,
            "tool": tool_id,
            "inputs": inputs,
            "policy": policy_version,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def target(plan: dict[str, Any], step: dict[str, Any] | None) -> tuple[str, str]:
    """(idempotency token, current digest) of what is to be approved."""
    if step is None:
        return f"plan:{plan['id']}", digest(
            plan["id"], plan["version"], None, None, plan["input_fingerprint"], plan["policy_version"]
        )
    # the round moves when an admin retries a denied step, so it is asked anew
    round_ = step.get("approval_round", 0)
    return step["idempotency_token"], digest(
        plan["id"],
        plan["version"],
        step["id"],
        step["tool_id"],
        {"inputs": step["inputs"], "round": round_} if round_ else step["inputs"],
        plan["policy_version"],
    )


def summarize(inputs: Any) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        return {"value": str(inputs)[:INPUT_PREVIEW_CHARS]}
    out = {}
    for key, value in inputs.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[key] = text if len(text) <= INPUT_PREVIEW_CHARS else text[:INPUT_PREVIEW_CHARS] + "…"
    return out


def requesters(plan: dict[str, Any]) -> list[str]:
    """Everyone who asked for this work: they may not approve it themselves."""
    names = [plan.get("created_by_sub"), plan.get("created_by"), plan.get("executed_by_sub"), plan.get("executed_by")]
    return sorted({n for n in names if n})


def acting_person(principal: Any, body: DecisionRequest) -> tuple[str, str | None]:
    if principal.source == "webhook":
        if not body.approver:
            raise field_error(422, ["body", "approver"], "the webhook must say who decided")
        return f"zig-todo:{body.approver}", None
    if body.approver and body.approver not in (principal.name, principal.subject):
        raise field_error(422, ["body", "approver"], "only the signed webhook may decide on someone else's behalf")
    return principal.name, principal.subject


def vote_source(principal: Any, client: str | None) -> str:
    if principal.source == "webhook":
        return "webhook"
    return "console" if client == "console" else "api"


def authorize(principal: Any, row: dict[str, Any], actor: str, actor_sub: str | None, body: DecisionRequest) -> None:
    from lib.web.auth import RANK

    if principal.role is None or RANK[principal.role] < RANK[row["approver_role"]]:
        raise Problem(403, f"this approval needs the {row['approver_role']} role", type="forbidden")
    if body.decision == "approve":
        identities = {actor, actor_sub, principal.email, (body.approver or None)} - {None}
        if identities & set(row["requested_by_subs"] or []):
            raise Problem(403, "the requester of an approval may not approve it", type="self-approval")
