"""The IVR as a classic AGI program: one process per call, over stdin/stdout.

For sites whose Asterisk runs on the same host and prefer
``AGI(/opt/hotline/.venv/bin/hotline-agi,<number>,<recording base>,<linkedid>)``
to FastAGI.  It runs exactly the FastAGI route's code; it pays a process start,
the imports and a database connection on every call, which is why FastAGI is
the default (bench/agi_load.py measures both side by side).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from agi.follow import FollowFlow
from agi.ivr import IVR
from agi.protocol import AGIHangup, AGISession, read_env
from callcenter.service import CallService
from core.clock import Clock
from core.db import Database
from core.settings import load_settings
from dialplan.speech import SpeechCache
from tickets.follow import FollowQueries


async def _stdio() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", 0)
    )
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def run() -> int:
    settings = load_settings()
    reader, writer = await _stdio()
    db = Database(settings.database)
    clock = Clock()
    speech = SpeechCache(
        settings.prompts_dir / "spoken", keep_days=settings.ivr.follow.spoken_cache_days
    )
    follow = FollowFlow(settings, FollowQueries(db), speech, clock)
    try:
        env = await read_env(reader)
        session = AGISession(reader, writer, env)
        await IVR(settings, CallService(db, settings), clock, follow=follow).handle(session)
    except AGIHangup:
        pass
    finally:
        await speech.close()
        await db.close()
    return 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
