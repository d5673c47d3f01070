"""A TCP proxy that delays each direction by a given time: the network hop
between a function and its database, on loopback.

    proxy = DelayProxy(upstream_host, upstream_port).start()
    proxy.delay = 0.001   # one way; a round trip then costs 2 ms more
    ... connect to 127.0.0.1:proxy.port ...

Each chunk is forwarded `delay` seconds after it arrived, in order, without
holding back the chunks behind it (a pipeline of statements is delayed once,
not once per statement), as a network link with latency but ample bandwidth.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any


class DelayProxy:
    def __init__(self, upstream_host: str, upstream_port: int | None) -> None:
        self.upstream_host = upstream_host  # a host name, or the directory of a Unix socket
        self.upstream_port = upstream_port
        self.delay = 0.0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()

    def start(self) -> DelayProxy:
        threading.Thread(target=self._run, name="delay-proxy", daemon=True).start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shut() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream_host.startswith("/"):
            path = f"{self.upstream_host}/.s.PGSQL.{self.upstream_port or 5432}"
            return await asyncio.open_unix_connection(path)
        return await asyncio.open_connection(self.upstream_host, self.upstream_port or 5432)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await self._open_upstream()
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(forward())
        try:
            while True:
                chunk = await reader.read(65536)
                await queue.put((time.monotonic() + self.delay, chunk))
                if not chunk:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()
        finally:
            _close(writer)


def _close(writer: Any) -> None:
    try:
        writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass
