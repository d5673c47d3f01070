"""The local runtime: every api/**/*.py under the routes Vercel gives it, and
public/ as static files, on a real WSGI server (waitress).

`vercel dev` needs a login, so local serving is our own; it follows the same
rules: file routes, [param] segments passed as query parameters, static routes
before dynamic ones, public/ served at the root, and vercel.json's rewrites and
response headers (a function's own header wins over vercel.json's, as on
Vercel), read from the same file the deployment reads.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lib import settings
from lib.web import routes
from lib.web.problems import CONTENT_TYPE, TITLES, Problem

PUBLIC_DIR = settings.ROOT / "public"
VERCEL_JSON = settings.ROOT / "vercel.json"
log = logging.getLogger("nofx.devserver")

StartResponse = Callable[..., Any]


def _pattern(source: str) -> re.Pattern[str]:
    """A vercel.json `source` as a regular expression. Ours use only literal
    paths and `(.*)` groups, which path-to-regexp reads as regex groups."""
    return re.compile(source)


class VercelConfig:
    """The parts of vercel.json that shape what a browser receives."""

    def __init__(self, path: Path = VERCEL_JSON) -> None:
        config = json.loads(path.read_text()) if path.is_file() else {}
        self.rewrites = [(_pattern(r["source"]), r["destination"]) for r in config.get("rewrites", [])]
        self.headers = [
            (_pattern(h["source"]), [(x["key"], x["value"]) for x in h["headers"]]) for h in config.get("headers", [])
        ]

    def rewrite(self, path: str) -> str:
        for pattern, destination in self.rewrites:
            if pattern.fullmatch(path):
                return destination
        return path

    def headers_for(self, path: str) -> list[tuple[str, str]]:
        return [pair for pattern, pairs in self.headers if pattern.fullmatch(path) for pair in pairs]


def _problem(start_response: StartResponse, status: int, detail: str) -> list[bytes]:
    body = json.dumps(Problem(status, detail).document()).encode()
    start_response(f"{status} {TITLES[status]}", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
    return [body]


class DevServer:
    """A WSGI application that dispatches like Vercel's router."""

    def __init__(self, api_dir: Path = routes.API_DIR, public_dir: Path = PUBLIC_DIR, background: Any = None) -> None:
        self.routes = routes.discover(api_dir)
        self.public_dir = public_dir.resolve()
        self.vercel = VercelConfig()
        self.extra: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {}
        # where work after the reply runs (lib/web/background.py): threads
        # apart from the request threads, as Vercel runs other invocations
        self.background = background

    def mount(self, prefix: str, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        """Serve another WSGI app under a path prefix (the local storage backend)."""
        self.extra[prefix] = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "/")
        status_seen: list[str] = []

        configured = self.vercel.headers_for(path)

        def recording_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_seen.append(status)
            own = {key.lower() for key, _ in headers}
            headers = headers + [(key, value) for key, value in configured if key.lower() not in own]
            return start_response(status, headers, exc_info)

        try:
            return self._dispatch(environ, recording_start, self.vercel.rewrite(path))
        finally:
            log.info(
                "%s %s %s %.1fms",
                environ.get("REQUEST_METHOD"),
                path,
                (status_seen or ["-"])[0].split(" ")[0],
                (time.perf_counter() - started) * 1000,
            )

    def _dispatch(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        if self.background is not None:
            from lib.web.background import ENVIRON_KEY

            environ[ENVIRON_KEY] = self.background
        for prefix, app in self.extra.items():
            if path.startswith(prefix):
                return app(environ, start_response)
        if path == "/api" or path.startswith("/api/"):
            found = routes.resolve(self.routes, path)
            if found is None:
                return _problem(start_response, 404, f"no function serves {path}")
            route, params = found
            if params:
                extra = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
                query = environ.get("QUERY_STRING", "")
                environ = {**environ, "QUERY_STRING": f"{query}&{extra}" if query else extra}
            app = routes.load(route).app
            return app(environ, start_response)
        return self._static(environ, start_response, path)

    def _static(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _problem(start_response, 405, "static files are read-only")
        relative = path.lstrip("/") or "index.html"
        target = (self.public_dir / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(self.public_dir) or not target.is_file():
            return _problem(start_response, 404, f"no file at {path}")
        body = target.read_bytes()
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        start_response(
            "200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache")]
        )
        return [body] if environ.get("REQUEST_METHOD") == "GET" else [b""]


def build_app(background: Any = None) -> DevServer:
    server = DevServer(background=background)
    from lib.data import storage

    server.mount(storage.LOCAL_PREFIX, storage.local_app)
    return server


def serve(host: str = "127.0.0.1", port: int = 3000, threads: int = 16) -> None:
    from waitress import serve as waitress_serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from lib.web.background import Background

    workers = Background(int(settings.env("NOFX_DEV_WORKERS", "16") or 16))
    app = build_app(background=workers)
    start_tick_timer(workers)
    log.info("serving %d functions on http://%s:%d", len(app.routes), host, port)
    waitress_serve(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="nofx-dev",
        channel_timeout=120,
        connection_limit=256,
        backlog=256,
    )


def start_tick_timer(workers: Any) -> Any:
    """The same schedule as production: the tick every NOFX_TICK_INTERVAL_SECONDS
    (60), its dispatches run by the dev server's workers."""
    import threading

    interval = float(settings.env("NOFX_TICK_INTERVAL_SECONDS", "60") or 60)
    stop = threading.Event()

    def loop() -> None:
        from lib.ops import cron

        while not stop.wait(interval):
            try:
                report = cron.tick(lambda work: workers.submit(lambda: work(workers)))
                log.info("tick: %s", report.model_dump())
            except Exception:
                log.warning("the tick failed; the next one retries", exc_info=True)

    threading.Thread(target=loop, name="nofx-tick", daemon=True).start()
    return stop


def routes_table() -> list[str]:
    return [f"{r.template}  <-  {r.file.relative_to(settings.ROOT)}" for r in build_app().routes]


if __name__ == "__main__":  # pragma: no cover - `python -m lib.devserver`
    serve()
