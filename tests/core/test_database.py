"""Migrations and call records on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from accounts.identity import SYSTEM
from callcenter.models import Agent, Call, Outcome
from callcenter.service import CallService, sanitize_caller
from core.clock import Clock
from core.db import Database, sync_url
from tests.helpers import alembic_cfg, settings_in

T0 = datetime(2026, 11, 25, 15, 0, 0, tzinfo=UTC)


def tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(url: str, table: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    cfg = alembic_cfg(database_url)
    command.upgrade(cfg, "head")
    assert {"calls", "agents", "hotlines", "shifts", "teams", "alembic_version"} <= tables(
        database_url
    )
    command.downgrade(cfg, "base")
    assert tables(database_url) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert {"calls", "blocked_numbers"} <= tables(database_url)
    # 0026 down and up again alone: the list and calls.block_id go and come back
    command.downgrade(cfg, "0025")
    assert "blocked_numbers" not in tables(database_url)
    assert "block_id" not in columns(database_url, "calls")
    command.upgrade(cfg, "head")
    assert "block_id" in columns(database_url, "calls")


@pytest.fixture
async def service(database_url, tmp_path):
    command.upgrade(alembic_cfg(database_url), "head")
    settings = settings_in(tmp_path, HOTLINE_DATABASE_URL=database_url)
    db = Database(settings.database)
    svc = CallService(db, settings)
    await svc.sync_directory()
    yield svc
    await db.close()


async def test_call_lifecycle_is_complete_and_idempotent(service: CallService):
    uid = "pbx-1795344736.14"
    caller = sanitize_caller("0901234567", "Trần Thị B")
    base = "/srv/rec/2026/11/25/pbx-1795344736.14"
    kw = dict(uniqueid=uid, linkedid=uid, hotline_number="1022", caller=caller)
    await service.open_call(**kw, started_at=T0, language="vi", recording_base=base)
    await service.open_call(
        **kw, started_at=T0 + timedelta(seconds=9), language="vi", recording_base=base
    )
    await service.ivr_done(
        uid,
        path="9:language > 1:agent",
        choice="agent",
        language="en",
        queue="t1022-afternoon",
        team_id="t1022",
        shift_id="afternoon",
    )
    for _ in range(2):  # the same event twice changes nothing
        await service.caller_joined(
            **kw,
            queue="t1022-afternoon",
            at=T0 + timedelta(seconds=5),
            recording_base=base,
            route_source="agi",
        )
    await service.agent_connected(
        uniqueid=uid,
        queue="t1022-afternoon",
        interface="PJSIP/1006",
        member_name=None,
        hold_seconds=7,
        at=T0 + timedelta(seconds=12),
        recording_base=base,
    )
    await service.agent_completed(uniqueid=uid, talk_seconds=60, reason="caller_hangup")
    for _ in range(2):
        await service.hung_up(
            uniqueid=uid,
            at=T0 + timedelta(seconds=72),
            queue_status=None,
            cause="Normal Clearing",
            hotline_number="1022",
        )
    call = await service.get(uid)
    assert call.outcome == Outcome.ANSWERED and call.language == "en"
    assert call.ivr_path == "9:language > 1:agent"
    assert call.started_at == T0 and call.started_at.tzinfo is not None
    assert call.queued_at == T0 + timedelta(seconds=5)
    assert call.answered_at == T0 + timedelta(seconds=12)
    assert call.ended_at == T0 + timedelta(seconds=72)
    assert (call.hold_seconds, call.talk_seconds) == (7, 60)
    assert call.agent_extension == "1006" and call.agent_name == "Võ Thanh Tâm"
    assert call.recording_caller == base + "-in.wav" and call.recording_agent == base + "-out.wav"
    assert call.caller_name == "Trần Thị B"


async def test_the_ivr_facts_kept_in_memory_are_the_records(service: CallService):
    """What the pop takes from memory instead of the record: the same values, kept
    from the IVR's insert to the answer, never for a call the IVR did not open."""
    uid = "pbx-1795344736.20"
    caller = sanitize_caller("+84 901 234 567", "Trần Thị B")
    kw = dict(uniqueid=uid, linkedid=uid, hotline_number="1022", caller=caller)
    await service.open_call(**kw, started_at=T0, language="vi", recording_base=None)
    await service.ivr_done(
        uid,
        path="9:language > 1:agent",
        choice="agent",
        language="en",
        queue="t1022-afternoon",
        team_id="t1022",
        shift_id="afternoon",
    )
    await service.caller_joined(
        **kw,
        queue="t1022-afternoon",
        at=T0 + timedelta(seconds=5),
        recording_base=None,
        route_source="agi",
    )
    facts, call = service.facts(uid), await service.get(uid)
    assert facts is not None and call is not None
    names = (
        "id uniqueid caller_number caller_name hotline_number language route_source"
        " ivr_path ivr_choice queue queued_at"
    ).split()
    assert {n: getattr(facts, n) for n in names} == {n: getattr(call, n) for n in names}
    assert facts.caller_number == "0901234567" and facts.ivr_path == "9:language > 1:agent"

    # a second insert (a retry) finds the record: it neither keeps nor changes facts
    service.forget(uid)
    await service.open_call(**kw, started_at=T0, language="vi", recording_base=None)
    assert service.facts(uid) is None

    # answered, hung up in the IVR, or ended by it: no pop is to come
    for n, end in enumerate(("answer", "hangup", "ivr_end")):
        u = f"pbx-1795344736.{30 + n}"
        await service.open_call(
            **{**kw, "uniqueid": u, "linkedid": u},
            started_at=T0,
            language="vi",
            recording_base=None,
        )
        assert service.facts(u) is not None
        if end == "answer":
            await service.agent_connected(
                uniqueid=u,
                queue="t1022-afternoon",
                interface="PJSIP/1006",
                member_name=None,
                hold_seconds=1,
                at=T0,
                recording_base=None,
            )
        elif end == "hangup":
            await service.hung_up(
                uniqueid=u, at=T0, queue_status=None, cause=None, hotline_number="1022"
            )
        else:
            await service.ivr_done(
                u, path="2:info", choice="info", language="vi", outcome=Outcome.ENDED_IVR
            )
        assert service.facts(u) is None, end


