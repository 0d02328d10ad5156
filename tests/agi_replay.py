"""Replays a recorded FastAGI dialogue against the real FastAGI server.

A transcript (tests/fixtures/agi/*.txt, written by FastAGIServer's trace) is
the ``agi_*`` environment, a blank line, then ``> command`` lines the server
must send and ``< reply`` lines Asterisk answered.  The replayer plays
Asterisk: it checks each command and answers with the recorded reply, and
after the last reply closes the connection as Asterisk does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "agi"


@dataclass
class Transcript:
    env: list[str]
    steps: list[tuple[str, str]]

    @classmethod
    def load(cls, name: str, home: Path) -> Transcript:
        text = (FIXTURES / f"{name}.txt").read_text().replace("@HOME@", str(home))
        head, _, body = text.partition("\n\n")
        steps = [(line[0], line[2:]) for line in body.splitlines() if line[:2] in ("> ", "< ")]
        return cls(head.splitlines(), steps)

    def env_value(self, key: str) -> str:
        return next(line.split(": ", 1)[1] for line in self.env if line.startswith(key + ":"))


async def replay(transcript: Transcript, host: str, port: int) -> list[str]:
    """Play Asterisk's side; returns the commands the server sent."""
    reader, writer = await asyncio.open_connection(host, port)
    sent: list[str] = []
    try:
        writer.write(("\n".join(transcript.env) + "\n\n").encode())
        await writer.drain()
        for direction, line in transcript.steps:
            if direction == ">":
                got = (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n")
                sent.append(got)
                assert got == line, f"server sent {got!r}, transcript has {line!r}"
            else:
                writer.write(line.encode() + b"\n")
                await writer.drain()
        if transcript.steps and transcript.steps[-1] == ("<", "HANGUP"):
            # the caller hung up: with AGIEXITONHANGUP Asterisk then closes its side
            writer.write_eof()
        # After the last reply the server has nothing more to say.
        extra = await asyncio.wait_for(reader.read(), 5)
        assert extra == b"", f"server sent more than the transcript: {extra!r}"
    finally:
        writer.close()
        await writer.wait_closed()
    return sent
