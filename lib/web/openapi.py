"""The OpenAPI 3.1 document, generated from the endpoints and their pydantic models.

Nothing here is written by hand per endpoint: each api/ file's Endpoint knows
its path, methods, roles, body, query and response models, and this module
walks them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from lib.web import routes
from lib.web.endpoint import Endpoint
from lib.web.http import Operation

VERSION = "0.4.0"
REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}

ERROR_TEXT = {
    400: "malformed request (JSON syntax)",
    401: "missing or invalid token",
    403: "role too small, or the feature is switched off",
    404: "no such resource",
    405: "method not allowed",
    409: "conflict with the current state, or an Idempotency-Key reused with another body",
    410: "gone (expired)",
    413: "body too large",
    415: "body is not JSON",
    422: "input failed validation; `errors` names each field",
    500: "unexpected error, logged with the request id",
    503: "the database is unavailable or too slow; retry",
}


def _endpoints() -> list[tuple[routes.Route, Endpoint]]:
    found = []
    for route in routes.discover():
        app = getattr(routes.load(route), "app", None)
        if isinstance(app, Endpoint):
            found.append((route, app))
    return found


def _error_codes(op: Operation) -> list[int]:
    # any operation refuses undeclared query parameters with a 422
    codes = {500, 503, 405, 422}
    if not (op.public and op.role is None):
        codes |= {401, 403}
    if op.body is not None:
        codes |= {400, 413, 415}
    if op.method == "POST":
        codes.add(409)
    if op.flag:
        codes.add(403)
    codes |= set(op.problems)
    return sorted(codes)


def document() -> dict[str, Any]:
    endpoints = _endpoints()
    wanted: list[tuple[type[BaseModel], Any]] = []
    for _, ep in endpoints:
        for op in ep.operations.values():
            if op.body is not None:
                wanted.append((op.body, "validation"))
            if op.query is not None:
                wanted.append((op.query, "validation"))
            if op.response is not None:
                wanted.append((op.response, "serialization"))
    unique = list(dict.fromkeys(wanted))
    refs, defs = models_json_schema(unique, ref_template=REF) if unique else ({}, {})
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, Any] = {}
    for route, ep in endpoints:
        item: dict[str, Any] = {}
        for method, op in sorted(ep.operations.items()):
            item[method.lower()] = _operation(route, ep, op, refs, schemas)
        paths[route.template] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NOFX control plane",
            "version": VERSION,
            "description": "Auto planner, gate evaluators, human approvals, execution and audit.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "webhookSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "Standard Webhooks signature (with webhook-id and webhook-timestamp)",
                },
            },
        },
    }


def _operation(
    route: routes.Route, ep: Endpoint, op: Operation, refs: dict[Any, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    # every path parameter of ours is an id (a malformed one is a 422)
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for name in route.params
    ]
    if op.query is not None:
        query_schema = op.query.model_json_schema(ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, prop in query_schema.get("properties", {}).items():
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                    **({"description": prop["description"]} if "description" in prop else {}),
                }
            )
    if op.method == "POST" and op.idempotency != "none":
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "same key and body replay the stored response; same key, other body: 409",
            }
        )
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    responses[str(op.status)] = ok
    for status in op.also:
        responses[str(status)] = {**ok, "description": "success (see the operation's description)"}
    for code in _error_codes(op):
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "error"),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    operation: dict[str, Any] = {
        "operationId": f"{op.method.lower()}_{route.module_name.removeprefix('nofx_api.api.')}",
        "summary": op.summary or f"{op.method} {route.template}",
        "tags": ep.tags or [route.segments[1] if len(route.segments) > 1 else "api"],
        "parameters": parameters,
        "responses": responses,
    }
    if op.webhook_secret is not None:
        operation["description"] = "Signed deliveries only (Standard Webhooks), with the sender's own secret."
        operation["security"] = [{"webhookSignature": []}]
    elif op.server_secret_env:
        operation["description"] = f"Our own servers only: `Authorization: Bearer ${op.server_secret_env}`."
        operation["security"] = [{"bearerAuth": []}]
    elif op.role is not None:
        operation["description"] = f"Needs role `{op.role}` or above." + (
            f" Switched by `{op.flag}`." if op.flag else ""
        )
        operation["security"] = [{"bearerAuth": []}] + ([{"webhookSignature": []}] if op.webhook_secret_env else [])
    else:
        operation["security"] = []
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    return operation
