"""The AMI client's protocol and the call-event handlers' tolerance."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callcenter.events import CallEvents
from core.ami import AMIClient, Event, _Protocol


class Collector:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.forgetable_actions = ()
        self.awaiting_actions: list[object] = []

    def dispatch(self, event) -> None:  # noqa: ANN001
        self.events.append(dict(event))


class Transport:
    def write(self, _data: bytes) -> None: ...

    def close(self) -> None: ...


def test_a_vietnamese_name_split_across_tcp_chunks_arrives_whole():
    proto = _Protocol()
    proto.connection_made(Transport())
    sink = Collector()
    proto.factory = sink
    proto.encoding = "utf8"  # as the Manager sets it
    raw = (
        "Event: AgentConnect\r\nQueue: t1022-night\r\nMemberName: Lý Thị Ngọc\r\n"
        "Uniqueid: pbx-1.5\r\n\r\n"
    ).encode()
    cut = raw.index("ọ".encode()) + 1  # in the middle of a two-byte character
    proto.data_received(raw[:cut])
    proto.data_received(raw[cut:])
    assert len(sink.events) == 1
    assert sink.events[0]["MemberName"] == "Lý Thị Ngọc"
    assert sink.events[0]["Uniqueid"] == "pbx-1.5"


async def test_event_without_uniqueid_is_logged_not_fatal(caplog):
    class Calls:
        async def agent_completed(self, **_kw):  # pragma: no cover - must not be reached
            raise AssertionError("called without a uniqueid")

    handlers = CallEvents(Calls(), clock=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        await handlers.on_complete({"Event": "AgentComplete", "Queue": "q"})  # type: ignore[arg-type]
    assert "AgentComplete without Uniqueid ignored" in caplog.text


async def test_an_immediate_lane_runs_as_the_event_is_read_and_others_queue():
    """The screen-pop's lane has no queue: its handler has run when the event has
    been read, before any turn of the loop; an ordinary lane's has not."""
    ami = AMIClient("127.0.0.1", 1, "u", "s")
    seen: list[tuple[str, str]] = []

    async def now(e: Event) -> None:
        seen.append(("now", e["Uniqueid"]))

    async def later(e: Event) -> None:
        seen.append(("later", e["Uniqueid"]))

    ami.subscribe(["AgentCalled"], now, lane="pop", immediate=True)
    ami.subscribe(["AgentCalled"], later, lane="main")
    for lane in ami._lanes.values():
        lane.start()
    try:
        for uid in ("a.1", "a.2"):
            ami._enqueue(None, Event({"Event": "AgentCalled", "Uniqueid": uid}))  # type: ignore[arg-type]
        assert seen == [("now", "a.1"), ("now", "a.2")]  # in Asterisk's order, at once
        for _ in range(5):
            await asyncio.sleep(0)
        assert seen[2:] == [("later", "a.1"), ("later", "a.2")]
        with pytest.raises(ValueError, match="immediate"):
            ami.subscribe(["Hangup"], later, lane="pop")
    finally:
        for lane in ami._lanes.values():
            await lane.stop()


async def test_an_immediate_handler_that_waits_is_stopped_and_logged(caplog):
    ami = AMIClient("127.0.0.1", 1, "u", "s")
    finished: list[str] = []

    async def waits(e: Event) -> None:
        await asyncio.sleep(0.01)
        finished.append(e["Uniqueid"])  # pragma: no cover - never reached

    async def fails(_e: Event) -> None:
        raise KeyError("Interface")

    async def fine(e: Event) -> None:
        finished.append(e["Uniqueid"])

    ami.subscribe(["AgentCalled"], waits, lane="pop", immediate=True)
    ami.subscribe(["AgentCalled"], fails, lane="pop", immediate=True)
    ami.subscribe(["AgentCalled"], fine, lane="pop", immediate=True)
    with caplog.at_level(logging.ERROR):
        ami._enqueue(None, Event({"Event": "AgentCalled", "Uniqueid": "b.1"}))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert finished == ["b.1"], "the handlers after a waiting or failing one still run"
    assert "waited in the immediate lane pop" in caplog.text
    assert "failed on AgentCalled" in caplog.text
