"""A loopback stand-in for Supabase Realtime's websocket (Phoenix channels, JSON
v1.0.0, as the official realtime client speaks it): it acknowledges joins and
heartbeats, records what the console sent, and pushes Broadcast messages on demand."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class FakeRealtime:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.frames: list[dict[str, Any]] = []
        self._connections: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> FakeRealtime:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Realtime server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request else "")
        self._connections.add(ws)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                if frame.get("event") in ("phx_join", "heartbeat"):
                    await ws.send(
                        json.dumps(
                            {
                                "topic": frame["topic"],
                                "event": "phx_reply",
                                "payload": {"status": "ok", "response": {"postgres_changes": []}},
                                "ref": frame.get("ref"),
                                "join_ref": frame.get("join_ref"),
                            }
                        )
                    )
        finally:
            self._connections.discard(ws)

    def joins(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == "phx_join"]

    def broadcast(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        """What Broadcast from Database delivers to a subscribed client."""
        frame = json.dumps(
            {
                "topic": f"realtime:{topic}",
                "event": "broadcast",
                "payload": {"type": "broadcast", "event": event, "payload": payload},
                "ref": None,
            }
        )

        async def send_all() -> None:
            for ws in list(self._connections):
                await ws.send(frame)

        asyncio.run_coroutine_threadsafe(send_all(), self._loop).result(10)
