"""How a dispatch reaches a worker (worker.dispatch decides when): each plan
with work to do advances in an invocation of its own.

Two transports (NOFX_DISPATCH):
- `http` (the default on Vercel): `POST {worker URL}/api/worker/advance
  {plan_id, reason}` with `Authorization: Bearer $NOFX_WORKER_SECRET`. The
  worker answers 202 at once and works after its reply, so a dispatch costs
  the dispatcher one short request, and a thousand active plans run on a
  thousand invocations.
- `local` (the default elsewhere): the work goes to the server's Background
  pool (the dev server) or runs inline after the reply (the tests' client).

Delivery is at-least-once and harmless when doubled: the plan's row lock,
step leases and FOR UPDATE SKIP LOCKED decide who runs a step. State lives in
PostgreSQL; a dispatch that is lost (the worker URL down, an invocation
killed) is found again by the tick, which dispatches every due plan.
"""

from __future__ import annotations

import http.client
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from lib import settings

log = logging.getLogger("nofx.dispatch")

WORKER_PATH = "/api/worker/advance"
HTTP_TIMEOUT_SECONDS = 10.0
PARALLEL_POSTS = 16


def transport() -> str:
    chosen = settings.env("NOFX_DISPATCH")
    if chosen in ("http", "local"):
        return chosen
    return "http" if settings.on_vercel() else "local"


def post_all(ids: list[str], reason: str) -> int:
    if len(ids) == 1:
        return int(_post(ids[0], reason))
    with ThreadPoolExecutor(max_workers=min(PARALLEL_POSTS, len(ids)), thread_name_prefix="nofx-dispatch") as pool:
        return sum(pool.map(lambda plan_id: _post(plan_id, reason), ids))


def _post(plan_id: str, reason: str) -> bool:
    base = urlsplit(settings.worker_url())
    body = json.dumps({"plan_id": plan_id, "reason": reason}).encode()
    # no Idempotency-Key: a dispatch sent twice is two runs, which the leases make harmless
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {settings.secret('NOFX_WORKER_SECRET')}"}
    bypass = settings.env("VERCEL_AUTOMATION_BYPASS_SECRET")
    if bypass:  # a deployment behind Vercel's protection still reaches its own worker
        headers["x-vercel-protection-bypass"] = bypass
    connection_class = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(base.netloc, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request("POST", base.path.rstrip("/") + WORKER_PATH, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status >= 300:
            log.warning("dispatch of plan %s answered %s", plan_id, response.status)
            return False
        return True
    except OSError as exc:
        log.warning("dispatch of plan %s failed (the tick will find it): %s", plan_id, exc)
        return False
    finally:
        connection.close()
