"""Query parameters and JSON bodies into an operation's pydantic models: 400,
413, 415 and 422 problem documents that name the field, never a 500."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from lib import settings
from lib.web.http import Operation, Request
from lib.web.problems import Problem, field_error, invalid_input


def _validation_problem(exc: ValidationError, where: str) -> Problem:
    errors: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        loc = [where, *err["loc"]]
        # pydantic prefixes a validator's own words with "Value error, "
        errors.append({"loc": loc, "msg": str(err["msg"]).removeprefix("Value error, ")})
    return invalid_input(errors)


def parse_query(op: Operation, request: Request, params: dict[str, str]) -> Any:
    """Query parameters into the operation's model. An undeclared parameter is
    a 422 (a typo must not be silently ignored); the [param] segments Vercel
    passes as query parameters are declared by the route. A query model that
    says extra="ignore" (a page, whose link may carry anything) ignores them."""
    fields = op.query.model_fields if op.query is not None else {}
    declared = {info.alias or name for name, info in fields.items()} | set(params)
    ignores_others = op.query is not None and op.query.model_config.get("extra") == "ignore"
    for key, values in request.query.items():
        if key not in declared and not ignores_others:
            raise field_error(422, ["query", key], f"unknown parameter; known: {', '.join(sorted(declared))}")
        if any("\x00" in v for v in values):
            raise field_error(422, ["query", key], "text may not contain NUL characters")
    if op.query is None:
        return None
    data: dict[str, Any] = {}
    for name, info in op.query.model_fields.items():
        key = info.alias or name
        given = request.query.get(key)
        if not given:
            continue
        origin = getattr(info.annotation, "__origin__", None)
        data[key] = given if origin is list else given[-1]
    try:
        return op.query.model_validate(data)
    except ValidationError as exc:
        raise _validation_problem(exc, "query") from None


def _nul_location(value: Any, loc: list[Any]) -> list[Any] | None:
    """Where a NUL character hides in parsed JSON: PostgreSQL text cannot hold one."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*loc, key]
            found = _nul_location(item, [*loc, key])
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_location(item, [*loc, index])
            if found is not None:
                return found
    return None


# JSON nested deeper than this is refused: PostgreSQL's jsonb, pydantic and
# json.dumps all recurse, and thousands of levels made each of them a 500.
MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON (and PostgreSQL's jsonb) has neither
    raise ValueError(f"{name} is not a JSON number")


def _too_deep(value: Any, loc: list[Any]) -> list[Any] | None:
    """Where the parsed body first nests deeper than MAX_DEPTH, walked without recursion."""
    stack: list[tuple[Any, list[Any]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if len(where) > MAX_DEPTH:
            return where
        if isinstance(item, dict):
            stack.extend((v, [*where, k]) for k, v in item.items() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, [*where, i]) for i, v in enumerate(item) if isinstance(v, (dict, list)))
    return None


def parse_body(op: Operation, request: Request) -> tuple[Any, Any]:
    cap = op.max_body or settings.max_body_bytes()
    raw = request.read_body(cap)
    if op.body is None:
        return None, None
    if raw.strip():
        ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise Problem(
                415, f"send JSON (Content-Type: application/json), not {ctype}", type="unsupported-media-type"
            )
        try:
            data = json.loads(raw, parse_constant=_refuse_constant)
        except RecursionError:
            raise Problem(
                400,
                "body is not valid JSON: nested too deeply",
                type="malformed-json",
                errors=[{"loc": ["body"], "msg": f"nested too deeply (at most {MAX_DEPTH} levels)"}],
            ) from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise Problem(
                400,
                f"body is not valid JSON: {exc}",
                type="malformed-json",
                errors=[{"loc": ["body"], "msg": str(exc)}],
            ) from None
    else:
        data = {}
    if b"\\u0000" in raw:
        where = _nul_location(data, ["body"])
        if where is not None:
            msg = "text may not contain NUL (\\u0000) characters"
            raise field_error(422, where, msg)
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # else it cannot nest that deep
        where = _too_deep(data, ["body"])
        if where is not None:
            raise field_error(422, where, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise Problem(
            422,
            "body: expected a JSON object",
            type="invalid-input",
            errors=[{"loc": ["body"], "msg": "expected a JSON object"}],
        )
    try:
        return op.body.model_validate(data), data
    except ValidationError as exc:
        raise _validation_problem(exc, "body") from None
