"""Read a backlog from a JSON file, for trying the planner without a database.

    {"items": [{"key": "A", "title": "...", "pack_id": "p", "tool_id": "t", "depends_on": ["B"]}, ...],
     "tools": [{"id": "t", "mutating": false}, ...]}

Items may leave out `id` (the key is used) and name dependencies by key. A
file without `tools` gets a plain, non-mutating tool for every tool id used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lib.planner.models import BacklogItem, Tool


def load(path: Path) -> tuple[dict[str, BacklogItem], dict[str, Tool]]:
    document: Any = json.loads(path.read_text())
    raw_items = document["items"] if isinstance(document, dict) else document
    by_key = {}
    for raw in raw_items:
        raw = {"title": raw.get("key", "?"), "pack_id": "default", "tool_id": "builtin.noop", **raw}
        raw.setdefault("id", raw["key"])
        by_key[raw["key"]] = raw
    ids = {key: raw["id"] for key, raw in by_key.items()}
    backlog = {}
    for raw in by_key.values():
        raw["depends_on"] = [ids.get(dep, dep) for dep in raw.get("depends_on", [])]
        item = BacklogItem.model_validate(raw)
        backlog[item.id] = item
    if isinstance(document, dict) and "tools" in document:
        tools = {t.id: t for t in (Tool.model_validate(raw) for raw in document["tools"])}
    else:
        tools = {tid: Tool(id=tid, name=tid) for tid in {i.tool_id for i in backlog.values()}}
    return backlog, tools
