"""The AMI client's protocol and the call-event handlers' tolerance."""

from __future__ import annotations

import logging

from callcenter.events import CallEvents
from core.ami import _Protocol


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
