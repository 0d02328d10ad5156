"""The recordings pages over HTTP: filters, replay audio with byte ranges, the
audit log, who may do what, purged audio, the transcript on the ticket page.

Real Redis, real SQLite and PostgreSQL, real WAV files converted by ffmpeg.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from pydub import AudioSegment
from sqlalchemy import select, text

from accounts.identity import Actor
from recordings.audit import RecordingAccess
from recordings.models import TranscriptionJob
from tests.panel.recorded import add_call, segments

NOW = datetime.now(UTC).replace(microsecond=0)


async def audit_rows(ctx) -> list[RecordingAccess]:  # type: ignore[no-untyped-def]
    async with ctx.db.session() as s:
        return list(await s.scalars(select(RecordingAccess).order_by(RecordingAccess.id)))


def listed(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-call="(\d+)"', html)]


async def sign_in(panel, who: str) -> None:  # type: ignore[no-untyped-def]
    """Sign ``who`` in on the test client, whoever was signed in before."""
    panel.client.session.cookie_jar.clear()
    await panel.login(who)


def allow_agents(ctx, allowed: bool = True) -> None:  # type: ignore[no-untyped-def]
    s = ctx.settings
    ctx.settings = s.model_copy(
        update={"recordings": s.recordings.model_copy(update={"agents_replay_own": allowed})}
    )


async def test_list_filters_keep_their_values_and_search_words(panel, voices):
    ctx = panel.ctx
    flood = await add_call(
        ctx, voices, started=NOW - timedelta(hours=1), talk=75, transcript=segments(voices)
    )
    other = await add_call(
        ctx,
        voices,
        started=NOW - timedelta(hours=2),
        hotline="0888247247",
        shift="afternoon",
        agent="1002",
        talk=20,
        transcript=segments(voices, "Cây đổ trên đường Lê Lợi chắn lối đi"),
    )
    old = await add_call(ctx, None, started=NOW - timedelta(days=10), talk=300)
    abandoned = await add_call(
        ctx, None, started=NOW - timedelta(hours=3), outcome="abandoned", talk=None, agent=None
    )
    await add_call(ctx, None, started=NOW - timedelta(hours=4), recorded=False)  # never listed
    # hung up in the menu: a file name was given, no agent answered, no audio
    in_menu = await add_call(
        ctx, None, started=NOW - timedelta(hours=5), outcome="hangup_ivr", talk=None, agent=None
    )
    admin = Actor.of(panel.users["admin"])
    ticket = await ctx.tickets.create(
        admin,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập nước ở quận 1",
        },
        call_id=flood.id,
    )
    await sign_in(panel, "sup")
    c = panel.client

    async def ids(query: str) -> list[int]:
        r = await c.get("/recordings" + query)
        assert r.status == 200, await r.text()
        return listed(await r.text())

    # only calls with audio: an agent answered (abandoned in the queue or hung
    # up in the menu: nothing was recorded, nothing to play)
    assert await ids("") == [flood.id, other.id, old.id]
    listing = await (await c.get("/recordings")).text()
    assert "3 cuộc gọi có ghi âm" in listing
    assert f'href="/recordings/{abandoned.id}"' not in listing
    assert f'href="/recordings/{in_menu.id}"' not in listing
    today = ctx.clock.now().astimezone(ctx.settings.tz).date().isoformat()  # the page's today
    assert set(await ids(f"?from={today}")) <= {flood.id, other.id}
    assert old.id not in await ids(f"?from={today}")
    # the quick "today" link keeps the other filters
    page = await (await c.get("/recordings?hotline=1022")).text()
    assert f'href="?hotline=1022&amp;from={today}&amp;to={today}">Hôm nay</a>' in page
    ten = (NOW - timedelta(days=10)).astimezone(ctx.settings.tz).date().isoformat()
    assert await ids(f"?from={ten}&to={ten}") == [old.id]
    # as the date fields are typed: dd/mm/yyyy, and shown back so
    ten_dmy = (NOW - timedelta(days=10)).astimezone(ctx.settings.tz).strftime("%d/%m/%Y")
    assert await ids(f"?from={ten_dmy}&to={ten_dmy}") == [old.id]
    page = await (await c.get(f"/recordings?from={ten}")).text()
    assert f'name="from" value="{ten_dmy}" placeholder="dd/mm/yyyy"' in page
    assert await ids("?hotline=0888247247") == [other.id]
    assert await ids("?shift=afternoon") == [other.id]
    assert await ids("?agent=1002") == [other.id]
    assert await ids("?outcome=abandoned") == []
    assert await ids("?min=1:00") == [flood.id, old.id]
    assert await ids("?min=30&max=1:15") == [flood.id]
    assert await ids("?max=0:20") == [other.id]
    assert await ids("?ticket=yes") == [flood.id]
    assert flood.id not in await ids("?ticket=no")
    assert await ids("?q=ngập+nước&hotline=1022") == [flood.id]
    assert await ids("?q=ngập+nước&hotline=0888247247") == []

    # the words found, in context, linking to the moment they were said
    r = await c.get("/recordings?q=ngập+nước&min=1:00")
    page = await r.text()
    assert listed(page) == [flood.id]
    assert "<mark>ngập nước</mark>" in page
    assert re.search(rf'href="/recordings/{flood.id}\?t=2\.10"', page)
    assert "Người dân:" in page
    # the filter keeps its values (shareable URL) and shows talk time as m:ss
    assert 'value="ngập nước"' in page and 'value="1:00"' in page
    assert ">1:15<" in page
    assert f">{ticket.code}<" in page
    # no transcription model here: the calls without a transcript say so
    page = await (await c.get("/recordings")).text()
    assert page.count('class="badge job-no-model"') == 1  # old: the others have theirs

    # bad input is named, not a crash
    r = await c.get("/recordings?from=32/11/2026&min=abc&q=%21%21")
    assert r.status == 200
    page = unescape(await r.text())
    assert "phải là ngày dạng 25/11/2026" in page
    assert 'name="from" value="32/11/2026"' in page  # shown back as typed
    assert "phải là số giây hoặc phút:giây" in page
    assert "hãy nhập ít nhất một từ để tìm" in page


async def test_pages_of_fifty(panel):
    for i in range(53):
        await add_call(panel.ctx, None, started=NOW - timedelta(minutes=i))
    await sign_in(panel, "admin")
    first = await (await panel.client.get("/recordings?shift=morning")).text()
    assert len(listed(first)) == 50
    assert "53 cuộc gọi có ghi âm" in first
    assert 'href="?shift=morning&amp;page=2"' in first
    second = await (await panel.client.get("/recordings?shift=morning&page=2")).text()
    assert len(listed(second)) == 3
    assert not set(listed(first)) & set(listed(second))


async def test_replay_serves_byte_ranges_and_audits_once_per_replay(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW, transcript=segments(voices))
    await sign_in(panel, "sup")
    c = panel.client

    page = await c.get(f"/recordings/{call.id}")
    assert page.status == 200
    html = await page.text()
    found = re.search(rf'preload="none" src="/recordings/{call.id}/audio\?s=([\w-]+)"', html)
    assert found is not None, html
    session = found.group(1)
    assert 'class="w" data-start="2.100"' in html  # the citizen's first word
    assert "Tổng đài viên:" in html and "Người dân:" in html
    assert await audit_rows(ctx) == []  # opening the page is not a replay

    # the waveform comes from the server: peaks, not audio, and no replay
    w = await c.get(f"/recordings/{call.id}/peaks")
    assert w.status == 200 and w.headers["Content-Type"].startswith("application/json")
    wave = await w.json()
    assert abs(wave["duration"] - voices.seconds) < 0.05
    peaks = wave["peaks"]
    assert len(peaks) == int(voices.seconds * 50)
    assert all(0 <= p <= 1 for p in peaks)
    per_second = len(peaks) / wave["duration"]
    # the agent speaks first, the citizen after 2 s; the last half second is silence
    assert max(peaks[int(0.3 * per_second) : int(1.5 * per_second)]) > 0.1
    assert max(peaks[int(2.5 * per_second) : int(3.5 * per_second)]) > 0.1
    assert max(peaks[-int(0.3 * per_second) :]) < 0.01
    cached = ctx.replay.peaks_path(call.id)
    first = cached.stat().st_ino
    assert (await (await c.get(f"/recordings/{call.id}/peaks")).json()) == wave
    assert cached.stat().st_ino == first  # computed once
    assert await audit_rows(ctx) == []

    whole = await c.get(f"/recordings/{call.id}/audio")
    assert whole.status == 200
    assert whole.headers["Content-Type"] == "audio/mpeg"
    assert whole.headers.get("Accept-Ranges") == "bytes"
    body = await whole.read()
    assert body[:3] == b"ID3" or body[0] == 0xFF
    assert len(body) > 4000

    part = await c.get(f"/recordings/{call.id}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(body)}"
    assert await part.read() == body[1000:2000]
    tail = await c.get(f"/recordings/{call.id}/audio", headers={"Range": "bytes=-100"})
    assert tail.status == 206 and await tail.read() == body[-100:]

    # three requests of one replay: one row; a download: its own row
    rows = await audit_rows(ctx)
    assert [(r.action, r.call_id, r.user_name, r.role) for r in rows] == [
        ("play", call.id, "Sup", "supervisor")
    ]
    assert rows[0].address == "127.0.0.1"
    d = await c.get(f"/recordings/{call.id}/download")
    assert d.status == 200
    assert d.headers["Content-Disposition"].startswith(f'attachment; filename="call-{call.id}-')
    assert await d.read() == body
    await c.get(f"/recordings/{call.id}/download")
    assert [r.action for r in await audit_rows(ctx)] == ["play", "download", "download"]

    # a replay later than the window is a new replay
    ctx.clock.advance(timedelta(minutes=11))  # type: ignore[attr-defined]
    await c.get(f"/recordings/{call.id}/audio", headers={"Range": "bytes=0-"})
    assert [r.action for r in await audit_rows(ctx)] == ["play", "download", "download", "play"]

    # the page's player names its session: its first fetch is a replay, its
    # other byte ranges are not, whatever the time since the last replay
    for _ in range(2):
        r = await c.get(f"/recordings/{call.id}/audio?s={session}", headers={"Range": "bytes=0-"})
        assert r.status == 206
    rows = await audit_rows(ctx)
    assert [(r.action, r.session) for r in rows[-2:]] == [("play", None), ("play", session)]

    # the admin reads the log; a supervisor may not
    assert (await c.get("/recordings/audit")).status == 403
    await sign_in(panel, "admin")
    log = await (await c.get(f"/recordings/audit?call={call.id}&action=download")).text()
    assert log.count(f'data-call="{call.id}" data-action="download"') == 2
    assert 'data-action="play"' not in log
    full = await (await c.get("/recordings/audit")).text()
    assert full.count("<td>Sup</td>") == 5


async def test_what_is_heard_is_reported_per_page_session(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW)
    await sign_in(panel, "sup")
    c = panel.client
    headers = {"X-CSRF-Token": await panel.csrf()}
    url = f"/recordings/{call.id}/heard"

    r = await c.post(url, json={"s": "page-one-abc", "ranges": [[0, 12.34]]}, headers=headers)
    assert r.status == 204
    # the same again writes nothing; more heard writes a row
    await c.post(url, json={"s": "page-one-abc", "ranges": [[0, 12.34]]}, headers=headers)
    r = await c.post(
        url, json={"s": "page-one-abc", "ranges": [[0, 12.34], [30, 75.2]]}, headers=headers
    )
    assert r.status == 204
    rows = await audit_rows(ctx)
    assert [(r.action, r.session, r.heard, r.user_name) for r in rows] == [
        ("heard", "page-one-abc", "0:00–0:12", "Sup"),
        ("heard", "page-one-abc", "0:00–0:12, 0:30–1:15", "Sup"),
    ]

    # nonsense is refused and not written; without the CSRF token too
    for body in (
        {"s": "page-one-abc", "ranges": []},
        {"s": "page-one-abc", "ranges": [[5, 1]]},
        {"s": "page-one-abc", "ranges": [["0", 1]]},
        {"s": "page-one-abc", "ranges": [[0, 1]] * 51},
        {"s": "x", "ranges": [[0, 1]]},
        {"ranges": [[0, 1]]},
    ):
        assert (await c.post(url, json=body, headers=headers)).status == 400, body
    assert (await c.post(url, json={"s": "page-two-abc", "ranges": [[0, 1]]})).status == 403
    assert len(await audit_rows(ctx)) == 2

    # only someone who may replay the call
    await sign_in(panel, "agent1")
    agent_headers = {"X-CSRF-Token": await panel.csrf()}
    r = await c.post(url, json={"s": "page-three-abc", "ranges": [[0, 1]]}, headers=agent_headers)
    assert r.status == 403
    assert len(await audit_rows(ctx)) == 2


async def test_the_transcript_says_where_it_stands(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW)
    await sign_in(panel, "sup")

    async def state() -> str:
        page = unescape(await (await panel.client.get(f"/recordings/{call.id}")).text())
        found = re.search(r'<p class="([^"]*)" id="transcript-state">(.*?)</p>', page, re.S)
        assert found is not None, page
        return found.group(2).strip()

    async def job(status: str, reason: str | None = None) -> None:
        async with ctx.db.session() as s:
            job = await s.get(TranscriptionJob, call.id)
            if job is None:
                job = TranscriptionJob(call_id=call.id, queued_at=NOW, updated_at=NOW)
                s.add(job)
            job.status, job.reason, job.attempts = status, reason, 3

    assert ctx.settings.vosk_model is None  # the test panel has no model
    no_model = "Chưa cấu hình mô hình chuyển lời — xem README, mục “Recordings and transcripts”."
    assert await state() == no_model
    await job("queued")
    assert await state() == no_model  # queued, and no worker will ever take it
    await job("running")
    assert await state() == "Đang chuyển lời"
    await job("failed", "model not found: /srv/vosk")
    assert await state() == "Chuyển lời thất bại: model not found: /srv/vosk"

    # with a model configured, a queued job says so, and no job says there is none
    s = ctx.settings
    ctx.settings = s.model_copy(
        update={"recordings": s.recordings.model_copy(update={"vosk_model": Path("vosk-model")})}
    )
    await job("queued")
    assert await state() == "Đang chờ chuyển lời"
    async with ctx.db.session() as db:
        await db.delete(await db.get(TranscriptionJob, call.id))
    assert await state() == "Cuộc gọi này chưa có bản ghi lời."


async def test_conversion_is_cached_and_follows_the_mixed_file(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW, mixed_only=True)
    await sign_in(panel, "sup")
    r = await panel.client.get(f"/recordings/{call.id}/audio")
    assert r.status == 200
    cached = ctx.replay.cache_path(call.id)
    assert cached.is_file()
    first = cached.stat().st_ino
    await panel.client.get(f"/recordings/{call.id}/audio")
    assert cached.stat().st_ino == first  # not converted again (a conversion is a new file)
    # both sides are in it: the agent's greeting first, then the citizen
    with cached.open("rb") as f:
        mp3 = AudioSegment.from_file(f, format="mp3")
    assert abs(len(mp3) / 1000 - voices.seconds) < 0.2
    silence = AudioSegment.silent(duration=100).rms
    assert mp3[200:1800].rms > 20 * max(silence, 1)
    assert mp3[2300:4000].rms > 20 * max(silence, 1)

    # a copy not served for a week goes; it is made again when asked for
    old = cached.stat().st_mtime - 8 * 86400
    os.utime(cached, (old, old))
    assert ctx.replay.prune_cache() == 1 and not cached.exists()
    assert (await panel.client.get(f"/recordings/{call.id}/audio")).status == 200
    assert cached.is_file()


async def test_both_sides_are_mixed(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW)
    await sign_in(panel, "sup")
    body = await (await panel.client.get(f"/recordings/{call.id}/audio")).read()
    path = ctx.replay.cache_path(call.id)
    assert path.read_bytes() == body
    with path.open("rb") as f:
        mp3 = AudioSegment.from_file(f, format="mp3")
    with voices.agent.open("rb") as f:
        agent = AudioSegment.from_file(f, format="wav")
    with voices.citizen.open("rb") as f:
        citizen = AudioSegment.from_file(f, format="wav")
    # where only one side speaks, the mix carries that side's loudness
    assert mp3[200:1800].rms > 0.3 * agent[200:1800].rms > 0
    assert mp3[2300:4000].rms > 0.3 * citizen[2300:4000].rms > 0
    assert agent[2300:4000].rms < 0.1 * citizen[2300:4000].rms  # the windows are one-sided


async def test_roles_and_refusals_are_not_logged(panel, voices):
    ctx = panel.ctx
    mine = await add_call(ctx, voices, started=NOW, agent="1001", transcript=segments(voices))
    theirs = await add_call(ctx, voices, started=NOW, agent="1002")
    c = panel.client

    # signed out: sent to sign in (pages) or 401
    r = await c.get(f"/recordings/{mine.id}/audio", allow_redirects=False)
    assert r.status in (303, 401)

    for who in ("agent1", "officer"):
        await sign_in(panel, who)
        for path in (
            "/recordings",
            f"/recordings/{mine.id}",
            f"/recordings/{mine.id}/audio",
            f"/recordings/{mine.id}/download",
            "/recordings/audit",
        ):
            r = await c.get(path, headers={"Range": "bytes=0-"})
            assert r.status == 403, (who, path, r.status)
    assert await audit_rows(ctx) == []

    # agents may replay their own calls once the setting says so, only those
    allow_agents(ctx)
    await sign_in(panel, "agent1")
    page = await (await c.get("/recordings")).text()
    assert listed(page) == [mine.id]
    assert 'name="agent"' not in page
    assert listed(await (await c.get("/recordings?agent=1002")).text()) == [mine.id]
    assert (await c.get(f"/recordings/{mine.id}")).status == 200
    assert (await c.get(f"/recordings/{mine.id}/audio")).status == 200
    assert (await c.get(f"/recordings/{theirs.id}")).status == 403
    assert (await c.get(f"/recordings/{theirs.id}/audio")).status == 403
    assert (await c.get(f"/recordings/{theirs.id}/download")).status == 403
    assert (await c.get("/recordings/audit")).status == 403
    rows = await audit_rows(ctx)
    assert [(r.call_id, r.role, r.action) for r in rows] == [(mine.id, "agent", "play")]

    # ids only: no such call, no path from the client
    assert (await c.get("/recordings/999999/audio")).status == 404
    assert (await c.get("/recordings/..%2F..%2Fetc%2Fpasswd/audio")).status == 404


async def test_files_outside_the_recordings_dir_are_never_served(panel, voices, tmp_path):
    ctx = panel.ctx
    call = await add_call(ctx, None, started=NOW)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "x-in.wav").write_bytes(voices.citizen.read_bytes())
    async with ctx.db.session() as s:
        await s.execute(
            text("UPDATE calls SET recording_base = :b, recording_caller = :c WHERE id = :i"),
            {"b": str(outside / "x"), "c": str(outside / "x-in.wav"), "i": call.id},
        )
    await sign_in(panel, "admin")
    assert (await panel.client.get(f"/recordings/{call.id}/audio")).status == 410
    assert await audit_rows(ctx) == []


async def test_purged_audio_says_so_and_keeps_the_transcript(panel, voices):
    ctx = panel.ctx
    keep = ctx.settings.recordings.keep_audio_days
    assert keep is not None
    started = NOW - timedelta(days=keep + 3)
    call = await add_call(ctx, voices, started=started, transcript=segments(voices))
    await sign_in(panel, "sup")
    assert (await panel.client.get(f"/recordings/{call.id}/audio")).status == 200
    assert ctx.replay.cache_path(call.id).exists()
    # retention deletes the files
    for p in (call.recording_caller, call.recording_agent):
        os.unlink(p)  # type: ignore[arg-type]
    before = len(await audit_rows(ctx))
    page = unescape(await (await panel.client.get(f"/recordings/{call.id}")).text())
    removed = (started + timedelta(days=keep)).astimezone(ctx.settings.tz).strftime("%d/%m/%Y")
    assert f"Âm thanh đã được xóa theo thời hạn lưu trữ vào ngày {removed}." in page
    assert "Bản ghi lời vẫn được giữ lại." in page
    assert "ngập" in page and 'id="audio"' not in page
    ctx.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    r = await panel.client.get(f"/recordings/{call.id}/audio")
    assert r.status == 410
    assert not ctx.replay.cache_path(call.id).exists()  # the cached copy went too
    assert len(await audit_rows(ctx)) == before


async def test_audit_log_is_append_only(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW)
    await sign_in(panel, "admin")
    await panel.client.get(f"/recordings/{call.id}/download")
    assert len(await audit_rows(ctx)) == 1
    for sql in ("UPDATE recording_access SET user_name = 'x'", "DELETE FROM recording_access"):
        with pytest.raises(Exception, match="append-only"):
            async with ctx.db.session() as s:
                await s.execute(text(sql))
    assert [r.user_name for r in await audit_rows(ctx)] == ["Quản trị"]


async def test_failed_transcriptions_are_shown_to_admins(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW)
    async with ctx.db.session() as s:
        s.add(
            TranscriptionJob(
                call_id=call.id,
                status="failed",
                attempts=3,
                worker="w1",
                reason="audio unreadable: <RIFF header missing>",
                queued_at=NOW,
                updated_at=NOW,
            )
        )
    await sign_in(panel, "admin")
    page = await (await panel.client.get("/recordings")).text()
    assert 'id="failed-jobs"' in page
    assert "audio unreadable: &lt;RIFF header missing&gt;" in page
    one = await (await panel.client.get(f"/recordings/{call.id}")).text()
    assert "Chuyển lời thất bại: audio unreadable" in one
    await sign_in(panel, "sup")
    page = await (await panel.client.get("/recordings")).text()
    assert 'id="failed-jobs"' not in page and "RIFF" not in page


async def test_ticket_page_shows_the_transcript_to_those_allowed(panel, voices):
    ctx = panel.ctx
    call = await add_call(ctx, voices, started=NOW, agent="1001", transcript=segments(voices))
    admin = Actor.of(panel.users["admin"])
    ticket = await ctx.tickets.create(
        admin,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": "Ngập nước",
            "agency_id": panel.agency_ids["so-gtvt"],
        },
        call_id=call.id,
    )
    expectations = {"sup": True, "admin": True, "agent1": True, "agent2": False, "officer": False}
    for who, sees in expectations.items():
        await sign_in(panel, who)
        r = await panel.client.get(f"/tickets/{ticket.code}")
        assert r.status == 200, (who, await r.text())
        page = await r.text()
        assert ('id="call-transcript"' in page) is sees, who
        assert ("ngập nước từ sáng" in page) is sees, who
        # the link to listen only for those who may replay
        assert (f'href="/recordings/{call.id}"' in page) is (who in ("sup", "admin")), who
