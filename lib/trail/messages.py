"""What people are told, as each channel wants it (pure: no database, clock
or network; the links' base and the time are given).

Slack gets Block Kit messages: a plan that is blocked or warned, an approval
request (plan, step, tool, findings, time left, a link to the request in the
console) and, in the request's thread, each vote and the outcome. Zig Todo
gets JSON events: the request, with what its user needs to decide and how to
answer (POST /api/approvals/:id), and its resolution, so the todo closes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

FINDINGS_SHOWN = 5


def _text(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(label: str, url: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}],
    }


def _bullets(lines: list[str], none: str) -> str:
    return "\n".join(f"• {line}" for line in lines[:FINDINGS_SHOWN]) or f"• {none}"


def time_left(expires_at: datetime, now: datetime) -> str:
    """'1 h 5 min left' (or 'overdue'), for a person deciding whether to hurry."""
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "overdue"
    hours, minutes = divmod((seconds + 59) // 60, 60)
    if not hours:
        return f"{minutes} min left"
    return f"{hours} h {minutes} min left" if minutes else f"{hours} h left"


def plan_verdict(plan_id: str, title: str, verdict: str, score: int, top: list[str], base: str) -> dict[str, Any]:
    """A blocked plan (it will not run until someone acts) or a warned one
    (it may run; someone should look)."""
    link = f"{base}/#/plans/{plan_id}"
    head = "Plan blocked" if verdict == "block" else "Plan needs a look (warn)"
    findings = _bullets(top, "(no findings recorded)")
    return {
        "text": f"{head}: {title} (score {score})\n{findings}\n<{link}|Open the plan>",
        "blocks": [_text(f"*{head}:* {title} (score {score})"), _text(findings), _button("Open the plan", link)],
    }


def _what(approval: dict[str, Any], plan: dict[str, Any], step: dict[str, Any] | None) -> str:
    if step is None:
        return f"the whole plan *{plan['title']}*"
    verb = "undo" if approval["kind"] == "rollback" else "step"
    return f"{verb} `{step['item_key']}` {step.get('title') or ''}".strip()


def approval_requested_slack(
    approval: dict[str, Any], plan: dict[str, Any], step: dict[str, Any] | None, now: datetime, base: str
) -> dict[str, Any]:
    """The request, with what a person needs to decide and where to do it."""
    link = f"{base}/#/approvals/{approval['id']}"
    plan_link = f"{base}/#/plans/{plan['id']}"
    findings = _bullets([f.get("message", str(f)) for f in approval.get("findings") or []], "no findings")
    left = time_left(approval["expires_at"], now)
    needs = approval["required_approvals"]
    fields = [
        {"type": "mrkdwn", "text": f"*Plan*\n<{plan_link}|{plan['title']}>"},
        {"type": "mrkdwn", "text": f"*Tool*\n`{approval.get('tool_id') or 'plan approval'}`"},
        {"type": "mrkdwn", "text": f"*Time left*\n{left} (until {approval['expires_at']:%Y-%m-%d %H:%M} UTC)"},
        {"type": "mrkdwn", "text": f"*Needs*\n{needs} {approval['approver_role']}{'s' if needs > 1 else ''}"},
    ]
    head = f"Approval needed: {_what(approval, plan, step)}"
    return {
        "text": f"{head} ({plan['title']}, {left})",
        "blocks": [
            _text(f"*{head}*"),
            {"type": "section", "fields": fields},
            _text(f"*Findings*\n{findings}"),
            _button("Review and decide", link),
        ],
    }


OUTCOME_WORDS = {
    "approved": "Approved",
    "denied": "Denied",
    "expired": "Expired (counts as a denial)",
    "cancelled": "Withdrawn",
}


def approval_outcome_slack(status: str, by: str | None, reason: str | None, votes: str | None = None) -> dict[str, Any]:
    """A reply in the request's thread: a vote ("1 of 2") or the outcome."""
    if status == "pending":
        text = f"{by} approved ({votes}); waiting for another approver"
    else:
        text = OUTCOME_WORDS.get(status, status)
        if by and status in ("approved", "denied"):
            text += f" by {by}"
        if reason and status != "approved":
            text += f": {reason}"
    return {"text": text, "blocks": [_text(text)]}


def approval_requested_zig(
    approval: dict[str, Any], plan: dict[str, Any], step: dict[str, Any] | None, base: str
) -> dict[str, Any]:
    """Zig Todo's event: the todo to show, and how its answer comes back."""
    approval_id = str(approval["id"])
    return {
        "type": "approval.requested",
        "approval_id": approval_id,
        "title": f"Approve {_what(approval, plan, step).replace('*', '').replace('`', '')}",
        "plan": {"id": str(plan["id"]), "title": plan["title"], "url": f"{base}/#/plans/{plan['id']}"},
        "step": None
        if step is None
        else {"id": str(step["id"]), "item_key": step["item_key"], "title": step.get("title")},
        "kind": approval["kind"],
        "tool_id": approval.get("tool_id"),
        "inputs_summary": approval.get("inputs_summary") or {},
        "findings": approval.get("findings") or [],
        "required_approvals": approval["required_approvals"],
        "approver_role": approval["approver_role"],
        "expires_at": approval["expires_at"].isoformat(),
        "console_url": f"{base}/#/approvals/{approval_id}",
        # the answer: the same signed webhook the decision endpoint verifies
        "decide": {
            "method": "POST",
            "url": f"{base}/api/approvals/{approval_id}",
            "body": {"approval_id": approval_id, "decision": "approve | deny", "approver": "<the person's email>"},
            "deny_needs": "reason",
        },
    }


def approval_resolved_zig(approval_id: str, status: str, by: str | None, reason: str | None) -> dict[str, Any]:
    return {"type": "approval.resolved", "approval_id": approval_id, "status": status, "by": by, "reason": reason}
