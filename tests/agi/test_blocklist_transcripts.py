"""A blocked caller in the IVR, from AGI dialogues (no Asterisk).

The dialogues follow the real Asterisk's answers of the emergency ones (same
prompts, same reply shapes; ``blocked_*`` in tests/fixtures/agi/): the blocked
message with key 0 then 1 (113 reached), silence then a wrong key (goodbye), and a
hang-up during the message.  The IVR's copy of the list is read from a real
SQLite database; a caller whose block has expired, and one with no caller ID, get
the menu as recorded before the list existed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.blocklist import BlockCache, BlocklistService
from callcenter.models import Outcome
from callcenter.service import CallService
from core.clock import FakeClock
from core.db import Database
from tests.agi.test_emergency import connecting_config
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
BLOCKED = "0907000666"


@pytest.fixture
async def blocking_ivr(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(connecting_config()))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(T0)
    blocks = BlocklistService(db, settings, clock)
    row = await blocks.add(BLOCKED, "quấy rối", 1, by="Sup")
    # the number in press_1_during_greeting, blocked a week ago for a day: expired
    clock.set(T0 - timedelta(days=7))
    await blocks.add("0901111111", "cũ", 1, by="Sup")
    clock.set(T0)
    cache = BlockCache(db, settings, clock, None)
    assert await cache.refresh()
    server = FastAGIServer("127.0.0.1", 0, routes(IVR(settings, calls, clock, blocks=cache)))
    await server.start()
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield settings, calls, port, row.id
    await server.stop()
    await db.close()


CASES = {
    "blocked_key0_113": (
        "blocked > 0:emergency > 1:call:113 > dial:answer",
        "emergency:113",
        Outcome.EMERGENCY,
    ),
    "blocked_silence_wrong_goodbye": ("blocked > silence > 5:invalid", "blocked", Outcome.BLOCKED),
    "blocked_hangup_during_message": ("blocked", None, Outcome.BLOCKED),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_blocked_caller_gets_the_message_and_key_0_only(blocking_ivr, name):
    settings, calls, port, block_id = blocking_ivr
    transcript = Transcript.load(name, settings.home)
    await replay(transcript, "127.0.0.1", port)
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None
    assert (call.ivr_path, call.ivr_choice, call.outcome) == CASES[name]
    assert call.block_id == block_id and call.caller_number == BLOCKED
    assert call.queue is None and call.queued_at is None
    if name == "blocked_silence_wrong_goodbye":
        assert call.ended_at == T0, "the IVR ended it"


@pytest.mark.parametrize("name", ["press_1_during_greeting", "dtmf_flood_no_caller_id"])
async def test_an_expired_block_and_no_caller_id_get_the_menu(blocking_ivr, name):
    settings, calls, port, _block_id = blocking_ivr
    transcript = Transcript.load(name, settings.home)
    await replay(transcript, "127.0.0.1", port)
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None and call.block_id is None
    assert call.outcome != Outcome.BLOCKED and call.queue is not None
