"""What an approval binds to and who may decide it: the digest of exactly what
is approved (plan id and version, step, tool, inputs, policy version), the
requesters (who may not approve their own work), and the identity and role
rules a decision passes before it counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

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
        max_length=320,
        description="the signed Zig Todo webhook: the email of the person who decided, resolved to their stable id "
        "(a name that resolves to no person is refused)",
    )
    approval_id: UUID | None = Field(
        default=None,
        description="the approval this decides; the signed Zig Todo webhook must send it (equal to the path's id), "
        "so a delivery cannot be replayed against another approval",
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


def rollback_call(step: dict[str, Any]) -> dict[str, Any] | None:
    """The tool call a step's undo makes ({tool_id, inputs}), or None when its
    rollback runs no tool."""
    undo = step.get("rollback") or {}
    if undo.get("action") != "run_tool":
        return None
    return {"tool_id": undo.get("tool_id", step["tool_id"]), "inputs": undo.get("inputs", {})}


def target(plan: dict[str, Any], step: dict[str, Any] | None, kind: str = "step") -> tuple[str, str]:
    """(idempotency token, current digest) of what is to be approved: the
    plan, a step (its inputs and the undo call it would make, so approving
    the step approves its rollback too), or a step's undo on its own."""
    if step is None:
        return f"plan:{plan['id']}", digest(
            plan["id"], plan["version"], None, None, plan["input_fingerprint"], plan["policy_version"]
        )
    undo = rollback_call(step)
    if kind == "rollback":
        assert undo is not None
        return rollback_token(step), digest(
            plan["id"], plan["version"], step["id"], undo["tool_id"], {"undo": undo["inputs"]}, plan["policy_version"]
        )
    # the round moves when an admin retries a denied step, so it is asked anew
    round_ = step.get("approval_round", 0)
    material: dict[str, Any] = {"inputs": step["inputs"]}
    if round_:
        material["round"] = round_
    if undo is not None:
        material["rollback"] = undo
    return step["idempotency_token"], digest(
        plan["id"], plan["version"], step["id"], step["tool_id"], material, plan["policy_version"]
    )


def rollback_token(step: dict[str, Any]) -> str:
    undo = step.get("rollback") or {}
    return str(undo.get("idempotency_token") or step["idempotency_token"] + "-rollback")


def summarize(inputs: Any) -> dict[str, Any]:
    if not isinstance(inputs, dict):
        return {"value": str(inputs)[:INPUT_PREVIEW_CHARS]}
    out = {}
    for key, value in inputs.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[key] = text if len(text) <= INPUT_PREVIEW_CHARS else text[:INPUT_PREVIEW_CHARS] + "…"
    return out


def summary_of(step: dict[str, Any] | None, plan: dict[str, Any], kind: str) -> dict[str, Any]:
    """What a person reads before deciding: the inputs, and the undo the step
    would make (approving the step approves that too)."""
    if step is None:
        return {"plan": plan["title"], "verdict": plan.get("verdict")}
    undo = rollback_call(step)
    if kind == "rollback":
        assert undo is not None
        return summarize(undo["inputs"])
    summary = summarize(step["inputs"])
    if undo is not None:
        call = f"{undo['tool_id']} {json.dumps(undo['inputs'], sort_keys=True, default=str)}"
        summary["rollback"] = call if len(call) <= INPUT_PREVIEW_CHARS else call[:INPUT_PREVIEW_CHARS] + "…"
    return summary


def requesters(plan: dict[str, Any]) -> list[str]:
    """The people (stable ids) who asked for this work: who planned and who
    executed it; the items' authors are added where the request is made."""
    return sorted({p for p in (plan.get("created_by_sub"), plan.get("executed_by_sub")) if p})


@dataclass(frozen=True)
class Voter:
    """The person a decision belongs to: a stable id, and a name for people to read."""

    person_id: str
    name: str


def voter_of(conn: Any, principal: Any, body: DecisionRequest, approval_id: UUID) -> Voter:
    """Who is deciding. A signed webhook names the approval it decides and the
    person (by email) who decided there; a token decides for its own person."""
    if body.approval_id is not None and body.approval_id != approval_id:
        raise field_error(422, ["body", "approval_id"], f"this request decides approval {approval_id}, not another")
    if principal.source == "webhook":
        if body.approval_id is None:
            raise field_error(422, ["body", "approval_id"], "a signed delivery must name the approval it decides")
        if not body.approver:
            raise field_error(422, ["body", "approver"], "the webhook must say who decided (their email)")
        from lib.web import people

        person_id = people.resolve(conn, body.approver, ["body", "approver"])
        return Voter(person_id, body.approver.lower())
    if body.approver and body.approver.lower() not in {(principal.email or "").lower(), principal.subject.lower()}:
        raise field_error(422, ["body", "approver"], "only the signed webhook may decide on someone else's behalf")
    return Voter(principal.subject, principal.name)


def vote_source(principal: Any) -> str:
    """Where a vote verifiably came from: a signed delivery, or a token."""
    return "webhook" if principal.source == "webhook" else "api"


def authorize(principal: Any, row: dict[str, Any], plan: dict[str, Any], voter: Voter, body: DecisionRequest) -> None:
    """The role the request needs, and: who asked for the work may not approve it."""
    from lib.web.auth import RANK

    if principal.role is None or RANK[principal.role] < RANK[row["approver_role"]]:
        raise Problem(403, f"this approval needs the {row['approver_role']} role", type="forbidden")
    if body.decision == "approve":
        asked_by = set(row["requested_by_subs"] or []) | set(requesters(plan))
        if voter.person_id in asked_by:
            raise Problem(
                403,
                "the requester of an approval (who planned, executed or wrote it) may not approve it",
                type="self-approval",
            )
