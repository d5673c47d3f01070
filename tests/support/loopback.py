"""The HTTP server the loopback stand-ins (tools, Slack, LLM providers) run on."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server that lets a client hang up quietly: the tests
    time clients out on purpose (a hanging tool, a slow Slack), and the
    answer written after that meets a closed socket."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)