async def test_waiting_caller_outcomes(service: CallService):
    for uid, status, expected in (
        ("pbx-1.1", "TIMEOUT", Outcome.TIMEOUT),
        ("pbx-1.2", None, Outcome.ABANDONED),
    ):
        await service.caller_joined(
            uniqueid=uid,
            linkedid=uid,
            queue="party-night",
            hotline_number="0888247247",
            caller=sanitize_caller(None),
            at=T0,
            recording_base=None,
            route_source="fallback",
        )
        # app_queue reports both as an abandon first; the hang-up tells them apart
        await service.caller_abandoned(uniqueid=uid, hold_seconds=30)
        assert (await service.get(uid)).ended_at is None  # the caller may still be on
        await service.hung_up(
            uniqueid=uid,
            at=T0 + timedelta(seconds=30),
            queue_status=status,
            cause=None,
            hotline_number="0888247247",
        )
        call = await service.get(uid)
        assert call.outcome == expected and call.route_source == "fallback"
        assert call.hold_seconds == 30 and call.ended_at == T0 + timedelta(seconds=30)
        assert call.team_id == "party" and call.shift_id == "night"


async def test_hangup_overtaking_the_ivr_and_stale_records(service: CallService):
    # The hang-up event arrives before the IVR's insert.
    await service.hung_up(
        uniqueid="pbx-2.1",
        at=T0,
        queue_status=None,
        cause="16",
        hotline_number="1022",
        caller=sanitize_caller("anonymous"),
    )
    await service.open_call(
        uniqueid="pbx-2.1",
        linkedid=None,
        hotline_number="1022",
        caller=sanitize_caller("anonymous"),
        started_at=T0,
        language="vi",
        recording_base=None,
    )
    call = await service.get("pbx-2.1")
    assert call.outcome == Outcome.HANGUP_IVR and call.ended_at == T0
    assert call.caller_number is None and call.caller_id_raw == "anonymous"
    # Calls that ended while the application was away are closed on reconnect.
    for uid in ("pbx-3.1", "pbx-3.2"):
        await service.open_call(
            uniqueid=uid,
            linkedid=uid,
            hotline_number="1022",
            caller=sanitize_caller("0901"),
            started_at=T0,
            language="vi",
            recording_base=None,
        )
    closed = await service.close_stale({"pbx-3.2"}, T0 + timedelta(minutes=5))
    assert closed == 1
    assert (await service.get("pbx-3.1")).outcome == Outcome.HANGUP_IVR
    assert (await service.get("pbx-3.2")).ended_at is None


