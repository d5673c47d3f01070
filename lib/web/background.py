"""Work after the reply: a request commits, answers, and then what it set in
motion runs, never while a person or a webhook waits.

Where the work runs depends on what serves the request:
- On Vercel, `vercel.functions.wait_until`: the Python runtime (vercel_runtime,
  WSGI included) drains it once the response has been written and before it
  reports the invocation's end, so the caller has its answer and the work is
  still bounded by the function's maxDuration.
- The dev server puts a `Background` pool in the WSGI environ
  (`nofx.background`): threads apart from the request threads, as Vercel runs
  separate invocations, so slow work never starves requests.
- Anything else (the tests' in-process client) runs it from the response
  body's close(), after the answer has been handed over (PEP 3333).

In every case the work is scheduled only once the request's transaction has
committed: it may read what the request wrote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("nofx.background")

ENVIRON_KEY = "nofx.background"
Work = Callable[[], Any]


class Background:
    """Threads for work after replies (and the work it dispatches in turn)."""

    def __init__(self, workers: int = 16) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nofx-worker")
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self.submitted = 0  # work handed over so far (tests and benchmarks count dispatches)

    def submit(self, work: Work) -> None:
        with self._lock:
            self._pending += 1
            self.submitted += 1
        self._pool.submit(self._run, work)

    def _run(self, work: Work) -> None:
        try:
            work()
        except Exception:
            log.warning("background work failed", exc_info=True)
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is queued or running (tests and benchmarks)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Inline:
    """Runs the work at once, in the caller's thread (already after the reply)."""

    def submit(self, work: Work) -> None:
        try:
            work()
        except Exception:
            log.warning("work after the reply failed", exc_info=True)


def _vercel_wait_until(work: Work) -> bool:
    """Hand the work to Vercel's wait_until when this is a Vercel invocation."""
    try:
        from vercel.cache.context import get_context
    except ImportError:
        return False
    if get_context().wait_until is None:  # not inside an invocation (e.g. a local run)
        return False
    import asyncio

    from vercel.functions import wait_until

    wait_until(asyncio.to_thread(Inline().submit, work))
    return True


def after_reply(ctx: Any, work: Work) -> None:
    """Run `work` once the request has committed and answered."""
    background = ctx.request.environ.get(ENVIRON_KEY)

    def schedule() -> None:
        if _vercel_wait_until(work):
            return
        if background is not None:
            background.submit(work)
        else:
            ctx.after_send.append(lambda: Inline().submit(work))

    ctx.after_commit.append(schedule)


def current(ctx: Any) -> Background | Inline:
    """What runs follow-up work for this request's server."""
    background = ctx.request.environ.get(ENVIRON_KEY)
    return background if background is not None else Inline()
