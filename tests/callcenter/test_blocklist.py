"""The blocked-numbers list on real SQLite and PostgreSQL (and real Redis for the
change notice): adding, lifting and expiring blocks, what is refused and why, the
history kept, the suggestions from wrap-up codes, the IVR's copy in memory (its
expiry on the clock, its refresh on a notice, and failing open when the database
is away), and the call records of blocked calls."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from callcenter.blocklist import (
    AlreadyBlocked,
    BlockCache,
    BlockInvalid,
    BlocklistService,
    BlockNotActive,
    BlockNotFound,
    BlockState,
    clean_number,
    state_of,
)
from callcenter.models import Outcome
from callcenter.service import CallService, sanitize_caller
from callcenter.wrapup import WrapupService
from core.bus import Bus
from core.clock import FakeClock
from core.db import Database
from core.settings import ConfigError
from dialplan.prompts import blocked_id, emergency_option, prompt_texts
from tests.helpers import queued_call, settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=TZ)
QUEUE = "t1022-morning"


@pytest.fixture
async def env(tmp_path, database_url):
    cfg = lab_config(database_url=database_url)
    cfg["blocklist"] = {"default_days": 2, "max_days": 10, "candidate_calls": 2}
    settings = settings_in(tmp_path, tomli_w.dumps(cfg))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(T0)
    yield BlocklistService(db, settings, clock), calls, clock, db, settings
    await db.close()


@pytest.mark.parametrize(
    "typed, kept",
    [
        ("0901234567", "0901234567"),
        ("+84 90 123 4567", "0901234567"),
        ("(090) 123-4567", "0901234567"),
        ("84.90.123.4567", "0901234567"),
        ("113", "113"),
        ("+14155550100", "+14155550100"),
    ],
)
def test_numbers_are_kept_in_national_form(typed, kept):
    assert clean_number(typed) == kept


@pytest.mark.parametrize(
    "typed, problem",
    [
        ("", "required"),
        ("   ", "required"),
        ("09x1234567", "not_a_number"),
        ("0901+234567", "not_a_number"),
        ("12", "length"),
        ("1" * 21, "length"),
        ("٠٩٠١٢٣٤٥٦٧", "not_a_number"),  # Arabic-Indic digits are not dialled
    ],
)
def test_a_wrong_number_is_refused_by_name(typed, problem):
    with pytest.raises(BlockInvalid) as e:
        clean_number(typed)
    assert (e.value.field, e.value.problem) == ("number", problem)


async def test_add_lift_and_expire_keep_the_whole_history(env):
    blocks, _calls, clock, _db, _settings = env
    row = await blocks.add("+84 90 123 4567", "  Gọi quấy rối nhiều lần  ", 3, by="Giám sát Hà")
    assert row.number == "0901234567" and row.reason == "Gọi quấy rối nhiều lần"
    assert row.created_by == "Giám sát Hà" and row.created_at == T0
    assert row.expires_at == T0 + timedelta(days=3)
    assert state_of(row, clock.now()) == BlockState.ACTIVE
    # one active block per number, whatever form it is typed in
    with pytest.raises(AlreadyBlocked) as twice:
        await blocks.add("0901234567", "lại", 1, by="Lan")
    assert twice.value.block_id == row.id
    # lifted: kept, with who and when
    clock.set(T0 + timedelta(hours=5))
    lifted = await blocks.lift(row.id, by="Trưởng ca")
    assert (lifted.removed_by, lifted.removed_at) == ("Trưởng ca", T0 + timedelta(hours=5))
    assert state_of(lifted, clock.now()) == BlockState.LIFTED
    with pytest.raises(BlockNotActive) as again:
        await blocks.lift(row.id, by="Trưởng ca")
    assert again.value.state == "lifted"
    with pytest.raises(BlockNotFound):
        await blocks.lift(987654, by="x")
    # blocked again, and this time it runs out by itself
    second = await blocks.add("0901234567", "tái phạm", 1, by="Lan")
    clock.set(T0 + timedelta(days=1, hours=6))
    assert state_of(second, clock.now()) == BlockState.EXPIRED
    with pytest.raises(BlockNotActive) as ended:
        await blocks.lift(second.id, by="Lan")
    assert ended.value.state == "expired"
    assert await blocks.active() == []
    history = await blocks.history()
    assert [(b.id, state_of(b, clock.now())) for b in history] == [
        (second.id, BlockState.EXPIRED),
        (row.id, BlockState.LIFTED),
    ]
    # the history is kept by the database itself: a block cannot be deleted
    with pytest.raises(DBAPIError, match="never deleted"):
        async with blocks.db.session() as s:
            await s.execute(text("DELETE FROM blocked_numbers"))
    assert len(await blocks.history()) == 2
    # an expired block does not stand in the way of a new one
    third = await blocks.add("0901234567", "lần ba", 10, by="Lan")
    assert [b.id for b in await blocks.active()] == [third.id]


@pytest.mark.parametrize(
    "reason, days, field, problem",
    [
        ("", 3, "reason", "required"),
        ("   ", 3, "reason", "required"),
        ("x" * 501, 3, "reason", "too_long"),
        ("a\x00b", 3, "reason", "invalid"),
        ("ok", 0, "days", "range"),
        ("ok", 11, "days", "range"),  # max_days = 10
        ("ok", True, "days", "range"),
    ],
)
async def test_a_wrong_block_is_refused_by_field_and_nothing_written(
    env, reason, days, field, problem
):
    blocks, *_ = env
    with pytest.raises(BlockInvalid) as e:
        await blocks.add("0901234567", reason, days, by="Lan")
    assert (e.value.field, e.value.problem) == (field, problem)
    assert await blocks.history() == []


async def test_hostile_text_is_stored_literally(env):
    blocks, *_ = env
    reason = "'; DROP TABLE blocked_numbers; -- <script>alert(1)</script> ngập"
    row = await blocks.add("0901234567", reason, 1, by="O'Brien")
    stored = await blocks.get(row.id)
    assert stored is not None and stored.reason == reason and stored.created_by == "O'Brien"


async def _coded(calls: CallService, wrapup: WrapupService, number: str, at: datetime, code: str):
    uniqueid = f"pbx-{uuid.uuid4().hex[:8]}.1"
    await queued_call(calls, uniqueid, number, started=at, queue=QUEUE, path="1")
    await calls.agent_connected(
        uniqueid=uniqueid,
        queue=QUEUE,
        interface="PJSIP/1001",
        member_name=None,
        hold_seconds=1,
        at=at + timedelta(seconds=1),
        recording_base=None,
    )
    await calls.hung_up(
        uniqueid=uniqueid, at=at + timedelta(minutes=1), queue_status=None, cause="16"
    )
    call = await calls.get(uniqueid)
    assert call is not None
    await wrapup.set_code(call.id, code, by="Sup", extension=None, supervisor=True)


async def test_candidates_come_from_recent_prank_and_abusive_codes(env):
    blocks, calls, clock, db, settings = env
    wrapup = WrapupService(db, settings, clock)
    # 0911...: a prank and an abuse this week: suggested (candidate_calls = 2)
    await _coded(calls, wrapup, "0911111111", T0 - timedelta(days=1), "prank")
    await _coded(calls, wrapup, "+84911111111", T0 - timedelta(hours=2), "abusive")
    # 0922...: two pranks, one of them too old (candidate_days = 7)
    await _coded(calls, wrapup, "0922222222", T0 - timedelta(days=8), "prank")
    await _coded(calls, wrapup, "0922222222", T0 - timedelta(days=1), "prank")
    # 0933...: two calls, but coded as content
    await _coded(calls, wrapup, "0933333333", T0 - timedelta(days=1), "ticket")
    await _coded(calls, wrapup, "0933333333", T0 - timedelta(days=2), "informed")
    # 0944...: three pranks, but blocked already
    for d in (1, 2, 3):
        await _coded(calls, wrapup, "0944444444", T0 - timedelta(days=d), "prank")
    await blocks.add("0944444444", "đã chặn", 5, by="Sup")
    found = await blocks.candidates()
    assert [(c.number, c.calls, c.codes) for c in found] == [
        ("0911111111", 2, ("abusive", "prank"))
    ]
    assert found[0].last_at == T0 - timedelta(hours=2) + timedelta(seconds=0)
    # nothing was blocked by itself
    assert [b.number for b in await blocks.active()] == ["0944444444"]


def test_candidate_codes_must_be_wrap_up_codes(tmp_path):
    cfg = lab_config()
    cfg["blocklist"] = {"candidate_codes": ["prank", "rude"]}
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, tomli_w.dumps(cfg))
    assert "blocklist.candidate_codes: no wrap-up code 'rude'" in str(e.value)
    cfg["blocklist"] = {"default_days": 40, "max_days": 30}
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, tomli_w.dumps(cfg))
    assert "default_days" in str(e.value)


async def test_the_ivr_copy_is_read_once_judged_on_the_clock_and_fails_open(env):
    blocks, _calls, clock, db, settings = env
    row = await blocks.add("0901234567", "quấy rối", 1, by="Sup")
    cache = BlockCache(db, settings, clock, None)
    assert cache.check("0901234567") is None, "nothing read yet: nobody blocked"
    assert await cache.refresh()
    assert cache.check("0901234567") == row.id
    assert cache.check("+84901234567") == row.id, "any form of the number"
    assert cache.check(None) is None and cache.check("") is None, "no caller ID: never"
    assert cache.check("0907654321") is None
    # expiry is judged on the clock, without reading again
    clock.set(T0 + timedelta(days=1, seconds=1))
    assert cache.check("0901234567") is None
    clock.set(T0)
    # the database goes away: the copy held stays in force (and calls go on)
    await db.close()
    broken = Database("postgresql://nobody@127.0.0.1:1/none")
    cache.db = broken
    assert not await cache.refresh()
    assert cache.check("0901234567") == row.id
    await broken.close()
    # a copy that never could read blocks nobody
    empty = BlockCache(Database("postgresql://nobody@127.0.0.1:1/none"), settings, clock, None)
    assert not await empty.refresh()
    assert empty.check("0901234567") is None
    await empty.db.close()


async def test_a_change_in_another_process_reaches_the_copy_over_redis(env):
    blocks, _calls, clock, db, settings = env
    bus = Bus(settings.panel.redis_url, f"test-blocklist-{uuid.uuid4().hex[:8]}")
    panel_side = BlocklistService(db, settings, clock, bus)
    # refresh_seconds is 30: only the notice can make the copy this fast
    cache = BlockCache(db, settings, clock, bus)
    await cache.start()
    try:
        await asyncio.wait_for(cache.listening.wait(), 10)
        cache.refreshed.clear()
        row = await panel_side.add("0901234567", "quấy rối", 1, by="Sup")
        await asyncio.wait_for(cache.refreshed.wait(), 5)
        assert cache.check("0901234567") == row.id
        cache.refreshed.clear()
        await panel_side.lift(row.id, by="Sup")
        await asyncio.wait_for(cache.refreshed.wait(), 5)
        assert cache.check("0901234567") is None
    finally:
        await cache.stop()
        await bus.close()


async def test_a_blocked_call_is_recorded_as_blocked_and_counted(env):
    blocks, calls, _clock, _db, _settings = env
    row = await blocks.add("0901234567", "quấy rối", 1, by="Sup")
    caller = sanitize_caller("+84901234567")
    for uniqueid in ("pbx-b.1", "pbx-b.2"):
        await calls.open_call(
            uniqueid=uniqueid,
            linkedid=uniqueid,
            hotline_number="1022",
            caller=caller,
            started_at=T0,
            language="vi",
            recording_base=None,
            block_id=row.id,
        )
    # the first hears the message and the call ends; the second hangs up at once
    await calls.blocked_done(
        "pbx-b.1", path="blocked > silence > silence", choice="blocked", language="vi",
        ended_at=T0 + timedelta(seconds=20),
    )  # fmt: skip
    await calls.hung_up(
        uniqueid="pbx-b.2", at=T0 + timedelta(seconds=2), queue_status=None, cause="16"
    )
    await calls.hung_up(
        uniqueid="pbx-b.1", at=T0 + timedelta(seconds=21), queue_status=None, cause="16"
    )
    one, two = await calls.get("pbx-b.1"), await calls.get("pbx-b.2")
    assert one.outcome == Outcome.BLOCKED and one.ended_at == T0 + timedelta(seconds=20)
    assert one.ivr_path == "blocked > silence > silence" and one.block_id == row.id
    assert two.outcome == Outcome.BLOCKED and two.ended_at == T0 + timedelta(seconds=2)
    assert one.queued_at is None and two.queued_at is None
    # put through to an emergency number: "emergency" wins; a failed dial gives it back
    await calls.open_call(
        uniqueid="pbx-b.3", linkedid="pbx-b.3", hotline_number="1022", caller=caller,
        started_at=T0, language="vi", recording_base=None, block_id=row.id,
    )  # fmt: skip
    await calls.emergency_call(
        "pbx-b.3", path="blocked > 0:emergency", choice="emergency:113", connected=True
    )
    assert (await calls.get("pbx-b.3")).outcome == Outcome.EMERGENCY
    await calls.emergency_call(
        "pbx-b.3", path="blocked > 0:emergency", choice="emergency:113", connected=False
    )
    assert (await calls.get("pbx-b.3")).outcome == Outcome.BLOCKED
    assert await blocks.blocked_calls() == {row.id: 3}


def test_the_blocked_message_offers_the_hotlines_own_key_0(tmp_path):
    cfg = lab_config()
    settings = settings_in(tmp_path / "a", tomli_w.dumps(cfg))
    texts = prompt_texts(settings)
    for h in settings.hotlines:
        option = emergency_option(h)
        assert option is not None
        vi, en = texts[("vi", blocked_id(h))], texts[("en", blocked_id(h))]
        assert vi == f"Số bị chặn. Phím {option.digit}."
        assert en == f"Number blocked. Key {option.digit}."
    # a hotline with no emergency option: the message alone (the call then ends)
    for h in cfg["hotlines"]:
        h["menu"] = [o for o in h["menu"] if o["action"] != "emergency"]
    settings = settings_in(tmp_path / "b", tomli_w.dumps(cfg))
    assert prompt_texts(settings)[("vi", "blocked-hl1022")] == "Số bị chặn."
    # the default message, in both languages
    default = settings_in(tmp_path / "c").blocklist.message
    assert default.get("vi").startswith("Số điện thoại của quý vị đang tạm thời bị hạn chế")
    assert default.get("en").startswith("Calls from your number to this hotline are restricted")