async def test_hostile_text_is_stored_literally(service: CallService):
    nasty = "'; DROP TABLE calls; -- <script>alert(1)</script>"
    caller = sanitize_caller(nasty, nasty)
    await service.open_call(
        uniqueid="pbx-4.1",
        linkedid=None,
        hotline_number="1022",
        caller=caller,
        started_at=T0,
        language="vi",
        recording_base=None,
    )
    call = await service.get("pbx-4.1")
    assert call.caller_id_raw == nasty and call.caller_name == nasty
    assert call.caller_number is None


async def test_directory_sync_deactivates_removed_agents(service: CallService, tmp_path):
    async with service.db.session() as s:
        s.add(
            Agent(
                id="gone",
                name="Old",
                extension="9999",
                team_id="t1022",
                shift_id="night",
                active=True,
            )
        )
    await service.sync_directory()
    async with service.db.session() as s:
        gone = await s.get(Agent, "gone")
        active = (await s.scalars(select(Agent).where(Agent.active))).all()
    assert gone.active is False and len(active) == 30
    assert await service.get("nope") is None


async def test_queue_log_replay_creates_and_completes_records(service: CallService):
    from callcenter.queue_log import parse_line

    lines = [
        # answered while the application was down: no record at all yet
        "1795344736|pbx-5.1|t1022-night|NONE|ENTERQUEUE||0901234567|1",
        "1795344745|pbx-5.1|t1022-night|1011 Lý Thị Ngọc|CONNECT|9|pbx-5.2|2",
        "1795344805|pbx-5.1|t1022-night|1011 Lý Thị Ngọc|COMPLETEAGENT|9|60|1",
        # abandoned; the record exists but stayed open (its hang-up was missed)
        "1795344740|pbx-6.1|party-night|NONE|ENTERQUEUE||anonymous|1",
        "1795344770|pbx-6.1|party-night|NONE|ABANDON|1|1|30",
        # member events are not calls
        "1795344700|NONE|t1022-night|PJSIP/1011|ADDMEMBER|",
    ]
    entries = [parse_line(x) for x in lines]
    await service.caller_joined(
        uniqueid="pbx-6.1",
        linkedid="pbx-6.1",
        queue="party-night",
        hotline_number="0888247247",
        caller=sanitize_caller(None),
        at=datetime.fromtimestamp(1795344740, UTC),
        recording_base=None,
        route_source="agi",
    )
    assert await service.replay_queue_log(entries) == 2
    assert await service.replay_queue_log(entries) == 0  # idempotent
    c = await service.get("pbx-5.1")
    assert c.outcome == Outcome.ANSWERED and c.route_source == "fallback"
    assert c.hotline_number == "1022" and c.caller_number == "0901234567"
    assert c.agent_extension == "1011" and c.agent_name is None
    assert (c.hold_seconds, c.talk_seconds, c.end_reason) == (9, 60, "agent_hangup")
    assert c.ended_at == datetime.fromtimestamp(1795344805, UTC)
    local = c.started_at.astimezone(service.settings.tz).strftime("%Y/%m/%d")
    assert c.recording_caller == str(service.settings.recordings_dir / local / "pbx-5.1-in.wav")
    a = await service.get("pbx-6.1")
    assert a.outcome == Outcome.ABANDONED and a.hold_seconds == 30
    assert a.route_source == "agi" and a.ended_at == datetime.fromtimestamp(1795344770, UTC)


