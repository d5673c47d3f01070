"""Rollback instructions per step, rendered from the tool's template.

A template is JSON whose strings may hold {{inputs.x}}, {{item.key}} or
{{step.token}}. A tool that does not mutate needs no rollback; a mutating tool
without a template, or a template naming an input the item lacks, is a gap
the structural gate reports; it is never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from lib.planner.models import BacklogItem, Tool

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+(?:\.[A-Za-z0-9_-]+)+)\s*\}\}")


def _lookup(path: str, scope: dict[str, Any]) -> Any:
    value: Any = scope
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def _render(node: Any, scope: dict[str, Any], missing: list[str]) -> Any:
    if isinstance(node, str):
        whole = PLACEHOLDER.fullmatch(node)
        if whole:  # a lone placeholder keeps the value's own type
            try:
                return _lookup(whole.group(1), scope)
            except KeyError:
                missing.append(whole.group(1))
                return None

        def substitute(match: re.Match[str]) -> str:
            try:
                return str(_lookup(match.group(1), scope))
            except KeyError:
                missing.append(match.group(1))
                return ""

        return PLACEHOLDER.sub(substitute, node)
    if isinstance(node, dict):
        return {k: _render(v, scope, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, scope, missing) for v in node]
    return node


def _placeholders(node: Any) -> list[str]:
    """Every placeholder path in a template, as _render would look them up."""
    if isinstance(node, str):
        return [match.group(1) for match in PLACEHOLDER.finditer(node)]
    if isinstance(node, dict):
        return [path for value in node.values() for path in _placeholders(value)]
    if isinstance(node, list):
        return [path for value in node for path in _placeholders(value)]
    return []


def _scope(item: BacklogItem, token: str) -> dict[str, Any]:
    return {"inputs": item.inputs, "item": {"id": item.id, "key": item.key}, "step": {"token": token}}


def _gap(tool: Tool, item: BacklogItem, missing: list[str]) -> str:
    return f"rollback template of {tool.id} needs {', '.join(sorted(set(missing)))}, which {item.key} lacks"


def instructions(item: BacklogItem, tool: Tool | None, token: str) -> tuple[dict[str, Any] | None, str | None]:
    """(rollback, gap): the rendered instructions, or None and why not."""
    if tool is None:
        return None, f"tool {item.tool_id} is not in the registry"
    if not tool.mutating:
        return {"action": "none", "reason": f"{tool.id} does not change anything"}, None
    template = tool.rollback_template
    if not template:
        return None, f"{tool.id} changes things but has no rollback template"
    missing: list[str] = []
    rendered = _render(template, _scope(item, token), missing)
    if missing:
        return None, _gap(tool, item, missing)
    return {
        "action": "run_tool",
        "tool_id": rendered.get("tool_id", tool.id),
        "inputs": rendered.get("inputs", {}),
        "idempotency_token": token + "-rollback",
    }, None


class Renderer:
    """instructions() for every step of one plan, with what depends only on
    the tool worked out once per tool: a non-mutating tool's instructions (each
    step still gets a dict of its own), and a template's placeholders, so an
    item that lacks one is told so without rendering the template (many items
    of a tool often lack the same input)."""

    def __init__(self) -> None:
        self._placeholders: dict[str, list[str]] = {}
        self._no_change: dict[str, dict[str, Any]] = {}

    def instructions(
        self, item: BacklogItem, tool: Tool | None, token: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        if tool is not None and not tool.mutating:
            unchanged = self._no_change.get(tool.id)
            if unchanged is None:
                unchanged = self._no_change[tool.id] = instructions(item, tool, token)[0] or {}
            return dict(unchanged), None
        if tool is not None and tool.rollback_template:
            paths = self._placeholders.get(tool.id)
            if paths is None:
                paths = self._placeholders[tool.id] = _placeholders(tool.rollback_template)
            scope = _scope(item, token)
            missing = [path for path in paths if not _resolves(path, scope)]
            if missing:
                return None, _gap(tool, item, missing)
        return instructions(item, tool, token)


def _resolves(path: str, scope: dict[str, Any]) -> bool:
    try:
        _lookup(path, scope)
    except KeyError:
        return False
    return True
