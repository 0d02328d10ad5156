"""The hub's sockets on a real server and real Redis: a browser that stops reading
holds up neither the publisher (the call path) nor the other browsers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid

import aiohttp
from aiohttp import web

from core.bus import Bus
from panel.hub import OUTBOX, Hub
from tests.helpers import REDIS_URL, forget_keys

MESSAGES = 3 * OUTBOX
PADDING = "x" * 4000  # 4 kB a message: the stuck socket's buffers fill within the run


async def test_a_socket_that_stops_reading_holds_up_neither_the_publisher_nor_the_others():
    bus = Bus(REDIS_URL, f"hubtest{uuid.uuid4().hex[:8]}")
    hub = Hub(bus)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hub.join("board", ws, request.transport)
        try:
            async for _ in ws:
                pass
        finally:
            hub.leave(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await hub.start()
    session = aiohttp.ClientSession()
    writer = None
    try:
        await asyncio.wait_for(hub.ready.wait(), 5)
        # the stuck browser: a WebSocket handshake, then nothing read (a small window)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=raw, limit=1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        # a browser that reads everything
        live = await session.ws_connect(f"http://127.0.0.1:{port}/ws")
        got: list[int] = []

        async def read() -> None:
            async for msg in live:
                got.append(json.loads(msg.data)["n"])
                if len(got) == MESSAGES:
                    return

        reading = asyncio.create_task(read())
        for _ in range(100):
            if hub.connected == 2:
                break
            await asyncio.sleep(0.05)
        assert hub.connected == 2

        slowest = 0.0
        for n in range(MESSAGES):
            started = time.perf_counter()
            await asyncio.wait_for(bus.publish("board", {"n": n, "pad": PADDING}), 5)
            slowest = max(slowest, time.perf_counter() - started)
        await asyncio.wait_for(reading, 30)

        assert got == list(range(MESSAGES)), "the reading browser had every message, in order"
        assert hub.stuck == 1, "the browser that read nothing was let go"
        assert hub.connected == 1
        assert slowest < 1.0, f"a publish waited {slowest:.2f} s"
    finally:
        if writer is not None:
            writer.close()
        await session.close()
        await hub.stop()
        await runner.cleanup()
        await forget_keys(bus)
        await bus.close()
