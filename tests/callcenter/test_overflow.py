"""Overflow policy logic: numbers typed on the keypad, dial statuses, the offer's texts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import tomli_w

from callcenter.callbacks import valid_callback_number
from callcenter.dialler import result_of_dial
from callcenter.models import Result
from dialplan.prompts import overflow_offer_texts, prompt_texts
from tests.helpers import settings_in
from tests.lab import lab_config


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0912345678", "0912345678"),
        ("0912345678#", "0912345678"),
        ("02838223344", "02838223344"),  # HCMC landline with its area code
        ("84912345678", "0912345678"),
        ("123", None),  # too short
        ("", None),
        ("091234", None),
        ("9123456789", None),  # no leading 0
        ("09123*5678", None),
        ("091234567890123", None),  # too long
        ("1", None),
    ],
)
def test_typed_numbers(typed, expected):
    assert valid_callback_number(typed) == expected


def test_dial_statuses():
    assert result_of_dial("ANSWER") == Result.CONNECTED
    assert result_of_dial("NOANSWER") == Result.NO_ANSWER
    assert result_of_dial("BUSY") == Result.BUSY
    assert result_of_dial("CHANUNAVAIL") == Result.FAILED
    assert result_of_dial("CONGESTION") == Result.FAILED
    assert result_of_dial("") == Result.FAILED
    assert result_of_dial(None) == Result.FAILED


def _settings(tmp_path, **overflow):
    cfg = lab_config()
    cfg["queues"]["overflow"] = overflow
    return settings_in(tmp_path, tomli_w.dumps(cfg))


def test_offer_names_only_the_choices_configured(tmp_path):
    both = overflow_offer_texts(_settings(tmp_path), "vi")
    assert "phím 1" in both["overflow_offer"] and "phím 2" in both["overflow_offer"]
    assert both["overflow_offer"].endswith("giữ máy.")
    assert "giữ máy" not in both["overflow_final"]  # at the end there is no waiting on

    no_vm = overflow_offer_texts(_settings(tmp_path, voice_messages=False), "en")
    assert "press 1" in no_vm["overflow_offer"] and "press 2" not in no_vm["overflow_offer"]


def test_every_overflow_prompt_is_generated_in_both_languages(tmp_path):
    texts = prompt_texts(_settings(tmp_path))
    for lang in ("vi", "en"):
        for pid in (
            "overflow_offer",
            "overflow_final",
            "callback_number",
            "callback_confirm",
            "callback_enter",
            "callback_invalid",
            "callback_done",
            "voice_message_start",
            "voice_message_done",
            *(f"digit-{d}" for d in range(10)),
        ):
            assert texts[(lang, pid)].strip(), (lang, pid)
    assert texts[("vi", "digit-7")] == "bảy" and texts[("en", "digit-0")] == "zero"


def test_overflow_settings_are_validated(tmp_path):
    from core.settings import ConfigError

    with pytest.raises(ConfigError, match="offer_after_seconds"):
        _settings(tmp_path, offer_after_seconds=5)


def test_dialler_picks_the_agent_free_the_longest_as_asterisk_reports_it():
    from datetime import UTC, datetime

    from panoramisk.message import Message

    from callcenter.dialler import QueueSnapshot

    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    epoch = int(now.timestamp())
    q = "t1022-afternoon"

    def member(ext, status="1", paused="0", in_call="0", last=0, queue=q):
        return Message(
            {
                "Event": "QueueMember",
                "Queue": queue,
                "Location": f"PJSIP/{ext}",
                "StateInterface": f"PJSIP/{ext}",
                "Status": status,
                "Paused": paused,
                "InCall": in_call,
                "LastCall": str(last),
            }
        )

    events = [
        Message({"Event": "QueueParams", "Queue": q, "Calls": "1"}),
        member("1006", last=epoch - 100),
        member("1007", last=epoch - 300),
        member("1008", paused="1", last=epoch - 900),  # on a break
        member("1009", status="2", in_call="1"),  # talking
        member("1010", status="6"),  # ringing
        member("1011", last=epoch - 2),  # still in wrap-up
        member("1012", status="5"),  # phone not registered
        member("2006", queue="party-afternoon"),
        Message({"Event": "QueueEntry", "Queue": q, "Position": "1", "Wait": "42"}),
    ]
    snap = QueueSnapshot.parse(events, now)
    assert snap.free_agent(q, set(), wrapup_seconds=5) == "1007"
    assert snap.free_agent(q, {"1007"}, wrapup_seconds=5) == "1006"
    assert snap.free_agent(q, {"1006", "1007"}, wrapup_seconds=5) is None
    assert snap.free_agent(q, {"1006", "1007"}, wrapup_seconds=0) == "1011"
    assert snap.free_agent("party-afternoon", set(), 5) == "2006"
    assert snap.busy == {"1009", "1010"}
    assert snap.waiting[q] == [now - timedelta(seconds=42)]


def test_dialplan_offers_only_what_is_configured(tmp_path):
    from dialplan.render import render
    from hotline.app import AMI_EVENTS

    on = render(_settings(tmp_path / "on", offer_after_seconds=45), AMI_EVENTS)
    assert "periodic-announce-frequency=45" in on["queues.conf"]
    assert "context=hotline-queue-exit" in on["queues.conf"]
    assert "exten => _[12],1," in on["extensions.conf"]
    assert "AGI(${HOTLINE_AGI}/overflow,final," in on["extensions.conf"]
    assert "eventfilter(action(include),name(UserEvent))=" in on["manager.conf"]
    # a long queue: joined at once, the offer as the hold sound; no offer before joining
    assert "Set(CHANNEL(musicclass)=hotline-offer-${HOTLINE_LANG})" in on["extensions.conf"]
    assert "/overflow,full," not in on["extensions.conf"]
    assert "[hotline-offer-vi]" in on["musiconhold.conf"]
    assert "[hotline-offer-en]" in on["musiconhold.conf"]

    voice_only = render(_settings(tmp_path / "vo", callbacks=False), AMI_EVENTS)
    assert "exten => _[2],1," in voice_only["extensions.conf"]

    off = render(_settings(tmp_path / "off", enabled=False), AMI_EVENTS)
    assert "periodic-announce" not in off["queues.conf"]
    assert "context=hotline-queue-exit" not in off["queues.conf"]
    assert "/overflow," not in off["extensions.conf"]
    assert "hotline-offer" not in off["extensions.conf"] + off["musiconhold.conf"]
    # the callback context is there either way (callbacks made from voice messages)
    assert "[hotline-callback]" in off["extensions.conf"]


def test_the_offer_hold_sound_is_the_offer_then_the_hold_files(tmp_path):
    from hotline.system import make_offer_moh

    settings = _settings(tmp_path)
    moh = tmp_path / "moh"
    moh.mkdir()
    (moh / "chime.wav").write_bytes(b"RIFF")
    (moh / "chime.alaw").write_bytes(b"x")
    for lang in ("vi", "en"):
        folder = settings.prompts_dir / lang
        folder.mkdir(parents=True)
        for ext in ("wav", "alaw"):
            (folder / f"overflow_offer.{ext}").write_bytes(lang.encode())
    make_offer_moh(settings, moh)
    make_offer_moh(settings, moh)  # again: the same links, none left over
    vi = settings.state_dir / "moh-offer" / "vi"
    assert sorted(p.name for p in vi.iterdir()) == [
        "1-offer.alaw",
        "1-offer.wav",
        "2-chime.alaw",
        "2-chime.wav",
    ]
    assert (vi / "1-offer.wav").read_bytes() == b"vi"  # a link: a new prompt is heard at once
    assert (vi / "1-offer.wav").resolve() == settings.prompts_dir / "vi" / "overflow_offer.wav"
    en = settings.state_dir / "moh-offer" / "en"
    assert (en / "1-offer.alaw").read_bytes() == b"en"
