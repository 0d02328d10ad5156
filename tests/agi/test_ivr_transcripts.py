"""The IVR flow replayed from AGI dialogues recorded on the real Asterisk."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.models import Outcome
from callcenter.service import CallService, sanitize_caller
from core.clock import FakeClock
from core.db import Database
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
async def ivr_server(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(lab_config()))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(datetime(2026, 11, 25, 15, 0, tzinfo=TZ))  # afternoon shift
    server = FastAGIServer("127.0.0.1", 0, routes(IVR(settings, calls, clock)))
    await server.start()
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield settings, calls, port
    await server.stop()
    await db.close()


CASES = {
    "press_1_during_greeting": ("1:agent", "agent", Outcome.IN_IVR, "t1022-afternoon", "vi"),
    "language_emergency_agent": (
        "9:language > 0:emergency > 1:agent",
        "agent",
        Outcome.IN_IVR,
        "t1022-afternoon",
        "en",
    ),
    "invalid_silence_default": (
        "5:invalid > silence > silence > default:agent",
        "default:agent",
        Outcome.IN_IVR,
        "t1022-afternoon",
        "vi",
    ),
    "dtmf_flood_no_caller_id": (
        "#:invalid > *:invalid > #:invalid > default:agent",
        "default:agent",
        Outcome.IN_IVR,
        "party-afternoon",
        "vi",
    ),
    "hangup_during_greeting": ("", None, Outcome.HANGUP_IVR, None, "vi"),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_replay(ivr_server, tmp_path, name):
    settings, calls, port = ivr_server
    transcript = Transcript.load(name, settings.home)
    await replay(transcript, "127.0.0.1", port)
    path, choice, outcome, queue, language = CASES[name]
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None, "the IVR registered the call"
    assert (call.ivr_path, call.ivr_choice, call.outcome, call.queue, call.language) == (
        path,
        choice,
        outcome,
        queue,
        language,
    )
    assert call.recording_base == transcript.env_value("agi_arg_2")
    assert call.hotline_number == transcript.env_value("agi_arg_1")
    if name == "dtmf_flood_no_caller_id":
        assert call.caller_number is None and call.caller_id_raw == "anonymous"
    if outcome == Outcome.HANGUP_IVR:
        assert call.ended_at is not None


@pytest.mark.parametrize("name", ["press_1_during_greeting", "dtmf_flood_no_caller_id"])
async def test_the_pop_is_told_of_the_caller_as_the_call_arrives(tmp_path, name):
    """``on_arrival`` hears the caller ID before the menu: the pop reads their history
    while the greeting plays (callcenter/pophistory.py)."""
    settings = settings_in(tmp_path, tomli_w.dumps(lab_config()))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(datetime(2026, 11, 25, 15, 0, tzinfo=TZ))
    arrivals: list[tuple[str, str | None]] = []

    def arrived(uniqueid: str, number: str | None) -> None:
        arrivals.append((uniqueid, number))

    server = FastAGIServer("127.0.0.1", 0, routes(IVR(settings, calls, clock, on_arrival=arrived)))
    await server.start()
    try:
        port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        transcript = Transcript.load(name, settings.home)
        await replay(transcript, "127.0.0.1", port)
    finally:
        await server.stop()
        await db.close()
    call_number = sanitize_caller(transcript.env_value("agi_callerid"), None).number
    assert arrivals == [(transcript.env_value("agi_uniqueid"), call_number)]
    # anonymous: the pop has no history to read
    assert (call_number is None) == (name == "dtmf_flood_no_caller_id")
