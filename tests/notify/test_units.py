"""The notifications' own logic, without the gateway: the texts and their size on the
air, the night hold, who is reached on which channel."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from core.clock import Clock
from notify.models import Kind, NotifyChannel
from notify.planner import Planner
from notify.texts import shorten, sms_text, status_url
from sms.coding import size
from tests.helpers import settings_in
from tests.sms.conftest import sms_settings

NUMBER = "1234567897"


def _planner(tmp_path: Path, **notify: object) -> Planner:
    settings = sms_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'x.db'}",
        "unit",
        {"notify": {"enabled": True, **notify}, "public": {"url": "https://1022.example.vn"}},
    )
    return Planner(None, settings, Clock())  # type: ignore[arg-type]


def test_every_citizen_sms_fits_three_ucs2_parts_even_with_a_long_result() -> None:
    long_result = "Đã kiểm tra hiện trường và yêu cầu đơn vị thi công khắc phục " * 10
    for kind in (
        "code",
        "forwarded",
        "result",
        "survey",
        "survey_low",
        "survey_thanks",
        "reopened",
    ):
        for lang in ("vi", "en"):
            text = sms_text(
                kind,
                lang,
                number=NUMBER,
                hotline="1022",
                status_url="https://1022.example.vn/status",
                agency="Ủy ban nhân dân Phường Bến Nghé, Quận 1",
                result=long_result,
            )
            assert "{" not in text, text
            assert size(text).parts <= 4, (kind, lang, size(text))
    assert "123 456 789 7" in sms_text("code", "vi", number=NUMBER, hotline="1022", status_url=None)


def test_shorten_cuts_at_a_word_and_says_so() -> None:
    assert shorten("Đã xong", 20) == "Đã xong."
    cut = shorten("một hai ba bốn năm sáu bảy", 12)
    assert cut.endswith("…") and len(cut) <= 12 and "bố" not in cut
    assert shorten("  dòng\n  hai  ", 50) == "dòng hai."


def test_the_status_page_address_follows_the_public_prefix() -> None:
    assert status_url("https://1022.example.vn/", "") == "https://1022.example.vn/status"
    assert status_url("https://x.vn", "/public") == "https://x.vn/public/status"
    assert status_url(None, "") is None


def test_non_urgent_sms_wait_for_the_morning_urgent_ones_do_not(tmp_path: Path) -> None:
    p = _planner(tmp_path, hours="07:00-21:00")
    night = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)  # 23:30 in Ho Chi Minh City
    morning = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)  # 07:00 there
    assert p.due_at(Kind.RESULT, NotifyChannel.SMS, night) == morning
    assert p.due_at(Kind.SURVEY, NotifyChannel.SMS, night) == morning
    assert p.due_at(Kind.CODE, NotifyChannel.SMS, night) == night
    assert p.due_at(Kind.SURVEY_LOW, NotifyChannel.SMS, night) == night
    assert p.due_at(Kind.RESULT, NotifyChannel.EMAIL, night) == night  # mail wakes nobody
    day = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # 10:00 there
    assert p.due_at(Kind.RESULT, NotifyChannel.SMS, day) == day


def _ticket(**kw: object) -> SimpleNamespace:
    base = {"channel": "phone", "citizen_phone": "0901234567", "reporter_email": None}
    return SimpleNamespace(**{**base, **kw})


def test_the_channel_the_citizen_used(tmp_path: Path) -> None:
    p = _planner(tmp_path)
    t = p.citizen_target(_ticket())  # type: ignore[arg-type]
    assert t is not None and (t.channel, t.recipient) == ("sms", "0901234567")
    t = p.citizen_target(_ticket(channel="email", reporter_email="a@b.vn"))  # type: ignore[arg-type]
    assert t is not None and (t.channel, t.recipient) == ("email", "a@b.vn")
    t = p.citizen_target(_ticket(channel="web", reporter_email=None))  # type: ignore[arg-type]
    assert t is not None and t.channel == "sms"
    assert p.citizen_target(_ticket(citizen_phone=None)) is None  # type: ignore[arg-type]
    quiet = _planner(tmp_path / "q", phone_by_sms=False)
    assert quiet.citizen_target(_ticket()) is None  # type: ignore[arg-type]
    assert quiet.citizen_target(_ticket(channel="sms")) is not None  # type: ignore[arg-type]


def test_settings_refuse_an_sms_desk_agent_of_another_team(tmp_path: Path) -> None:
    import pytest

    from core.settings import ConfigError

    example = (Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text()
    text = example.replace(
        'id = "party"\nname = "Đường dây nóng Thành ủy"\n',
        'id = "party"\nname = "Đường dây nóng Thành ủy"\nsms_desk = ["1001"]\n',
    )
    assert text != example
    with pytest.raises(ConfigError, match=r"teams.party.sms_desk\[0\]: 1001 is not an agent"):
        settings_in(tmp_path, text)


def test_codes_in_mail_subjects_bodies_and_the_digest_are_shown_once_dashed(
    tmp_path: Path,
) -> None:
    from zoneinfo import ZoneInfo

    from notify.planner import digest_text
    from notify.texts import agency_email, citizen_email
    from tickets.codes import new_code
    from tickets.models import Ticket

    code = new_code()  # as a ticket stores and the panel shows it: "K7M-4QX8"
    subject, body = agency_email(
        "agency_forwarded",
        code=code,
        number=NUMBER,
        level=2,
        topic="trees",
        description="Cây đổ.",
        deadline=None,
        agency="Phường Bến Nghé",
        child_agency=None,
        panel_url="https://panel.example",
        tz=ZoneInfo("Asia/Ho_Chi_Minh"),
    )
    assert subject.startswith(f"[{code}] ")
    assert f"Mã / Code: {code} / 123 456 789 7" in body
    assert body.endswith(f"/tickets/{code}")
    assert citizen_email("code", "x", code)[0].startswith(f"[{code}] ")
    settings = _planner(tmp_path).settings
    ticket = Ticket(code=code, level=2, topic="trees", description="Cây đổ.", deadline_at=None)
    _subject, digest = digest_text("07/12/2026", [ticket], [], settings)
    assert f"- {code}  cấp 2" in digest
    for text in (subject, body, digest):
        assert "--" not in text, text