async def test_queue_log_replay_a_key_exit_then_back_in_the_queue_is_not_an_end(
    service: CallService,
):
    """The overflow key while the application was down: the caller leaves the
    queue (EXITWITHKEY), the overflow menu does not answer, the dialplan puts them
    back (ENTERQUEUE again), and they hang up later (ABANDON, read live or in a
    later replay). The first exit must not close the record as a timeout."""
    from callcenter.queue_log import parse_line

    head = [
        "1795344736|pbx-8.1|t1022-night|NONE|ENTERQUEUE||0901234567|1",
        "1795344738|pbx-8.1|t1022-night|NONE|EXITWITHKEY|1|1|1|2",
        "1795344738|pbx-8.1|t1022-night|NONE|ENTERQUEUE||0901234567|1",
    ]
    await service.replay_queue_log([parse_line(x) for x in head])
    c = await service.get("pbx-8.1")
    assert (c.outcome, c.ended_at) == (Outcome.QUEUED, None)
    # the hang-up, as the application sees it live
    await service.caller_abandoned(uniqueid="pbx-8.1", hold_seconds=25)
    await service.hung_up(
        uniqueid="pbx-8.1",
        at=datetime.fromtimestamp(1795344763, UTC),
        queue_status=None,
        cause="16",
    )
    c = await service.get("pbx-8.1")
    assert (c.outcome, c.hold_seconds) == (Outcome.ABANDONED, 25)
    assert c.ended_at == datetime.fromtimestamp(1795344763, UTC)

    # the whole call read at once from queue_log
    whole = [x.replace("pbx-8.1", "pbx-9.1") for x in head]
    whole.append("1795344763|pbx-9.1|t1022-night|NONE|ABANDON|1|1|25")
    await service.replay_queue_log([parse_line(x) for x in whole])
    c = await service.get("pbx-9.1")
    assert (c.outcome, c.hold_seconds) == (Outcome.ABANDONED, 25)
    assert c.ended_at == datetime.fromtimestamp(1795344763, UTC)

    # a key exit with no way back (the call ended in the overflow menu) still ends it
    alone = [x.replace("pbx-8.1", "pbx-10.1") for x in head[:2]]
    await service.replay_queue_log([parse_line(x) for x in alone])
    c = await service.get("pbx-10.1")
    assert c.outcome == Outcome.TIMEOUT and c.ended_at is not None


async def test_ivr_path_kept_when_the_hangup_event_came_first(service: CallService):
    kw = dict(
        uniqueid="pbx-7.1",
        linkedid="pbx-7.1",
        hotline_number="1022",
        caller=sanitize_caller("0907"),
    )
    await service.open_call(**kw, started_at=T0, language="vi", recording_base=None)
    await service.hung_up(
        uniqueid="pbx-7.1",
        at=T0 + timedelta(seconds=30),
        queue_status=None,
        cause="16",
        hotline_number="1022",
    )
    await service.ivr_done(
        "pbx-7.1",
        path="9:language > silence",
        choice=None,
        language="en",
        outcome=Outcome.HANGUP_IVR,
        ended_at=T0 + timedelta(seconds=31),
    )
    call = await service.get("pbx-7.1")
    assert call.ivr_path == "9:language > silence" and call.language == "en"
    assert call.outcome == Outcome.HANGUP_IVR and call.ended_at == T0 + timedelta(seconds=30)


