"""Vercel's file routes for api/, shared by the dev server and the OpenAPI document.

`api/gates/[planId].py` serves `/api/gates/:planId` (the segment arrives as the
query parameter `planId`), `api/approvals/index.py` serves `/api/approvals`.
Files and folders starting with `_` or `.` are not functions, as on Vercel.
Static routes win over dynamic ones, as on Vercel.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib import settings

API_DIR = settings.ROOT / "api"
DYNAMIC = re.compile(r"^\[([A-Za-z_][A-Za-z0-9_]*)\]$")


@dataclass(frozen=True)
class Route:
    file: Path
    segments: tuple[str, ...]  # literal text, or "{name}" for a dynamic one
    pattern: re.Pattern[str] = field(compare=False)
    root: Path = field(compare=False, default=API_DIR.parent)

    @property
    def template(self) -> str:
        """The route in OpenAPI form: /api/gates/{planId}."""
        return "/" + "/".join(self.segments)

    @property
    def params(self) -> list[str]:
        return [s[1:-1] for s in self.segments if s.startswith("{")]

    @property
    def module_name(self) -> str:
        rel = self.file.relative_to(self.root).with_suffix("")
        return "nofx_api." + ".".join(re.sub(r"\W", "_", part) for part in rel.parts)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.pattern.match(path.rstrip("/") or "/")
        return m.groupdict() if m else None


def _route_for(file: Path, api_dir: Path) -> Route:
    parts = list(file.relative_to(api_dir.parent).with_suffix("").parts)
    if parts[-1] == "index":
        parts.pop()
    segments = []
    regex = []
    for part in parts:
        dyn = DYNAMIC.match(part)
        if dyn:
            segments.append("{" + dyn.group(1) + "}")
            regex.append(f"(?P<{dyn.group(1)}>[^/]+)")
        else:
            segments.append(part)
            regex.append(re.escape(part))
    return Route(file, tuple(segments), re.compile("^/" + "/".join(regex) + "$"), api_dir.parent)


def discover(api_dir: Path = API_DIR) -> list[Route]:
    routes = []
    for file in sorted(api_dir.rglob("*.py")):
        rel = file.relative_to(api_dir)
        if any(p.startswith(("_", ".")) for p in rel.parts):
            continue
        routes.append(_route_for(file, api_dir))
    # Static segments before dynamic ones at the first place they differ.
    routes.sort(key=lambda r: [(1 if s.startswith("{") else 0, s) for s in r.segments])
    return routes


def resolve(routes: list[Route], path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        params = route.match(path)
        if params is not None:
            return route, params
    return None


_modules: dict[Path, Any] = {}
_load_lock = threading.Lock()


def load(route: Route) -> Any:
    """Import the route's file once and return its module."""
    module = _modules.get(route.file)
    if module is None:
        with _load_lock:
            module = _modules.get(route.file)
            if module is None:
                spec = importlib.util.spec_from_file_location(route.module_name, route.file)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[route.module_name] = module
                spec.loader.exec_module(module)
                _modules[route.file] = module
    return module
