"""A measuring relay between Asterisk and an AGI implementation.

Asterisk's dialplan points at the relay; for each call the relay either
connects to the FastAGI server ("fastagi") or starts one classic AGI process
with pipes ("classic"), and copies the dialogue both ways.  It measures, per
call, the time from Asterisk's connection to the moment Asterisk confirmed
``SET VARIABLE HOTLINE_ROUTE``, minus the time spent waiting on the caller
(prompts playing, keys awaited): what the AGI side itself costs.  Both modes
pass through the same relay, so its own overhead is the same on both sides.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field

CALLER_COMMANDS = (b"STREAM FILE", b"GET DATA", b"EXEC Playback", b"EXEC Read")


@dataclass
class Timing:
    accepted: float
    route_ms: float | None = None
    caller_wait: float = 0.0


@dataclass
class Relay:
    fastagi: tuple[str, int]
    mode: str = "fastagi"
    classic_env: dict[str, str] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)
    errors: int = 0

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, backlog=1024)

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter) -> None:
        t = Timing(time.perf_counter())
        self.timings.append(t)
        proc = None
        try:
            if self.mode == "fastagi":
                b_reader, b_writer = await asyncio.open_connection(*self.fastagi)
            else:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "agi.classic",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    env={**os.environ, **self.classic_env},
                )
                assert proc.stdout is not None and proc.stdin is not None
                b_reader, b_writer = proc.stdout, proc.stdin  # type: ignore[assignment]
            state: dict[str, float | bool] = {"cmd_at": 0.0, "caller": False, "route": False}
            await asyncio.gather(
                self._pump_to_agi(a_reader, b_writer, t, state),
                self._pump_to_asterisk(b_reader, a_writer, state),
            )
        except (ConnectionError, OSError):
            self.errors += 1
        finally:
            a_writer.close()
            if proc is not None:
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()

    async def _pump_to_agi(self, src, dst, t: Timing, state) -> None:  # type: ignore[no-untyped-def]
        """Asterisk -> AGI: the env block and the replies."""
        while line := await src.readline():
            now = time.perf_counter()
            if state["caller"]:
                t.caller_wait += now - float(state["cmd_at"])
                state["caller"] = False
            if state["route"] and line.startswith(b"200"):
                t.route_ms = (now - t.accepted - t.caller_wait) * 1000
                state["route"] = False
            dst.write(line)
            await dst.drain()
        dst.close()

    async def _pump_to_asterisk(self, src, dst, state) -> None:  # type: ignore[no-untyped-def]
        """AGI -> Asterisk: the commands."""
        while line := await src.readline():
            state["cmd_at"] = time.perf_counter()
            state["caller"] = line.startswith(CALLER_COMMANDS)
            state["route"] = b"HOTLINE_ROUTE" in line
            dst.write(line)
            await dst.drain()
        dst.close()
