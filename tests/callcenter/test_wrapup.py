"""Wrap-up codes on real SQLite and PostgreSQL: who may set them, until when, what the
agent still owes, and the report's share of calls with usable content."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from callcenter.exceptions import CallNotFound, UnknownWrapupCode, WrapupRefused
from callcenter.service import CallService
from callcenter.wrapup import WrapupService
from core.clock import FakeClock
from core.db import Database
from core.settings import ConfigError
from queue_stats import reports as rpt
from queue_stats.wrapup import codes_since_start, wrapup_figures
from tests.helpers import queued_call, settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=TZ)
QUEUE = "t1022-morning"  # on duty at T0


@pytest.fixture
async def env(tmp_path, database_url):
    cfg = lab_config(database_url=database_url)
    cfg["wrapup"] = {"change_minutes": 10}
    settings = settings_in(tmp_path, tomli_w.dumps(cfg))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(T0)
    yield calls, WrapupService(db, settings, clock), clock, db, settings
    await db.close()


async def answered(
    calls: CallService, uniqueid: str, ext: str, at: datetime, *, ended: bool = True
) -> int:
    """A call answered by ``ext`` at ``at`` (hung up a minute later unless not ``ended``)."""
    await queued_call(calls, uniqueid, "0901234567", started=at, queue=QUEUE, path="1")
    await calls.agent_connected(
        uniqueid=uniqueid,
        queue=QUEUE,
        interface=f"PJSIP/{ext}",
        member_name=None,
        hold_seconds=3,
        at=at + timedelta(seconds=3),
        recording_base=None,
    )
    if ended:
        await calls.hung_up(
            uniqueid=uniqueid, at=at + timedelta(minutes=1), queue_status=None, cause="16"
        )
    call = await calls.get(uniqueid)
    assert call is not None
    return call.id


async def test_the_agent_codes_their_own_call_and_the_record_keeps_it(env):
    calls, svc, clock, _db, _settings = env
    call_id = await answered(calls, "pbx-1.1", "1001", T0)
    clock.set(T0 + timedelta(minutes=2))
    # the agent owes a code: they may not take the next call until they give it
    assert (await svc.pending("1001")).id == call_id
    assert await svc.pending("1002") is None
    call = await svc.set_code(call_id, "prank", by="Lan", extension="1001")
    assert (call.wrapup_code, call.wrapup_by) == ("prank", "Lan")
    assert call.wrapup_at == T0 + timedelta(minutes=2)
    assert await svc.pending("1001") is None
    # changed within the window; the same code again changes nothing
    clock.set(T0 + timedelta(minutes=5))
    call = await svc.set_code(call_id, "informed", by="Lan", extension="1001")
    assert call.wrapup_at == T0 + timedelta(minutes=5)
    clock.set(T0 + timedelta(minutes=6))
    again = await svc.set_code(call_id, "informed", by="Lan", extension="1001")
    assert again.wrapup_at == T0 + timedelta(minutes=5)
    stored = await calls.by_id(call_id)
    assert (stored.wrapup_code, stored.wrapup_by) == ("informed", "Lan")


async def test_what_is_refused_and_why(env):
    calls, svc, clock, _db, _settings = env
    call_id = await answered(calls, "pbx-2.1", "1001", T0)
    with pytest.raises(UnknownWrapupCode) as unknown:
        await svc.set_code(call_id, "banana", by="Lan", extension="1001")
    assert unknown.value.code == "banana"
    # another agent's call is not theirs to see
    with pytest.raises(CallNotFound):
        await svc.set_code(call_id, "ticket", by="Hùng", extension="1002")
    with pytest.raises(CallNotFound):
        await svc.set_code(999999, "ticket", by="Lan", extension="1001")
    # a call nobody answered takes no code
    await queued_call(calls, "pbx-2.2", "0907654321", started=T0, queue=QUEUE, path="1")
    unanswered = await calls.get("pbx-2.2")
    with pytest.raises(WrapupRefused) as refused:
        await svc.set_code(unanswered.id, "ticket", by="Sup", extension=None, supervisor=True)
    assert refused.value.reason == "not_answered"
    # after change_minutes (10) from the hang-up only a supervisor may
    clock.set(T0 + timedelta(minutes=11, seconds=1))
    assert await svc.pending("1001") is None  # no longer owed: "no code" in the reports
    with pytest.raises(WrapupRefused) as late:
        await svc.set_code(call_id, "ticket", by="Lan", extension="1001")
    assert late.value.reason == "too_late"
    done = await svc.set_code(call_id, "abusive", by="Sup", extension=None, supervisor=True)
    assert done.wrapup_by == "Sup"
    # a supervisor's code stands against the agent, even within the window
    second = await answered(calls, "pbx-2.3", "1001", T0 + timedelta(minutes=11))
    await svc.set_code(second, "silent", by="Sup", extension=None, supervisor=True)
    with pytest.raises(WrapupRefused) as other:
        await svc.set_code(second, "ticket", by="Lan", extension="1001")
    assert other.value.reason == "set_by_other"
    assert (await calls.by_id(second)).wrapup_code == "silent"


async def test_a_call_still_on_may_be_coded_and_is_owed(env):
    calls, svc, clock, _db, _settings = env
    call_id = await answered(calls, "pbx-3.1", "1003", T0, ended=False)
    clock.set(T0 + timedelta(hours=2))  # a long call: still on, still owed
    assert (await svc.pending("1003")).id == call_id
    await svc.set_code(call_id, "ticket", by="Mai", extension="1003")
    assert await svc.pending("1003") is None


async def test_the_report_counts_the_share_with_content(env):
    calls, svc, clock, db, settings = env
    codes = {"1001": ["ticket", "prank", None], "1002": ["informed", "silent"]}
    n = 0
    for ext, wanted in codes.items():
        for code in wanted:
            n += 1
            call_id = await answered(calls, f"pbx-4.{n}", ext, T0 + timedelta(minutes=n))
            if code:
                await svc.set_code(call_id, code, by=ext, extension=ext)
    # not answered: not counted at all
    await queued_call(calls, "pbx-4.99", "0907654321", started=T0, queue=QUEUE, path="1")
    start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    rows = {(r.group, r.key): r for r in await wrapup_figures(db, settings, start, end)}
    total = rows[("total", "")]
    assert (total.answered, total.coded, total.with_content) == (5, 4, 2)
    assert total.content_share == 40.0
    assert rows[("agent", "1001")].content_share == pytest.approx(33.3)
    assert rows[("agent", "1002")].content_share == 50.0
    assert rows[("agent", "1001")].codes == {"ticket": 1, "prank": 1}
    assert rows[("shift", "morning")].answered == 5
    assert rows[("hotline", "1022")].with_content == 2
    assert await codes_since_start(db) == {"ticket": 1, "prank": 1, "informed": 1, "silent": 1}
    # the daily report and its CSV say the same
    report = await rpt.daily(db, settings, T0.date(), T0 + timedelta(hours=2))
    csv_rows = rpt.csv_rows(report, "wrapup", TZ, "en")
    head = csv_rows[0]
    assert head[:7] == [
        "By",
        "Group",
        "Answered",
        "Calls with a wrap-up code",
        "Calls with usable content",
        "Share with usable content (%)",
        "No code",
    ]
    assert head[7:] == [c.label.en for c in settings.wrapup.codes]
    by_key = {(r[0], r[1]): dict(zip(head, r, strict=True)) for r in csv_rows[1:]}
    assert by_key[("total", "")]["Share with usable content (%)"] == 40.0
    assert by_key[("total", "")]["No code"] == 1
    assert by_key[("agent", "1001")]["Prank"] == 1
    vi_head = rpt.csv_text(report, "wrapup", TZ, "vi").splitlines()[0]
    assert vi_head.startswith("Theo,Nhóm,Đã trả lời,") and "Gọi quấy rối, đùa giỡn" in vi_head


def test_codes_are_checked_at_start(tmp_path):
    cfg = lab_config()
    cfg["wrapup"] = {
        "codes": [
            {"id": "ticket", "label": {"vi": "Phiếu"}, "content": True},
            {"id": "ticket", "label": {"vi": "Lại"}, "content": False},
        ]
    }
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, tomli_w.dumps(cfg))
    assert "wrapup" in str(e.value) and "ticket used more than once" in str(e.value)
