"""Writing the backlog through the API: items in one pack, dependencies by key.

(Supabase's Data API can write the backlog too, under the planner policies;
this endpoint is for clients without it, the smoke test among them.)
"""

from __future__ import annotations

import json
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib import audit
from lib.problems import invalid_input


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    tool_id: str = Field(min_length=1, max_length=100)
    inputs: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=3, ge=1, le=5)
    estimate_minutes: float | None = Field(default=None, ge=0)
    depends_on: list[str] = Field(default_factory=list, description="keys of items this one waits for")
    tags: list[str] = Field(default_factory=list, max_length=20)
    environment: Literal["development", "staging", "production"] | None = None


class NewItems(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pack_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)
    pack_name: str | None = Field(default=None, max_length=200)
    items: list[NewItem] = Field(min_length=1, max_length=1000)


class CreatedItem(BaseModel):
    id: UUID
    key: str


class CreatedItems(BaseModel):
    pack_id: str
    items: list[CreatedItem]


def create(conn: Any, request: NewItems, principal: Any) -> CreatedItems:
    errors: list[dict[str, Any]] = []
    keys = [item.key for item in request.items]
    tools = {
        r["id"]
        for r in conn.execute(
            "SELECT id FROM public.tools WHERE id = ANY(%s)", (sorted({i.tool_id for i in request.items}),)
        )
    }
    existing = {
        r["key"]: r["id"]
        for r in conn.execute(
            "SELECT key, id::text AS id FROM public.backlog_items WHERE key = ANY(%s)",
            (sorted({d for i in request.items for d in i.depends_on} | set(keys)),),
        )
    }
    for index, item in enumerate(request.items):
        if item.tool_id not in tools:
            errors.append({"loc": ["body", "items", index, "tool_id"], "msg": f"no tool {item.tool_id}"})
        if item.key in existing or keys.count(item.key) > 1:
            errors.append({"loc": ["body", "items", index, "key"], "msg": f"key {item.key} is already taken"})
        for position, dep in enumerate(item.depends_on):
            if dep not in keys and dep not in existing:
                errors.append({"loc": ["body", "items", index, "depends_on", position], "msg": f"no item {dep}"})
    if errors:
        raise invalid_input(errors)
    conn.execute(
        "INSERT INTO public.packs (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (request.pack_id, request.pack_name or request.pack_id),
    )
    ids: dict[str, str] = {}
    for item in request.items:
        row = conn.execute(
            "INSERT INTO public.backlog_items (key, title, description, pack_id, tool_id, inputs, priority, "
            "estimate_minutes, tags, environment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id::text",
            (
                item.key,
                item.title,
                item.description,
                request.pack_id,
                item.tool_id,
                json.dumps(item.inputs),
                item.priority,
                item.estimate_minutes,
                item.tags,
                item.environment,
            ),
        ).fetchone()
        ids[item.key] = row["id"]
    for item in request.items:
        if item.depends_on:
            conn.execute(
                "UPDATE public.backlog_items SET depends_on = %s::uuid[] WHERE id = %s",
                ([ids.get(d) or existing[d] for d in item.depends_on], ids[item.key]),
            )
    audit.record(
        conn,
        actor=principal,
        action="backlog.items_created",
        backlog_item_ids=ids.values(),
        pack_ids=[request.pack_id],
        details={"keys": keys},
    )
    return CreatedItems(pack_id=request.pack_id, items=[CreatedItem(id=UUID(ids[k]), key=k) for k in keys])
