"""`python -m lib.cli plan-file`: the planner alone, no database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lib import settings


def run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lib.cli", "plan-file", str(path), "--max-parallel", "2"],
        capture_output=True,
        text=True,
        cwd=settings.ROOT,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_prints_stages_and_findings_without_a_database(tmp_path: Path) -> None:
    backlog = tmp_path / "b.json"
    backlog.write_text(
        json.dumps(
            {
                "items": [
                    {"key": "A"},
                    {"key": "B", "depends_on": ["A"]},
                    {"key": "C", "depends_on": ["A"]},
                    {"key": "D", "depends_on": ["B", "C"]},
                    {"key": "E"},
                    {"key": "F"},
                ]
            }
        )
    )
    out = run(backlog)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "stage 0: A, E"
    assert lines[1] == "stage 1: B, C"
    assert lines[2] == "stage 2: F, D" or lines[2] == "stage 2: D, F"
    assert "structural gate: allow" in out.stdout


def test_a_cycle_exits_non_zero_and_names_it(tmp_path: Path) -> None:
    backlog = tmp_path / "c.json"
    backlog.write_text(json.dumps({"items": [{"key": "A", "depends_on": ["B"]}, {"key": "B", "depends_on": ["A"]}]}))
    out = run(backlog)
    assert out.returncode == 2
    assert "dependency cycle" in out.stdout and "A, B" in out.stdout


def test_the_shipped_example_plans() -> None:
    out = run(settings.ROOT / "examples" / "backlog.json")
    assert "stage 0: API-1, DOC-1" in out.stdout
    assert "critical path API-1 -> API-2 -> API-3 -> WEB-2" in out.stdout
