"""Fuzzing: schemathesis generates requests from the project's own OpenAPI
document and sends them to the dev server over HTTP (real PostgreSQL).
Every answer must not be a 5xx, must use a documented status code and
content type, and must match its documented schema. A bounded number of
examples per operation keeps it to CI time.

(schemathesis 4.32's pytest plugin does not run under pytest 9, so each
operation is a parametrized test driving hypothesis with the operation's
strategy directly.)
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from lib.web import auth, routes

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("NOFX_FUZZ_EXAMPLES", "12"))  # more for a deeper local run


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every operation with valid input; those that take input also with invalid input."""
    found = []
    for route in routes.discover():
        for method, op in routes.load(route).app.operations.items():
            found.append((method, route.template, GenerationMode.POSITIVE))
            # a page's query (fields none, extras ignored) has nothing to break
            if (op.query is not None and op.query.model_fields) or op.body is not None or route.params:
                found.append((method, route.template, GenerationMode.NEGATIVE))
    return sorted(found, key=lambda op: (op[1], op[0], op[2].value))


@pytest.fixture(scope="module")
def api_schema(live_server: str):
    return schemathesis.openapi.from_url(f"{live_server}/api/openapi")


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    _operations(),
    ids=lambda v: {"positive": "valid", "negative": "invalid"}.get(getattr(v, "value", ""), str(v)),
)
def test_every_operation_holds_its_contract(api_schema, live_server: str, method: str, path: str, mode) -> None:
    """Valid input: documented answers that match their schema. Invalid input
    (schemathesis breaks the schema on purpose): a 4xx, never a 5xx."""
    operation = api_schema[path][method]
    token = auth.mint_token("admin", email="fuzzer@nofx.local")
    checks = CHECKS if mode == GenerationMode.POSITIVE else [*CHECKS, negative_data_rejection]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def holds(case) -> None:
        response = case.call(base_url=live_server, headers={"Authorization": f"Bearer {token}"})
        statuses.append(response.status_code)
        case.validate_response(response, checks=checks)  # raises, naming the failed check

    statuses: list[int] = []
    holds()
    assert statuses, "no request was generated for this operation"
    assert max(statuses) < 500, statuses
    if mode == GenerationMode.NEGATIVE:
        # schemathesis may fail to break a schema with few constraints and send
        # valid data; what it did break must have been refused
        assert any(400 <= s < 500 for s in statuses), statuses