async def test_0011_folds_what_was_stored_before_it(database_url, tmp_path):
    """Tickets and transcripts written before accent-insensitive search are found by it
    after the upgrade (the full-text indexes follow), and the way down puts the accents back."""
    from recordings.search import TranscriptSearch
    from tickets.queries import TicketFilter, TicketQueries

    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0010")
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO tickets (code, channel, citizen_phone, citizen_name,"
                    " citizen_address, domain, topic, level, description, status, escalations,"
                    " created_at, updated_at, version) VALUES ('K7M-4QX8', 'phone', '0901234567',"
                    " 'Nguyễn Hữu Cảnh', NULL, 'state', 'trees', 2, 'Cây đổ trên Đường 3/2',"
                    " 'new', 0, :t, :t, 1)"
                ),
                {"t": T0},
            )
            call_id = c.execute(
                text(
                    "INSERT INTO calls (uniqueid, ivr_path, route_source, started_at, outcome)"
                    " VALUES ('pbx-1795344736.14', '', 'agi', :t, 'answered') RETURNING id"
                ),
                {"t": T0},
            ).scalar_one()
            said = "Đường Lê Lợi bị ngập nước"
            c.execute(
                text(
                    'INSERT INTO transcript_segments (call_id, seq, speaker, start, "end", text,'
                    " search_text) VALUES (:c, 0, 'citizen', 0.0, 2.0, :s, :old)"
                ),
                {"c": call_id, "s": said, "old": said.casefold()},
            )
        await asyncio.to_thread(command.upgrade, cfg, "head")
        fts_in_step(engine)
        db = Database(database_url)
        try:
            tickets = TicketQueries(db, settings_in(tmp_path), Clock())
            for q in ("nguyen huu canh", "NGUYỄN HỮU CẢNH", "duong 3/2", "0901234567", "k7m"):
                found, _total = await tickets.search(TicketFilter(q=q), actor=SYSTEM)
                assert [t.code for t in found] == ["K7M-4QX8"], q
            transcripts = TranscriptSearch(db)
            for q in ("duong le loi", "ngập nước", "NGAP NUOC"):
                assert await transcripts.call_ids_matching(q) == [call_id], q
        finally:
            await db.close()

        await asyncio.to_thread(command.downgrade, cfg, "0010")
        with engine.connect() as c:
            assert c.execute(text("SELECT search_text FROM transcript_segments")).scalar_one() == (
                said.casefold()
            )
            assert "search_text" not in {col["name"] for col in inspect(c).get_columns("tickets")}
        fts_in_step(engine)
    finally:
        engine.dispose()


async def test_0014_gives_existing_tickets_distinct_valid_numbers(database_url, tmp_path):
    """Tickets written before ticket numbers each get one, valid and distinct, on the way
    up; the unique index refuses a second ticket with the same number; and they are
    found by it."""
    from tickets.numbers import format_number, is_valid
    from tickets.queries import TicketQueries

    cfg = alembic_cfg(database_url)
    await asyncio.to_thread(command.upgrade, cfg, "0013")
    engine = create_engine(sync_url(database_url))
    insert = text(
        "INSERT INTO tickets (code, channel, domain, topic, level, description, status,"
        " escalations, created_at, updated_at, version) VALUES (:code, 'phone', 'state',"
        " 'trees', 2, 'Cây đổ', 'new', 0, :t, :t, 1)"
    )
    codes = [f"K7M-{i:04d}" for i in range(1, 1201)]  # more than one batch of the backfill
    try:
        with engine.begin() as c:
            c.execute(insert, [{"code": code, "t": T0} for code in codes])
        await asyncio.to_thread(command.upgrade, cfg, "head")
        with engine.connect() as c:
            rows = c.execute(text("SELECT code, number FROM tickets ORDER BY id")).all()
        numbers = [number for _code, number in rows]
        assert [code for code, _number in rows] == codes
        assert len(set(numbers)) == len(codes) and all(is_valid(n) for n in numbers)
        with pytest.raises(IntegrityError), engine.begin() as c:
            c.execute(
                text("UPDATE tickets SET number = :n WHERE code = :c"),
                {"n": numbers[0], "c": codes[1]},
            )
        db = Database(database_url)
        try:
            tickets = TicketQueries(db, settings_in(tmp_path), Clock())
            found = await tickets.get_by_code(format_number(numbers[41]))
            assert found.code == codes[41]
        finally:
            await db.close()
        await asyncio.to_thread(command.downgrade, cfg, "0013")
        with engine.connect() as c:
            assert "number" not in {col["name"] for col in inspect(c).get_columns("tickets")}
    finally:
        engine.dispose()


def fts_in_step(engine) -> None:  # type: ignore[no-untyped-def]
    """SQLite: the FTS5 index holds exactly the rows' search_text (fails otherwise)."""
    if engine.dialect.name == "sqlite":
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO transcript_segments_fts(transcript_segments_fts, rank)"
                    " VALUES ('integrity-check', 1)"
                )
            )


async def _one_call(service: CallService, uid: str) -> str:
    await service.open_call(
        uniqueid=uid,
        linkedid=uid,
        hotline_number="1022",
        caller=sanitize_caller("0901234567", None),
        started_at=T0,
        language="vi",
        recording_base=f"/srv/rec/{uid}",
    )
    return uid


