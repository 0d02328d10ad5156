"""The report follow-up's own logic: the number entry, the sentences, the spoken-text cache,
its prompts; and the flow driven key by key against a scripted channel."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi.follow import FollowFlow
from agi.ivr import Walk
from agi.keypad import MAX_DIGITS, Entered, NumberEntry
from agi.protocol import AGIHangup
from agi.report_speech import Fragment, Spoken, cut, number_parts, report_parts, text_language
from core.clock import FakeClock
from dialplan import prompts, speech
from dialplan.speech import SpeechCache, cache_key
from tests.helpers import settings_in
from tickets.exceptions import InvalidCode, TicketNotFound
from tickets.follow import Followed, OpenReports
from tickets.models import Status
from tickets.numbers import DIGIT_WORDS, parse_number, spoken

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
GOOD = "1234567894"  # the check digit is right (asserted below)
BAD = "1234567891"


def keys(entry: NumberEntry, text: str) -> Entered | None:
    out = None
    for k in text:
        out = entry.push(k)
        if out is not None:
            return out
    return out


def test_the_numbers_used_here():
    assert parse_number(GOOD) == GOOD
    with pytest.raises(InvalidCode):
        parse_number(BAD)


# -- the number entry ----------------------------------------------------------


def test_entry_a_right_number_then_hash_or_a_pause():
    assert keys(NumberEntry(), GOOD + "#") == Entered("number", GOOD)
    e = NumberEntry()
    assert keys(e, GOOD) is None  # no # yet: it waits
    assert e.timeout() == Entered("number", GOOD)


def test_entry_wrong_check_digit_length_and_leading_zero_are_wrong():
    assert keys(NumberEntry(), BAD + "#") == Entered("wrong", BAD)
    assert keys(NumberEntry(), "12345#") == Entered("wrong", "12345")
    assert keys(NumberEntry(), "0123456789#") == Entered("wrong", "0123456789")


def test_entry_too_many_digits_ends_at_once():
    e = NumberEntry()
    out = keys(e, "9" * (MAX_DIGITS + 1))
    assert out == Entered("wrong", "9" * (MAX_DIGITS + 1))
    assert e.push("#") == out  # over is over


def test_entry_operator_empty_and_restart():
    e = NumberEntry()
    assert keys(e, "1") is None and e.may_be_operator
    assert e.timeout() == Entered("operator", "1")
    assert keys(NumberEntry(), "1#") == Entered("operator", "1")
    # a number starting with 1 is not the operator
    e = NumberEntry()
    assert keys(e, "12") is None and not e.may_be_operator
    assert NumberEntry().timeout() == Entered("empty")
    assert keys(NumberEntry(), "#") == Entered("empty")
    # * starts again
    assert keys(NumberEntry(), "555*" + GOOD + "#") == Entered("number", GOOD)


# -- what is said ----------------------------------------------------------------


def report(**kw) -> Followed:
    base = dict(
        number=GOOD,
        topic="flooding",
        status="forwarded",
        level=2,
        created_at=NOW - timedelta(days=2),
        agency="UBND Phường Bến Nghé",
        deadline_at=datetime(2026, 12, 15, 18, 0, tzinfo=UTC),  # the 16th in Vietnam
        meeting_at=None,
        result=None,
    )
    return Followed(**(base | kw))


TOPICS = {"flooding", "traffic"}
STATUSES = {s.value for s in Status}


def parts_of(r: Followed, language: str = "vi", max_chars: int = 300):
    return report_parts(
        r,
        language=language,
        tz=TZ,
        now=NOW,
        result_max_chars=max_chars,
        topics=TOPICS,
        statuses=STATUSES,
    )


def test_number_is_read_digit_by_digit_as_tickets_spoken_says():
    assert prompts.DIGITS["vi"] == DIGIT_WORDS
    words = [prompts.DIGITS["vi"][int(p.prompt_id[-1])] for p in number_parts(GOOD)]
    assert " ".join(words) == " ".join(spoken(GOOD))


def test_a_forwarded_report_with_its_agency_and_deadline():
    parts = parts_of(report())
    assert parts == [
        Fragment("follow_report"),
        *number_parts(GOOD),
        Fragment("follow_topic"),
        Fragment("topic-flooding"),
        Fragment("follow_status"),
        Fragment("status-forwarded"),
        Fragment("follow_agency"),
        Spoken("UBND Phường Bến Nghé", "vi"),
        Fragment("follow_deadline"),
        Fragment("day-16"),  # local day, not UTC's
        Fragment("month-12"),
    ]


def test_overdue_meeting_and_unknown_topic():
    parts = parts_of(report(deadline_at=NOW - timedelta(hours=1), topic="gone"))
    assert Fragment("follow_overdue") in parts
    assert not [p for p in parts if isinstance(p, Fragment) and p.prompt_id.startswith("topic")]
    meeting = parts_of(
        report(
            status="meeting_scheduled",
            agency=None,
            meeting_at=datetime(2027, 1, 4, 2, 0, tzinfo=UTC),
        )
    )
    assert meeting[-3:] == [Fragment("follow_meeting"), Fragment("day-4"), Fragment("month-1")]
    assert Fragment("follow_deadline") not in meeting


def test_an_answer_is_read_cut_with_the_web_page_named():
    short = parts_of(report(status="answered", result="Đã nạo vét xong."))
    assert short[-2:] == [Fragment("follow_result"), Spoken("Đã nạo vét xong.", "vi")]
    assert Fragment("follow_deadline") not in short  # answered: no deadline to tell
    long = "Đã kiểm tra hiện trường. " + "Công nhân đã nạo vét cống thoát nước. " * 20
    parts = parts_of(report(status="answered", result=long), max_chars=120)
    said = parts[-2]
    assert isinstance(said, Spoken) and len(said.text) <= 120
    assert said.text.endswith(".")
    assert parts[-1] == Fragment("follow_full_answer")


def test_cut_at_a_word():
    assert cut("a  b\nc", 10) == ("a b c", False)
    text, was_cut = cut("mot hai ba bon nam sau bay", 12)
    assert (text, was_cut) == ("mot hai ba", True)
    assert cut("x" * 50, 10) == ("x" * 10, True)


def test_free_text_voice():
    assert text_language("Sở Giao thông", "en") == "vi"
    assert text_language("Water company", "en") == "en"
    assert text_language("Water company", "vi") == "vi"


def test_nothing_personal_reaches_the_parts():
    fields = {f for f in Followed.__dataclass_fields__}
    assert "citizen_phone" not in fields and "citizen_name" not in fields
    assert "citizen_address" not in fields


# -- prompts -----------------------------------------------------------------------


def test_follow_prompts_exist_for_every_status_topic_and_day(tmp_path):
    settings = settings_in(tmp_path)
    texts = prompts.prompt_texts(settings)
    for lang in ("vi", "en"):
        for s in Status:
            assert texts[(lang, f"status-{s.value}")]
        for t in settings.tickets.topics:
            assert texts[(lang, f"topic-{t.id}")] == t.name.get(lang)
        for d in range(1, 32):
            assert (lang, f"day-{d}") in texts
        for name in ("intro", "enter", "options", "wrong", "unknown", "wait", "full_answer"):
            assert texts[(lang, f"follow_{name}")]
    assert texts[("vi", "day-15")] == "ngày 15" and texts[("en", "day-22")] == "the 22nd"
    assert texts[("en", "month-12")] == "of December"


def test_no_follow_option_no_follow_prompts(tmp_path):
    text = (Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text()
    text = text.replace('action = "follow"', 'action = "repeat"')
    settings = settings_in(tmp_path, text)
    assert not [k for k in prompts.prompt_texts(settings) if k[1].startswith("follow_")]


# -- the spoken-text cache ------------------------------------------------------------


def test_cache_key_of_text_language_and_voice():
    k = cache_key("Sở Xây dựng", "vi")
    assert k == cache_key("  Sở   Xây\ndựng ", "vi")  # spoken the same
    assert k != cache_key("Sở Xây dựng", "en")
    assert k != cache_key("Sở Xây dựng", "vi", voice="vi")
    assert k != cache_key("Sở Xây dựng.", "vi")
    assert len(k) == 64


async def test_speech_is_made_once_in_asterisk_format(tmp_path, monkeypatch):
    cache = SpeechCache(tmp_path / "spoken")
    runs: list[str] = []
    real_run = speech._run

    async def counting(cmd, **kw):
        runs.append(cmd[0])
        await real_run(cmd, **kw)

    monkeypatch.setattr(speech, "_run", counting)
    # the same text asked for by two calls at once: one synthesis
    a, b = await asyncio.gather(
        cache.speak("-v en Sở Tài nguyên và Môi trường", "vi"),
        cache.speak("-v en Sở Tài nguyên và Môi trường", "vi"),
    )
    assert a == b and runs.count("espeak-ng") == 1
    wav = Path(a + ".wav")
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # over a second: the text was spoken, not the option
    assert Path(a + ".alaw").stat().st_size > 4000 and Path(a + ".ulaw").is_file()
    assert wav.parent.parent == tmp_path / "spoken"
    # later: from the disk
    assert await cache.speak("-v en Sở Tài nguyên và Môi trường", "vi") == a
    assert runs.count("espeak-ng") == 1
    assert not [p for p in wav.parent.iterdir() if p.name.startswith(".")]  # no leftovers
    await cache.close()


async def test_nothing_to_say_and_prune(tmp_path):
    cache = SpeechCache(tmp_path)
    with pytest.raises(speech.SpeechError):
        await cache.speak(" \n\x00 ", "vi")
    path = Path(await cache.speak("Công ty cấp nước", "vi") + ".wav")
    await cache.close()
    assert speech.prune(tmp_path, 1) == 0
    old = time.time() - 3 * 86400
    os.utime(path, (old, old))
    assert speech.prune(tmp_path, 1) == 1
    assert not path.exists() and not path.with_suffix(".alaw").exists()


# -- the flow, against a scripted channel ------------------------------------------------


class ScriptedChannel:
    """Plays Asterisk: records what was played, answers keys from a script.

    ``keys`` is consumed by ``wait_for_digit`` (None: a pause); ``interrupt`` maps a
    prompt id to the key that stops it.  Running out of script is a hang-up.
    """

    def __init__(self, caller: str | None, keys: list[str | None], interrupt=None):
        self.env = {"agi_callerid": caller or "unknown"}
        self.keys = list(keys)
        self.interrupt = dict(interrupt or {})
        self.played: list[str] = []
        self.paths: list[str] = []

    async def stream_file(self, path: str, escape: str = "") -> str | None:
        name = Path(path).name
        self.paths.append(path)
        self.played.append(name)
        return self.interrupt.pop(name, None)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        if not self.keys:
            raise AGIHangup("script over")
        return self.keys.pop(0)


class FakeReports:
    def __init__(self, mine: list[Followed], total: int | None = None, others=()):
        self.mine, self.total = mine, total if total is not None else len(mine)
        self.known = {r.number: r for r in [*mine, *others]}
        self.asked: list[str] = []

    async def open_reports(self, phone, limit):
        return OpenReports(self.mine[:limit], self.total if phone else 0)

    async def by_number(self, raw):
        self.asked.append(raw)
        parse_number(raw)
        if raw not in self.known:
            raise TicketNotFound(raw)
        return self.known[raw]


class FakeSpeech:
    def __init__(self, delay: float = 0.0):
        self.delay = delay

    async def speak(self, text, language):
        await asyncio.sleep(self.delay)
        return f"/spoken/{language}-{text[:10]}"

    async def close(self):
        pass


@pytest.fixture
def settings(tmp_path):
    return settings_in(tmp_path)


def flow(settings, reports, speech_=None):
    return FollowFlow(settings, reports, speech_ or FakeSpeech(), FakeClock(NOW))


async def test_two_open_reports_read_newest_first_then_operator(settings):
    r1, r2 = report(number="2000000003"), report(number="3000000001")
    for r in (r1, r2):
        parse_number(r.number)
    ch = ScriptedChannel("0901234567", ["1", None])
    walk = Walk("vi")
    end = await flow(settings, FakeReports([r1, r2])).run(ch, walk)
    assert (end.route, end.choice) == ("queue", "follow:agent")
    assert walk.path == "follow:reports:2 > follow:agent"
    reads = [i for i, p in enumerate(ch.played) if p == "follow_report"]
    assert len(reads) == 2 and ch.played[0] == "follow_intro"
    first = ch.played[reads[0] + 1 : reads[0] + 11]
    assert first == [f"digit-{d}" for d in r1.number]
    assert ch.played[-1] == "follow_options"
    assert "vi-UBND Phườn" in ch.played  # the agency, spoken at run time


async def test_more_than_the_limit_says_there_are_more(settings):
    mine = [report(number=n) for n in ("2000000003", "3000000001", "4000000006")]
    ch = ScriptedChannel("0901234567", [None, None, None])
    settings = settings.model_copy(
        update={
            "ivr": settings.ivr.model_copy(
                update={"follow": settings.ivr.follow.model_copy(update={"max_reports": 2})}
            )
        }
    )
    walk = Walk("vi")
    end = await flow(settings, FakeReports(mine, total=100)).run(ch, walk)
    assert ch.played.count("follow_report") == 2 and "follow_more" in ch.played
    # silence after hearing reports: thanked, call ends
    assert (end.route, end.choice) == ("hangup", "follow:done")
    assert walk.path == "follow:reports:2 > silence > silence > silence > follow:done"


async def test_wrong_check_digit_refused_unlooked_then_right_one_read(settings):
    reports = FakeReports([], others=[report(number=GOOD)])
    script = [*BAD, "#", *GOOD, "#", None, None, None]
    ch = ScriptedChannel(None, script)
    walk = Walk("en")
    end = await flow(settings, reports).run(ch, walk)
    assert reports.asked == [GOOD]  # the wrong one never looked up
    assert ch.played[:3] == ["follow_enter", "follow_wrong", "follow_report"]
    assert walk.path.startswith(f"follow:no_caller_id > follow:wrong_number > follow:number:{GOOD}")
    assert end.choice == "follow:done"


async def test_unknown_number_and_retries_then_default(settings):
    reports = FakeReports([])
    unknown = "2000000003"
    ch = ScriptedChannel("0909999999", [*unknown, "#", "5", None, None])
    walk = Walk("vi")
    end = await flow(settings, reports).run(ch, walk)
    assert ch.played[:3] == ["follow_none", "follow_enter", "follow_unknown"]
    assert walk.path == (
        f"follow:none > follow:unknown:{unknown} > follow:wrong_number > silence > default:agent"
    )
    assert (end.route, end.choice) == ("queue", "default:agent")


async def test_a_key_during_the_reading_starts_the_number(settings):
    mine = [report(number="2000000003")]
    other = report(number=GOOD, status="answered", result="Xong.")
    # "1" stops the reading at the topic; the rest of the number follows
    ch = ScriptedChannel("0901234567", [*GOOD[1:], "#", "1", "#"], {"follow_topic": "1"})
    walk = Walk("vi")
    end = await flow(settings, FakeReports(mine, others=[other])).run(ch, walk)
    assert walk.path == f"follow:reports:1 > follow:number:{GOOD} > follow:agent"
    assert end.route == "queue"
    assert ch.played.count("follow_report") == 2 and "follow_result" in ch.played


async def test_hang_up_mid_number_ends_the_session(settings):
    ch = ScriptedChannel(None, ["1", "2", "3"])  # then gone
    walk = Walk("vi")
    with pytest.raises(AGIHangup):
        await flow(settings, FakeReports([])).run(ch, walk)
    assert walk.path == "follow:no_caller_id"


async def test_slow_speech_gets_a_please_wait(settings):
    ch = ScriptedChannel("0901234567", ["1", None])
    await flow(settings, FakeReports([report()]), FakeSpeech(delay=1.2)).run(ch, Walk("vi"))
    agency = ch.played.index("follow_agency")
    assert ch.played[agency + 1] == "follow_wait"
    assert ch.played[agency + 2].startswith("vi-")


async def test_failed_speech_is_skipped_and_the_web_named(settings):
    class Broken(FakeSpeech):
        async def speak(self, text, language):
            raise speech.SpeechError("espeak-ng is not installed")

    r = report(status="answered", result="Đã xử lý.")
    ch = ScriptedChannel("0901234567", ["1", None])
    end = await flow(settings, FakeReports([r]), Broken()).run(ch, Walk("vi"))
    assert end.route == "queue"
    i = ch.played.index("follow_result")
    assert ch.played[i + 1] == "follow_full_answer"


async def test_a_database_fault_sends_the_caller_to_an_operator(settings):
    class Down(FakeReports):
        async def open_reports(self, phone, limit):
            raise OSError("connection refused")

        async def by_number(self, raw):
            raise OSError("connection refused")

    walk = Walk("vi")
    end = await flow(settings, Down([])).run(ScriptedChannel("0901234567", []), walk)
    assert (end.route, end.choice, walk.path) == (
        "queue",
        "follow:unavailable",
        "follow:unavailable",
    )
    # by number too, and the English prompts are the ones played
    walk = Walk("en")
    ch = ScriptedChannel(None, [*GOOD, "#"])
    end = await flow(settings, Down([])).run(ch, walk)
    assert walk.path == "follow:no_caller_id > follow:unavailable"
    assert ch.paths[0].endswith("/en/follow_enter")
    assert end.choice == "follow:unavailable"


def test_follow_settings_are_checked_by_name(tmp_path):
    from core.settings import ConfigError

    text = (Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text()
    text = text.replace("max_reports = 3 ", "max_reports = 0 ").replace(
        "result_max_chars = 300", "result_max_chars = 5"
    )
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    problems = "\n".join(info.value.problems)
    assert "ivr.follow.max_reports" in problems and "ivr.follow.result_max_chars" in problems
