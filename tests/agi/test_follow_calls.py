"""Following a report by phone, in real calls through the real Asterisk.

What the caller heard is read from the IVR's AGI transcript of the call (the
FastAGI server's trace): each ``STREAM FILE`` the flow sent, and Asterisk's answer
to it: ``result=0`` with an ``endpos`` past 0 is a file Asterisk found and played
to the end, not cut by a key.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from accounts.identity import SYSTEM
from callcenter.models import Call, Outcome
from hotline.app import Application
from tests.agi.test_calls import ended_record, new_number
from tests.lab import Lab, eventually
from tickets.models import Ticket

pytestmark = pytest.mark.asterisk

_PLAYED = re.compile(r"^> STREAM FILE (\S+) ")
_REPLY = re.compile(r"^< 200 result=(-?\d+) endpos=(\d+)")


@pytest.fixture
async def traced(app: Application, tmp_path: Path) -> AsyncIterator[Path]:
    """Where the IVR writes this test's AGI transcripts."""
    app.agi.trace_dir = tmp_path / "agi"
    yield app.agi.trace_dir
    app.agi.trace_dir = None


def heard(trace_dir: Path, uniqueid: str) -> list[tuple[str, int, int]]:
    """(file played, result, endpos) for each STREAM FILE of the call, in order."""
    lines = (trace_dir / f"{uniqueid}.txt").read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = _PLAYED.match(line)
        if m:
            r = _REPLY.match(lines[i + 1]) if i + 1 < len(lines) else None
            assert r, f"no reply to {line!r}"
            out.append((m.group(1), int(r.group(1)), int(r.group(2))))
    return out


def names(played: list[tuple[str, int, int]]) -> list[str]:
    """The prompt ids played; a text spoken at run time as ``spoken``."""
    return ["spoken" if "/spoken/" in p else Path(p).name for p, _, _ in played]


def report_at(ids: list[str], start: int) -> str:
    """The 10 digits read after the ``follow_report`` at ``start``."""
    digits = ids[start + 1 : start + 11]
    assert all(d.startswith("digit-") for d in digits), digits
    return "".join(d.removeprefix("digit-") for d in digits)


async def agency(app: Application, name: str) -> int:
    made = await app.panel.agencies.create(
        SYSTEM, {"kind": "ward", "code": f"p-follow-{random.randrange(10**8)}", "name": name}
    )
    return made.id


async def report(app: Application, phone: str, **kw) -> Ticket:
    data = {
        "channel": "phone",
        "citizen_phone": phone,
        "citizen_name": "Nguyễn Văn Bí Mật",
        "citizen_address": "12 Đường Riêng Tư",
        "domain": "state",
        "topic": "flooding",
        "level": 2,
        "description": "Ngập nước trước nhà",
    }
    return await app.tickets.create(SYSTEM, data | kw)


async def test_a_caller_hears_their_two_open_reports_newest_first(
    carrier: Lab, app: Application, traced: Path
):
    number = new_number()
    ward = await agency(app, "Ủy ban nhân dân phường Bến Thành")
    older = await report(app, number, agency_id=ward, topic="trees")
    newer = await report(app, number, agency_id=ward)
    closed = await report(app, number, level=1, guidance="Đã hướng dẫn")
    assert closed.status == "closed"
    # key 3 at once; then silence: both reports (some 50 s) and the question, then gone
    await carrier.carrier.call("1022", caller_id=f"<{number}>", digits="3", hold=62)
    call = await ended_record(app, number, timeout=120)
    assert call.ivr_path.startswith("3:follow > follow:reports:2"), call.ivr_path
    assert call.outcome == Outcome.HANGUP_IVR

    played = heard(traced, call.uniqueid)
    ids = names(played)
    start = ids.index("follow_intro")
    reads = [i for i, p in enumerate(ids) if p == "follow_report"]
    assert len(reads) == 2, ids
    assert [report_at(ids, i) for i in reads] == [newer.number, older.number]
    first = ids[reads[0] : reads[1]]
    assert first[11:] == [
        "follow_topic",
        "topic-flooding",
        "follow_status",
        "status-forwarded",
        "follow_agency",
        "spoken",
        "follow_deadline",
        first[18],
        first[19],
    ]
    assert first[18].startswith("day-") and first[19].startswith("month-")
    assert "topic-trees" in ids[reads[1] :]
    assert "follow_options" in ids[reads[1] :]
    # every part was found and played whole, up to the question
    for path, result, endpos in played[start : ids.index("follow_options")]:
        assert result == 0 and endpos > 0, (path, result, endpos)
    # the agency's name was spoken once, into the cache beside the prompts
    spoken = {p for p, _, _ in played if "/spoken/" in p}
    assert len(spoken) == 1
    (path,) = spoken
    assert Path(path + ".wav").is_file() and Path(path + ".alaw").is_file()
    assert Path(path).is_relative_to(app.settings.prompts_dir)


async def test_a_wrong_check_digit_is_refused_then_the_right_number_is_read(
    carrier: Lab, app: Application, traced: Path
):
    number = new_number()
    ward = await agency(app, "Phường Tân Định")
    theirs = await report(app, "0287777777", agency_id=ward)
    n = theirs.number
    wrong = n[:-1] + str((int(n[-1]) + 1) % 10)
    # key 3, then the wrong number and #, a pause, the right one and #
    await carrier.carrier.call(
        "1022",
        caller_id=f"<{number}>",
        digits="3",
        wait2=2,
        digits2=f"{wrong}#wwww{n}#",
        hold=40,
    )
    call = await ended_record(app, number, timeout=120)
    assert call.ivr_path.startswith(
        f"3:follow > follow:none > follow:wrong_number > follow:number:{n}"
    ), call.ivr_path
    ids = names(heard(traced, call.uniqueid))
    assert ids.index("follow_none") < ids.index("follow_wrong") < ids.index("follow_report")
    at = ids.index("follow_report")
    assert report_at(ids, at) == n
    assert ids.count("follow_report") == 1  # the wrong number was read to nobody


async def test_a_caller_without_caller_id_is_asked_for_a_number_then_an_operator(
    carrier: Lab, app: Application, traced: Path
):
    since = datetime.now(UTC)
    await carrier.carrier.call("1022", caller_id="", digits="3", wait2=3, digits2="1", hold=5)

    async def probe() -> Call | None:
        async with app.db.session() as s:
            return await s.scalar(
                select(Call).where(
                    Call.started_at >= since,
                    Call.caller_number.is_(None),
                    Call.ended_at.is_not(None),
                )
            )

    call = await eventually(probe, timeout=90)
    assert call.ivr_path == "3:follow > follow:no_caller_id > follow:agent"
    assert call.ivr_choice == "follow:agent"
    assert call.outcome == Outcome.ANSWERED and call.queue
    ids = names(heard(traced, call.uniqueid))
    # straight to the number: no reading, no "none found"; then, before the queue, the
    # recorded-call notice that key 3 cut short during the greeting, in full
    assert ids[ids.index("greeting-hl1022") + 1 :] == ["follow_enter", "notice-hl1022"]


async def test_hanging_up_mid_number_closes_the_record(carrier: Lab, app: Application):
    number = new_number()
    await carrier.carrier.call(
        "1022", caller_id=f"<{number}>", digits="3", wait2=2, digits2="60005", hold=0
    )
    call = await ended_record(app, number, timeout=60)
    assert call.outcome == Outcome.HANGUP_IVR
    assert call.ivr_path == "3:follow > follow:none"
    assert call.queue is None and call.ended_at is not None