async def test_a_read_sees_what_was_committed_and_runs_beside_a_writer(
    service: CallService, database_url
):
    """Database.read (the public look-up's path): on SQLite on its reader threads with
    their own engine, on PostgreSQL on the async engine; what a session committed is
    seen at once, a read runs while a writer holds its transaction open (WAL), and a
    failing read raises its error to the caller and leaves the next read working."""
    db = service.db
    assert (db.reader is not None) == database_url.startswith("sqlite")
    uid = await _one_call(service, "pbx-1795344736.99")

    def caller(conn):  # type: ignore[no-untyped-def]
        return conn.execute(
            text("SELECT caller_number FROM calls WHERE uniqueid = :u"), {"u": uid}
        ).one()

    assert (await db.read(caller))[0] == "0901234567"
    async with db.session() as s:
        await s.execute(
            text("UPDATE calls SET caller_number = '0907654321' WHERE uniqueid = :u"), {"u": uid}
        )
        # the writer's transaction is open: a read still answers, with what was committed
        assert (await asyncio.wait_for(db.read(caller), 5))[0] == "0901234567"
    assert (await db.read(caller))[0] == "0907654321"
    # many at once (more than the reader threads) all answer
    got = await asyncio.gather(*(db.read(caller) for _ in range(20)))
    assert {r[0] for r in got} == {"0907654321"}

    def broken(conn):  # type: ignore[no-untyped-def]
        return conn.execute(text("SELECT nope FROM calls")).all()

    with pytest.raises(Exception, match="nope"):
        await db.read(broken)
    assert (await db.read(caller))[0] == "0907654321"


