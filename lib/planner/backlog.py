"""Writing the backlog through the API: items in one pack, dependencies by key.

(Supabase's Data API can write the backlog too, under the planner policies;
this endpoint is for clients without it, the smoke test among them.)
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lib.trail import audit
from lib.web.problems import Problem, invalid_input


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    tool_id: str = Field(min_length=1, max_length=100)
    inputs: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=3, ge=1, le=5)
    estimate_minutes: float | None = Field(default=None, ge=0, le=99_999_999.99, description="numeric(10, 2)")
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


ITEM_COLUMNS = (
    "id",
    "key",
    "title",
    "description",
    "pack_id",
    "tool_id",
    "inputs",
    "priority",
    "estimate_minutes",
    "depends_on",
    "tags",
    "environment",
    "created_by",
    "created_by_sub",
    "updated_by_sub",
)


INSERT_ITEMS = f"""
WITH added AS (
  INSERT INTO public.backlog_items ({", ".join(ITEM_COLUMNS)})
  SELECT {", ".join(ITEM_COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) AS t(
    id uuid, key text, title text, description text, pack_id text, tool_id text, inputs jsonb, priority smallint,
    estimate_minutes numeric, depends_on uuid[], tags text[], environment text, created_by text,
    created_by_sub text, updated_by_sub text)
  ON CONFLICT (key) DO NOTHING
  RETURNING 1)
SELECT count(*) AS n FROM added
"""  # noqa: S608 - ITEM_COLUMNS is a constant


def create(conn: Any, request: NewItems, principal: Any) -> CreatedItems:
    errors: list[dict[str, Any]] = []
    keys = [item.key for item in request.items]
    key_counts = Counter(keys)
    # both reads are sent together (a pipelined transaction: one round trip)
    tool_rows = conn.execute(
        "SELECT id FROM public.tools WHERE id = ANY(%s)", (sorted({i.tool_id for i in request.items}),)
    )
    existing_rows = conn.execute(
        "SELECT key, id::text AS id FROM public.backlog_items WHERE key = ANY(%s)",
        (sorted({d for i in request.items for d in i.depends_on} | set(keys)),),
    )
    tools = {r["id"] for r in tool_rows.fetchall()}
    existing = {r["key"]: r["id"] for r in existing_rows.fetchall()}
    for index, item in enumerate(request.items):
        if item.tool_id not in tools:
            errors.append({"loc": ["body", "items", index, "tool_id"], "msg": f"no tool {item.tool_id}"})
        if item.key in existing or key_counts[item.key] > 1:
            errors.append({"loc": ["body", "items", index, "key"], "msg": f"key {item.key} is already taken"})
        for position, dep in enumerate(item.depends_on):
            if dep not in key_counts and dep not in existing:
                errors.append({"loc": ["body", "items", index, "depends_on", position], "msg": f"no item {dep}"})
    if errors:
        raise invalid_input(errors)
    conn.execute(
        "INSERT INTO public.packs (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
        (request.pack_id, request.pack_name or request.pack_id),
    )
    # Ids made here, so dependencies resolve before anything is written: every
    # item, its dependencies included, in one statement (depends_on is uuid[],
    # not a foreign key, so the order of the rows does not matter). A key taken
    # meanwhile by a concurrent request is told, not a 500.
    ids = {key: str(uuid.uuid4()) for key in keys}
    rows = [
        {
            "id": ids[item.key],
            "key": item.key,
            "title": item.title,
            "description": item.description,
            "pack_id": request.pack_id,
            "tool_id": item.tool_id,
            "inputs": item.inputs,
            "priority": item.priority,
            "estimate_minutes": item.estimate_minutes,
            "depends_on": [ids.get(d) or existing[d] for d in item.depends_on],
            "tags": item.tags,
            "environment": item.environment,
            "created_by": principal.name,  # the author may not approve the item's step
            "created_by_sub": principal.subject,
            "updated_by_sub": principal.subject,
        }
        for item in request.items
    ]
    inserted = conn.execute(INSERT_ITEMS, (json.dumps(rows),)).fetchone()["n"]
    if inserted != len(rows):
        raise Problem(409, "a key was taken by another request meanwhile; retry with other keys", type="conflict")
    audit.record(
        conn,
        actor=principal,
        action="backlog.items_created",
        backlog_item_ids=ids.values(),
        pack_ids=[request.pack_id],
        details={"keys": keys},
    )
    return CreatedItems(pack_id=request.pack_id, items=[CreatedItem(id=UUID(ids[k]), key=k) for k in keys])
