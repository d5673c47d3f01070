"""Cold imports, the functional half (timings live in bench.cold_imports): every
api/ module imports cleanly in a fresh interpreter, and the plan endpoint does
not pull in the LLM SDKs, which load only when a plan compares models."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import cold_imports
from lib.web import routes

API_ROUTES = routes.discover()
PLAN = "/api/auto-planner/plan"


@pytest.mark.parametrize("route", API_ROUTES, ids=[r.template for r in API_ROUTES])
def test_each_api_module_imports_in_a_fresh_process(route: routes.Route) -> None:
    # The child exits non-zero (ImportFailed) on an import error or a module without `app`.
    sample = cold_imports.import_in_fresh_process(str(route.file), route.module_name)
    assert "lib" in sample.packages
    assert sample.import_s > 0


def test_the_plan_endpoint_does_not_import_the_llm_sdks() -> None:
    plan = next(r for r in API_ROUTES if r.template == PLAN)
    sample = cold_imports.import_in_fresh_process(str(plan.file), plan.module_name)
    assert "psycopg" in sample.packages and "pydantic" in sample.packages  # it did import the planning shell
    assert cold_imports.llm_sdks_loaded(sample) == []


def test_endpoints_that_only_read_plans_do_not_import_networkx() -> None:
    for template in ("/api/plans/{planId}", "/api/approvals/{id}", "/api/automation/override", "/api/cron/tick"):
        route = next(r for r in API_ROUTES if r.template == template)
        sample = cold_imports.import_in_fresh_process(str(route.file), route.module_name)
        assert "networkx" not in sample.packages, template


def test_the_probe_sees_an_sdk_when_one_is_imported() -> None:
    sample = cold_imports.import_in_fresh_process("code:import openai")
    assert cold_imports.llm_sdks_loaded(sample) == ["openai"]


@pytest.mark.parametrize(
    ("source", "message"),
    [("import lib.no_such_module\n", "no_such_module"), ("handler = None\n", "no WSGI callable named app")],
)
def test_a_module_that_cannot_serve_is_reported(tmp_path: Path, source: str, message: str) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(source)
    with pytest.raises(cold_imports.ImportFailed, match=message):
        cold_imports.import_in_fresh_process(str(broken), "nofx_api.broken")