async def test_a_read_for_update_holds_off_other_writers_until_it_commits(
    service: CallService,
):
    """Two read-modify-writes of one record side by side, each reading it FOR UPDATE,
    then taking its time before writing: the second reads what the first wrote, on
    SQLite (which has no row locks: the read makes its transaction the writer) as on
    PostgreSQL.  A plain read meanwhile does not wait."""
    import time

    db = service.db
    uid = await _one_call(service, "pbx-1795344736.79")
    first_read = asyncio.Event()

    async def add_step(step: str, lock: str) -> None:
        async with db.session() as s:
            if lock == "select":
                q = select(Call).where(Call.uniqueid == uid).with_for_update()
                call = await s.scalar(q)
            else:  # get(..., with_for_update=True)
                call_id = await s.scalar(select(Call.id).where(Call.uniqueid == uid))
                call = await s.get(Call, call_id, with_for_update=True)
            assert call is not None
            first_read.set()
            await asyncio.sleep(0.3)
            call.ivr_path = f"{call.ivr_path} > {step}" if call.ivr_path else step

    async def second() -> None:
        await first_read.wait()
        await add_step("b", "get")

    async def reader() -> float:
        await first_read.wait()
        t = time.monotonic()
        async with db.session() as s:
            await s.scalar(select(Call.ivr_path).where(Call.uniqueid == uid))
        return time.monotonic() - t

    _, _, read_took = await asyncio.gather(add_step("a", "select"), second(), reader())
    assert read_took < 0.2
    async with db.session() as s:
        path = await s.scalar(select(Call.ivr_path).where(Call.uniqueid == uid))
    assert path == "a > b", "the second change was made on the first's result"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_writers_in_one_process_take_turns_at_the_gate(
    service: CallService, monkeypatch
):
    """core.db.WriterGate: a second writer's statement is not sent to SQLite (whose busy
    handler would sleep up to 100 ms at a time) until the first commits or rolls back;
    reads never wait; a writer that waits too long fails as SQLite's own would."""
    import time

    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError

    import core.db

    db = service.db
    sent: list[tuple[str, float]] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE calls"):
            sent.append((statement[:12], time.monotonic()))

    uid = await _one_call(service, "pbx-1795344736.77")
    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)  # after the gate's own listener
    first_holds = asyncio.Event()
    try:

        async def first() -> float:
            async with db.session() as s:
                await s.execute(
                    text("UPDATE calls SET language = 'en' WHERE uniqueid = :u"), {"u": uid}
                )
                first_holds.set()
                await asyncio.sleep(0.4)
                # a read in another session meanwhile does not wait
                async with db.session() as r:
                    t = time.monotonic()
                    await r.execute(text("SELECT count(*) FROM calls"))
                    assert time.monotonic() - t < 0.2
            return time.monotonic()

        async def second() -> None:
            await first_holds.wait()
            async with db.session() as s:
                await s.execute(
                    text("UPDATE calls SET language = 'vi' WHERE uniqueid = :u"), {"u": uid}
                )

        committed, _ = await asyncio.gather(first(), second())
        assert [what for what, _ in sent] == ["UPDATE calls", "UPDATE calls"]
        assert sent[1][1] >= committed - 0.05  # sent once the first had committed
        # a rollback lets the next one in as well
        with pytest.raises(RuntimeError):
            async with db.session() as s:
                await s.execute(
                    text("UPDATE calls SET language = 'en' WHERE uniqueid = :u"), {"u": uid}
                )
                raise RuntimeError("changed my mind")
        async with db.session() as s:
            await s.execute(
                text("UPDATE calls SET language = 'fr' WHERE uniqueid = :u"), {"u": uid}
            )
        # too long a wait: "database is locked", and the gate is free again after
        monkeypatch.setattr(core.db, "WRITE_WAIT", 0.3)
        first_holds.clear()

        async def holder() -> None:
            async with db.session() as s:
                await s.execute(
                    text("UPDATE calls SET language = 'en' WHERE uniqueid = :u"), {"u": uid}
                )
                first_holds.set()
                await asyncio.sleep(0.8)

        async def impatient() -> None:
            await first_holds.wait()
            async with db.session() as s:
                await s.execute(
                    text("UPDATE calls SET language = 'vi' WHERE uniqueid = :u"), {"u": uid}
                )

        results = await asyncio.gather(holder(), impatient(), return_exceptions=True)
        assert results[0] is None
        assert isinstance(results[1], OperationalError) and "locked" in str(results[1])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    async with db.session() as s:
        await s.execute(text("UPDATE calls SET language = 'vi' WHERE uniqueid = :u"), {"u": uid})
    assert (await db.read(lambda c: c.execute(text("SELECT language FROM calls")).all())) == [
        ("vi",)
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
# the connection of a writer whose engine is disposed under it is dropped unclosed by
# SQLAlchemy (aiosqlite warns when it is collected): collected here, not in a later test
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_the_gate_is_given_back_however_its_holder_ends(service: CallService):
    """A holder that is invalidated mid-transaction (as at shutdown), cancelled while it
    holds, or whose engine is disposed under it never keeps the next writer waiting."""
    import gc
    import time

    db = service.db
    uid = await _one_call(service, "pbx-1795344736.78")
    update = text("UPDATE calls SET language = :l WHERE uniqueid = :u")

    async def write(lang: str) -> float:
        t = time.monotonic()
        async with db.session() as s:
            await s.execute(update, {"l": lang, "u": uid})
        return time.monotonic() - t

    # invalidated while it holds the gate: the rollback SQLAlchemy then asks for
    # succeeds (the gate asks nothing of the invalidated connection), the gate is free
    async with db.session() as s:
        await s.execute(update, {"l": "en", "u": uid})
        conn = await s.connection()
        await conn.invalidate()
        await s.rollback()
    assert await write("vi") < 1.0

    # cancelled while it holds the gate
    holding = asyncio.Event()

    async def holder() -> None:
        async with db.session() as s:
            await s.execute(update, {"l": "en", "u": uid})
            holding.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(holder())
    await holding.wait()
    waiting = asyncio.create_task(write("fr"))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the gate is held
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(waiting, 2.0) < 2.0

    # the engine disposed of while a writer holds the gate (shutdown)
    holding.clear()
    task = asyncio.create_task(holder())
    await holding.wait()
    await db.engine.dispose()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await asyncio.wait_for(write("vi"), 2.0) < 2.0
    gc.collect()
    got = await db.read(lambda c: c.execute(text("SELECT language FROM calls")).all())
    assert got == [("vi",)]
