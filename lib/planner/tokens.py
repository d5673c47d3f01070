"""Deterministic identities: the plan's input fingerprint and each step's
idempotency token. The same backlog snapshot and options give the same
fingerprint, hence the same tokens, so a re-planned or retried step presents
the same Idempotency-Key to its tool and never acts twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lib.planner.models import BacklogItem, PlanOptions, Tool

TOKEN_PREFIX = "nofx_"  # noqa: S105 - a label, not a secret


# One encoder for every call: json.dumps with options builds a new one each time.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(value: Any) -> str:
    return _ENCODER.encode(value)


def _line_encoder() -> Callable[[Any], str]:
    """_ENCODER.encode, minus the C encoder it builds anew on every call: a
    plan encodes a line per item, and that setup was a third of the time. The
    same C encoder with the same options, so the same text (tokens depend on it)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the C accelerator
        return _ENCODER.encode
    e = _ENCODER
    strings = json.encoder.encode_basestring_ascii if e.ensure_ascii else json.encoder.encode_basestring
    encode = make(
        None, e.default, strings, e.indent, e.key_separator, e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan
    )
    return lambda value: encode(value, 0)[0]


_encode_line = _line_encoder()


def item_line(item: BacklogItem) -> str:
    """Everything about an item that the plan depends on, canonically encoded."""
    return _encode_line(
        [
            item.id,
            item.key,
            item.title,
            item.description,
            item.pack_id,
            item.tool_id,
            item.priority,
            item.estimate_minutes,
            item.status,
            item.depends_on,
            item.tags,
            item.environment,
            item.inputs,
        ]
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(
    items: Iterable[BacklogItem],
    tools: Mapping[str, Tool],
    options: PlanOptions,
    selected_ids: Iterable[str] | None,
    lines: Mapping[str, str],
) -> str:
    """What the plan was made from: the items as they are, the tools they use,
    what was selected, and every option except dry_run. `lines` is item id ->
    item_line, encoded once for the fingerprint and the step tokens."""
    items = list(items)
    parts = [lines[item_id] for item_id in sorted(item.id for item in items)]  # strings sort fastest bare
    used_tools = {item.tool_id for item in items}
    for tool_id in sorted(used_tools):
        tool = tools.get(tool_id)
        parts.append(canonical(tool.model_dump() if tool else {"unknown": tool_id}))
    parts.append(canonical(options.model_dump(exclude={"dry_run"})))
    parts.append(canonical(sorted(selected_ids) if selected_ids is not None else "all-open"))
    return _digest("\n".join(parts))


def step_tokens(plan_fingerprint: str) -> Callable[[str], str]:
    """step_token for every step of one plan: the hash takes in the
    fingerprint once and is copied for each line (the same digest)."""
    start = hashlib.sha256(f"{plan_fingerprint}|".encode())

    def token(line: str) -> str:
        digest = start.copy()
        digest.update(line.encode())
        return TOKEN_PREFIX + digest.hexdigest()[:40]

    return token


def step_token(plan_fingerprint: str, line: str) -> str:
    """The step's Idempotency-Key: the plan's fingerprint and the item's line
    (its id, tool and inputs among the rest)."""
    return TOKEN_PREFIX + _digest(f"{plan_fingerprint}|{line}")[:40]
