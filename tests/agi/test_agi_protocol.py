"""The FastAGI protocol layer: replies, hang-ups, errors, a failing handler."""

from __future__ import annotations

import asyncio

import pytest

from agi.protocol import AGIError, AGIHangup, AGISession, FastAGIServer, quote


async def session_with(replies: bytes) -> tuple[AGISession, asyncio.StreamReader]:
    reader = asyncio.StreamReader()
    reader.feed_data(replies)
    reader.feed_eof()

    class Sink:
        def __init__(self) -> None:
            self.data = b""

        def write(self, b: bytes) -> None:
            self.data += b

        async def drain(self) -> None:
            return None

    return AGISession(reader, Sink(), {}), reader  # type: ignore[arg-type]


async def test_reply_parsing():
    s, _ = await session_with(b"200 result=1\n200 result= (timeout)\n200 result=12*# (timeout)\n")
    assert (await s.command("X")).result == "1"
    assert await s.get_data("p", 1000, 1) == ""
    assert await s.get_data("p", 1000, 4) == "12*#"


async def test_hangup_line_then_511_is_a_hangup():
    s, _ = await session_with(b"HANGUP\n511 Command Not Permitted on a dead channel\n")
    with pytest.raises(AGIHangup):
        await s.command('STREAM FILE x ""')
    assert s.hung_up
    with pytest.raises(AGIHangup):
        await s.command("ANSWER")  # never reads a shifted reply


async def test_eof_and_minus_one_are_hangups():
    s, _ = await session_with(b"")
    with pytest.raises(AGIHangup):
        await s.answer()
    s, _ = await session_with(b"200 result=-1 endpos=7918\n")
    with pytest.raises(AGIHangup):
        await s.stream_file("greeting", "1")


async def test_invalid_command_usage_is_an_error():
    s, _ = await session_with(
        b"520-Invalid command syntax.  Proper usage follows:\nUsage: ...\n"
        b"520 End of proper usage.\n"
        b"510 Invalid or unknown command\n"
    )
    with pytest.raises(AGIError):
        await s.command("GET DATA")
    with pytest.raises(AGIError) as info:
        await s.command("FROB")
    assert "510" in str(info.value)


def test_quote_escapes_and_drops_newlines():
    assert quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c d"'


async def test_failing_handler_and_unknown_route_do_not_stop_the_server():
    async def boom(_session: AGISession) -> None:
        raise RuntimeError("bug")

    server = FastAGIServer("127.0.0.1", 0, {"boom": boom})
    await server.start()
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for script in ("boom", "nothing-here", "boom"):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"agi_network_script: {script}\nagi_uniqueid: x\n\n".encode())
            await w.drain()
            assert await asyncio.wait_for(r.read(), 5) == b""  # closed: the dialplan falls back
            w.close()
            await w.wait_closed()
    finally:
        await server.stop()
