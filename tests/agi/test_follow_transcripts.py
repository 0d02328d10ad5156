"""The report follow-up replayed from AGI dialogues recorded on the real Asterisk.

The replayer plays Asterisk and checks every command the IVR sends, so the spoken
agency name's file (named by the hash of its text, language and voice) must come
out at the very path it had in the recorded call: the real SpeechCache makes it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from agi.follow import FollowFlow
from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.models import Outcome
from callcenter.service import CallService
from core.clock import FakeClock
from core.db import Database
from dialplan.speech import SpeechCache
from tests.agi.test_follow_units import FakeReports, report
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
THEIRS = "6000574005"  # the report keyed in the recorded call (after 6000574006, wrong)


@pytest.fixture
async def follow_server(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(lab_config()))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(datetime(2026, 12, 6, 15, 0, tzinfo=TZ))  # afternoon shift
    reports = FakeReports(
        [],
        others=[
            report(
                number=THEIRS,
                agency="Phường Tân Định",
                deadline_at=datetime(2026, 12, 10, 3, 0, tzinfo=TZ),
            )
        ],
    )
    speech = SpeechCache(settings.prompts_dir / "spoken")
    follow = FollowFlow(settings, reports, speech, clock)
    server = FastAGIServer("127.0.0.1", 0, routes(IVR(settings, calls, clock, follow=follow)))
    await server.start()
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield settings, calls, reports, port
    await server.stop()
    await speech.close()
    await db.close()


async def test_no_caller_id_asked_for_a_number_then_operator(follow_server):
    settings, calls, _, port = follow_server
    transcript = Transcript.load("follow_no_caller_id_operator", settings.home)
    await replay(transcript, "127.0.0.1", port)
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None
    assert call.ivr_path == "3:follow > follow:no_caller_id > follow:agent"
    assert (call.ivr_choice, call.queue) == ("follow:agent", "t1022-afternoon")


async def test_wrong_check_digit_never_looked_up_then_the_report_read(follow_server):
    settings, calls, reports, port = follow_server
    transcript = Transcript.load("follow_wrong_then_right_number", settings.home)
    sent = await replay(transcript, "127.0.0.1", port)
    assert reports.asked == [THEIRS]
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None
    assert call.ivr_path == (
        f"3:follow > follow:none > follow:wrong_number > follow:number:{THEIRS} > silence"
    )
    assert call.outcome == Outcome.HANGUP_IVR  # hung up during the question
    spoken = [c for c in sent if "/spoken/" in c]
    assert len(spoken) == 1
