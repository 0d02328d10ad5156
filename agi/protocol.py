"""A small asyncio FastAGI protocol layer.

Asterisk connects, sends ``agi_*: value`` lines and a blank line, then the
server sends one command per line and reads one ``200 result=...`` answer per
command.  When the caller hangs up Asterisk may send a lone ``HANGUP`` line and
then answers every command with ``511``; with ``AGIEXITONHANGUP=yes`` it also
closes the socket.  All three mean the same here: :class:`AGIHangup`, the end
of the session.  (panoramisk 1.4 shifts every later reply by one after a
hang-up; this layer never reads past one.)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

log = logging.getLogger(__name__)

_CALLER_COMMANDS = ("STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "EXEC Playback", "EXEC Read")
_RESULT = re.compile(r"^200 result=(-?[\d*#]*)(?: \((.*?)\))?(?: endpos=\d+)?\s*$")


class AGIHangup(Exception):
    """The channel is gone; nothing more can be done on it."""


class AGIError(Exception):
    """Asterisk refused a command."""

    def __init__(self, command: str, reply: str) -> None:
        self.command, self.reply = command, reply
        super().__init__(f"AGI command {command!r} failed: {reply!r}")


@dataclass(frozen=True)
class Reply:
    result: str
    data: str

    @property
    def code(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


def quote(value: str) -> str:
    """Quote an AGI argument; AGI has no escape for newlines, so they are dropped."""
    value = value.replace("\r", " ").replace("\n", " ")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AGISession:
    """One AGI conversation with one channel."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        command_timeout: float = 120.0,
        connected_at: float | None = None,
    ) -> None:
        self._reader, self._writer = reader, writer
        self.env = env
        self.hung_up = False
        self.command_timeout = command_timeout
        self.connected_at = time.monotonic() if connected_at is None else connected_at
        # Seconds spent in commands that wait on the caller (prompts, keys): the
        # rest of the session's time is this server's own.
        self.caller_wait = 0.0
        # Of the rest, seconds spent waiting for Asterisk: the environment block
        # and the replies to the other commands.
        self.asterisk_wait = 0.0
        # (direction, line) pairs when tracing: ">" to Asterisk, "<" from it.
        self.trace: list[tuple[str, str]] | None = None

    @property
    def own_time(self) -> float:
        """Seconds since Asterisk connected, less the time spent waiting on the caller."""
        return time.monotonic() - self.connected_at - self.caller_wait

    @property
    def script(self) -> str:
        """The route: ``agi://host/ivr?x`` gives ``ivr``."""
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    @property
    def args(self) -> list[str]:
        out = []
        for i in range(1, 64):
            key = f"agi_arg_{i}"
            if key not in self.env:
                break
            out.append(self.env[key])
        return out

    async def _readline(self) -> str:
        raw = await asyncio.wait_for(self._reader.readline(), self.command_timeout)
        if not raw:
            self.hung_up = True
            raise AGIHangup("connection closed")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if self.trace is not None:
            self.trace.append(("<", line))
        return line

    async def command(self, command: str) -> Reply:
        """Send one command, return its parsed ``200`` reply."""
        if self.hung_up:
            raise AGIHangup("already hung up")
        if self.trace is not None:
            self.trace.append((">", command))
        started = time.monotonic()
        self._writer.write(command.encode() + b"\n")
        try:
            await self._writer.drain()
        except ConnectionError:
            self.hung_up = True
            raise AGIHangup("connection lost") from None
        line = await self._readline()
        while line == "HANGUP" or not line:
            if line == "HANGUP":
                self.hung_up = True
            line = await self._readline()
        if line.startswith("511"):
            self.hung_up = True
            raise AGIHangup(line)
        if line.startswith("520-"):  # multi-line usage text ends with "520 End of ..."
            while not line.startswith("520 "):
                line = await self._readline()
            raise AGIError(command, "invalid command syntax")
        if command.startswith(_CALLER_COMMANDS):
            self.caller_wait += time.monotonic() - started
        else:
            self.asterisk_wait += time.monotonic() - started
        m = _RESULT.match(line)
        if not m:
            raise AGIError(command, line)
        reply = Reply(m.group(1), m.group(2) or "")
        if reply.result == "-1" and self.hung_up:
            raise AGIHangup(line)
        return reply

    # --- the commands the IVR uses -------------------------------------
    async def answer(self) -> None:
        await self.command("ANSWER")

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def exec(self, app: str, *args: str) -> Reply:
        reply = await self.command(f"EXEC {app} {quote(','.join(args))}")
        if reply.result == "-2":
            raise AGIError(f"EXEC {app}", "application not found")
        return reply

    async def stream_file(self, path: str, escape_digits: str = "") -> str | None:
        """Play a prompt; returns the key that interrupted it, if any."""
        reply = await self.command(f"STREAM FILE {path} {quote(escape_digits)}")
        if reply.code < 0:
            raise AGIHangup("hang-up during playback")
        return chr(reply.code) if reply.code > 0 else None

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> str:
        """Play ``path`` and collect up to ``max_digits`` keys; '' on silence."""
        reply = await self.command(f"GET DATA {path} {timeout_ms} {max_digits}")
        if reply.result == "-1":
            raise AGIHangup("hang-up while reading keys")
        return reply.result

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait up to ``timeout_ms`` for one key; None when none came."""
        reply = await self.command(f"WAIT FOR DIGIT {timeout_ms}")
        if reply.code < 0:
            raise AGIHangup("hang-up while waiting for a key")
        return chr(reply.code) if reply.code > 0 else None

    async def hangup(self) -> None:
        try:
            await self.command("HANGUP")
        except AGIHangup:
            pass


Handler = Callable[[AGISession], Awaitable[None]]


async def read_env(reader: asyncio.StreamReader, timeout: float = 5.0) -> dict[str, str]:
    """Read the ``agi_*`` header block."""
    env: dict[str, str] = {}
    while True:
        raw = await asyncio.wait_for(reader.readline(), timeout)
        if not raw:
            raise AGIHangup("closed before the AGI environment was sent")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            return env
        key, _, value = line.partition(":")
        env[key.strip()] = unquote(value.strip()) if key.startswith("agi_arg") else value.strip()


class FastAGIServer:
    """Serves FastAGI routes (``agi://host:port/<route>``) from one asyncio server."""

    def __init__(
        self, host: str, port: int, routes: dict[str, Handler], *, trace_dir: Path | None = None
    ) -> None:
        self.host, self.port = host, port
        self.routes = routes
        # When set, every session's dialogue is written there as a transcript
        # (the format tests/fixtures/agi/*.txt replays).
        self.trace_dir = trace_dir
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def serving(self) -> bool:
        """Whether the FastAGI socket is listening."""
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, reuse_address=True, backlog=512
        )
        log.info(
            "FastAGI listening on %s:%s (routes: %s)", self.host, self.port, sorted(self.routes)
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted = time.monotonic()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        channel = "?"
        session: AGISession | None = None
        try:
            env = await read_env(reader)
            session = AGISession(reader, writer, env, connected_at=accepted)
            session.asterisk_wait = time.monotonic() - accepted
            channel = env.get("agi_channel", "?")
            if self.trace_dir is not None:
                session.trace = []
            handler = self.routes.get(session.script)
            if handler is None:
                log.error("AGI route %r unknown (channel %s)", session.script, channel)
                return
            await handler(session)
        except AGIHangup:
            log.debug("AGI session ended by hang-up on %s", channel)
        except (TimeoutError, ConnectionError) as e:
            log.warning("AGI session on %s lost: %r", channel, e)
        except Exception:
            # One bad call must never take the server down: the dialplan's
            # fallback still queues the caller because no route was set.
            log.exception("AGI handler failed on channel %s", channel)
        finally:
            if session is not None and session.trace is not None and self.trace_dir:
                write_transcript(self.trace_dir, session)
            self._tasks.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


def write_transcript(folder: Path, session: AGISession) -> Path:
    """Save a session as ``env`` lines, a blank line, then ``> cmd`` / ``< reply`` lines."""
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]", "_", session.env.get("agi_uniqueid", "unknown"))
    path = folder / f"{name}.txt"
    lines = [f"{k}: {v}" for k, v in session.env.items()] + [""]
    lines += [f"{d} {line}" for d, line in session.trace or []]
    path.write_text("\n".join(lines) + "\n")
    return path
