"""Key 0: the emergency sub-menu's logic, its settings and prompts, and AGI dialogues.

The dialogues are the real Asterisk's answers (``emergency_connect_113`` was
recorded on the lab; the others follow it with the answers Asterisk gives
for a busy line, a silence, a wrong key and a hang-up mid-call).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from agi.emergency import choose, endpoint
from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from callcenter.models import Outcome
from callcenter.service import CallService
from core.clock import FakeClock
from core.db import Database
from core.settings import ConfigError, MenuOption
from dialplan.prompts import emergency_choose_text, prompt_texts
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def connecting_config(**option) -> dict:
    cfg = lab_config()
    cfg["trunk"]["contact"] = "sip:127.0.0.2:5060"
    for h in cfg["hotlines"]:
        if h["id"] == "hl1022":
            for o in h["menu"]:
                if o["action"] == "emergency":
                    o.update(connect=True, **option)
    return cfg


def _option(**kw) -> MenuOption:
    base = dict(digit="0", action="emergency", prompt={"vi": "Khẩn cấp."}, message={"vi": "113."})
    return MenuOption.model_validate(base | kw)


@pytest.mark.parametrize(
    ("keys", "number", "steps"),
    [
        (["1"], "113", ("1:call:113",)),
        (["3"], "115", ("3:call:115",)),
        (["", "2"], "114", ("silence", "2:call:114")),
        (["7", "1"], "113", ("7:invalid", "1:call:113")),
        (["0", ""], None, ("0:invalid", "silence")),
        (["", ""], None, ("silence", "silence")),
        (["4", "*"], None, ("4:invalid", "*:invalid")),
        (["", "", "1"], None, ("silence", "silence")),  # two tries, no third
    ],
)
def test_sub_menu_choice(keys, number, steps):
    choice = choose(_option(connect=True), keys)
    assert (choice.number, choice.steps) == (number, steps)


def test_numbers_and_endpoint_are_configuration(tmp_path):
    opt = _option(connect=True, numbers=["112", "0283822"], via="sbc_emergency")
    assert choose(opt, ["2"]).number == "0283822"
    assert choose(opt, ["3"]).number is None
    s = settings_in(tmp_path / "a", tomli_w.dumps(lab_config()))
    assert endpoint(s, opt) == "sbc_emergency"
    assert endpoint(s, _option(connect=True)) == s.trunk.name == "carrier"


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ({"numbers": ["11a"]}, "numbers[0]"),
        ({"numbers": []}, "numbers"),
        ({"via": "Bad Name"}, "via"),
    ],
)
def test_bad_emergency_settings_name_the_key(tmp_path, option, problem):
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, tomli_w.dumps(connecting_config(**option)))
    assert "menu" in str(e.value) and problem in str(e.value), str(e.value)


def test_only_an_emergency_option_connects(tmp_path):
    cfg = lab_config()
    cfg["hotlines"][0]["menu"][1]["connect"] = True  # the "info" option
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, tomli_w.dumps(cfg))
    assert "connect: only an 'emergency' option" in str(e.value)


def test_sub_menu_and_notice_prompts_are_generated(tmp_path):
    texts = prompt_texts(settings_in(tmp_path, tomli_w.dumps(connecting_config())))
    assert texts[("vi", "emergency-hl1022-0")] == (
        "Để được nối máy tới số 1 1 3, bấm phím 1. Để được nối máy tới số 1 1 4, bấm phím 2. "
        "Để được nối máy tới số 1 1 5, bấm phím 3."
    )
    assert texts[("en", "emergency-hl1022-0")].startswith("To be put through to 1 1 3, press 1.")
    assert ("vi", "emergency-party-0") not in texts  # that hotline only announces
    assert texts[("vi", "notice-hl1022")] == "Có ghi âm."
    assert texts[("vi", "emergency_connecting")] and texts[("en", "emergency_connecting")]
    own = _option(connect=True, choose={"vi": "Công an phím 1.", "en": "Police, 1."})
    assert emergency_choose_text(own, "en") == "Police, 1."


def test_notice_defaults_to_the_recording_sentence(tmp_path):
    cfg = lab_config()
    for h in cfg["hotlines"]:
        h.pop("recording_notice")
    s = settings_in(tmp_path, tomli_w.dumps(cfg))
    h = s.hotlines[0]
    assert h.recording_notice_enabled
    assert h.recording_notice.get("vi") == (
        "Cuộc gọi của quý vị được ghi âm để phục vụ công tác giải quyết phản ánh."
    )
    assert h.recording_notice.get("en").startswith("This call is recorded")


@pytest.fixture
async def ivr_server(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(connecting_config()))
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
    "emergency_connect_113": (
        "0:emergency > 1:call:113 > dial:answer",
        "emergency:113",
        Outcome.EMERGENCY,
    ),
    "emergency_hangup_during_call": (
        "0:emergency > 3:call:115",
        "emergency:115",
        Outcome.EMERGENCY,
    ),
    # not reached: the numbers read out, back to the menu, the record with them
    "emergency_busy_back_to_menu": (
        "0:emergency > 7:invalid > 2:call:114 > dial:busy",
        None,
        Outcome.HANGUP_IVR,
    ),
    "emergency_silence_wrong_then_menu": (
        "0:emergency > silence > 9:invalid > 1:agent",
        "agent",
        Outcome.IN_IVR,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_replay(ivr_server, tmp_path, name):
    settings, calls, port = ivr_server
    transcript = Transcript.load(name, settings.home)
    await replay(transcript, "127.0.0.1", port)
    call = await calls.get(transcript.env_value("agi_uniqueid"))
    assert call is not None
    assert (call.ivr_path, call.ivr_choice, call.outcome) == CASES[name]
    if name == "emergency_silence_wrong_then_menu":
        assert call.queue == "t1022-afternoon"
    else:
        assert call.queue is None


def test_connecting_needs_a_way_out(tmp_path):
    cfg = connecting_config()
    del cfg["trunk"]["contact"]
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path / "a", tomli_w.dumps(cfg))
    assert re.search(r"hotlines\[0\]\.menu\[\d+\]\.connect: the trunk has no contact", str(e.value))
    # an endpoint of the site's own (config/asterisk/pjsip.conf) will do
    cfg = connecting_config(via="emergency_sbc")
    del cfg["trunk"]["contact"]
    menu = settings_in(tmp_path / "b", tomli_w.dumps(cfg)).hotlines[0].menu
    assert next(o for o in menu if o.action == "emergency").via == "emergency_sbc"


def test_the_dialplan_fallback_reads_the_notice_too(tmp_path):
    """With the IVR down the dialplan queues callers itself: they hear the notice first."""
    from dialplan.render import render
    from hotline.app import AMI_EVENTS

    cfg = lab_config()
    cfg["hotlines"][1]["recording_notice_enabled"] = False
    text = render(settings_in(tmp_path, tomli_w.dumps(cfg)), AMI_EVENTS)["extensions.conf"]
    fallback_1022 = text.split("[hotline-hl1022]")[1].split("exten => queue,1")[0]
    assert "Playback(${HOTLINE_PROMPTS}/vi/notice-hl1022)" in fallback_1022
    assert "notice-party" not in text
